import type { PoolPolicy } from '../pools/config';
import { type PoolsDependencies, poolsDependencies } from '../pools/dependencies';
import type { ClientsWith } from '../shared/aws-clients';
import type { InvocationDeadline } from '../shared/deadline';
import type { Runtime } from '../shared/runtime';
import type { ClaimConfig } from './config';

/** The pool model's dependencies (the claim function works on the pools table and members) and the policy. */
export interface ClaimDependencies extends PoolsDependencies {
  /** What pools may launch and how many requests a caller may make (POOL_POLICY). */
  readonly policy: PoolPolicy;
}

/** The claim function's composition root: the pools function's, plus the policy it enforces per request. */
export const claimDependencies = (
  runtime: Runtime<ClientsWith<'ec2' | 'ssm'>>,
  config: ClaimConfig,
): ClaimDependencies & { readonly deadline: InvocationDeadline } => ({
  ...poolsDependencies(runtime, config),
  policy: config.settings.policy,
});
