import type { FunctionId } from '../../../functions/catalog';
import { invocationScope } from '../../../local/faults';
import { ec2ResourceState } from '../../../local/iam/ec2-state';
import { LocalIam } from '../../../local/iam/evaluator';
import type { IamDeployment, SynthesizedRolePolicies } from '../../../local/iam/policy-template';
import { ACCOUNT, type Cloud, REGION } from './ec2-harness';

/** Shared setup of the local IAM tests: a deployment in the EC2 harness's account and Region. */

/** A deployment with warmboot's tables and nothing optional configured; `overrides` win. */
export const iamDeployment = (overrides: Partial<IamDeployment> = {}): IamDeployment => ({
  partition: 'aws',
  region: REGION,
  accountId: ACCOUNT,
  tables: {
    popularity: 'wb-popularity',
    imageCache: 'wb-image-cache',
    pools: 'wb-pools',
    shelves: 'wb-shelves',
    idempotency: 'wb-idempotency',
    ec2Budget: 'wb-ec2-budget',
  },
  hostGroups: [],
  imageParameters: [],
  allowShelvedDataDeletion: false,
  ...overrides,
});

/** No function role: for tests that evaluate only outside callers (operators, developers). */
export const noFunctionRoles = (key: string): SynthesizedRolePolicies => ({
  key,
  base: {} as never,
  optIn: {} as never,
});

/** The local IAM evaluating the `synthesized` role policies on the cloud's EC2 state. */
export const localIamOn = (
  cloud: Cloud,
  synthesized: SynthesizedRolePolicies,
  deployment: Partial<IamDeployment> = {},
) => new LocalIam({ synthesized, deployment: iamDeployment(deployment), ec2: ec2ResourceState(cloud.ec2) });

/** Runs `call` as an invocation of `functionId`, so the local IAM evaluates it as that function's role. */
export const asFunction = <T>(functionId: FunctionId, call: () => Promise<T>): Promise<T> =>
  invocationScope.run({ functionId, invocationId: 'test', awsCalls: 0, killed: false }, call);
