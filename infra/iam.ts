import { ArnFormat, Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { WARM_IMAGES_TAG } from '../functions/image-cache/config';
import { TAG as POOL_TAGS } from '../functions/pools/domain/tags';
import { HOST_GROUP_TAG, OPT_IN_TAG, OPTED_IN } from '../functions/shared/tags';
import { REPLACEMENT_FOR_TAG, REPLACEMENT_ROOT_TAG, SHELVED_TAG } from '../functions/shelving/domain/tags';

/**
 * The management tags IAM conditions rely on, imported from the capability code that writes them
 * so the second fence (IAM) and the first (the tag check in code) use the same keys.
 */
export const TAGS = {
  /** The opt-ins, one key per capability (functions/shared/tags.ts): a role's conditions name its own only. */
  shelving: OPT_IN_TAG.shelving,
  imageCache: OPT_IN_TAG.imageCache,
  pools: OPT_IN_TAG.pools,
  hostGroup: HOST_GROUP_TAG,
  warmImages: WARM_IMAGES_TAG,
  pool: POOL_TAGS.pool,
  shelved: SHELVED_TAG,
  replacementRoot: REPLACEMENT_ROOT_TAG,
  replacementFor: REPLACEMENT_FOR_TAG,
} as const;

/** `arn:<partition>:ec2:<region>:<account>:<type>/*` — resources owned by this account. */
export const ec2Arns = (scope: IConstruct, ...types: string[]): string[] =>
  types.map((type) =>
    Stack.of(scope).formatArn({
      service: 'ec2',
      resource: type,
      resourceName: '*',
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    }),
  );

/**
 * Images and snapshots have no account in their ARN (`arn:aws:ec2:<region>::snapshot/*`): AMIs
 * and their snapshots are often owned by another account (public or shared AMIs).
 */
export const ec2AccountlessArns = (scope: IConstruct, ...types: ('image' | 'snapshot')[]): string[] =>
  types.map((type) =>
    Stack.of(scope).formatArn({
      service: 'ec2',
      account: '',
      resource: type,
      resourceName: '*',
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    }),
  );

export const ssmDocumentArn = (scope: IConstruct, name: string): string =>
  Stack.of(scope).formatArn({
    service: 'ssm',
    resource: 'document',
    resourceName: name,
    arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
  });

/** Parameter ARNs keep the leading slash of the name: `arn:aws:ssm:<region>:<account>:parameter/a/b`. */
export const ssmParameterArn = (scope: IConstruct, path: string, account?: string): string =>
  `arn:${Stack.of(scope).partition}:ssm:${Stack.of(scope).region}:${account ?? Stack.of(scope).account}:parameter${path}`;

export const resourceTagEquals = (key: string, values: string | readonly string[]) => ({
  StringEquals: { [`aws:ResourceTag/${key}`]: values },
});

type OptInCapability = keyof typeof OPT_IN_TAG;

/** The resource opted in to this capability (`warmboot:<capability>=true`), whatever else it carries. */
export const optedIn = (capability: OptInCapability) => resourceTagEquals(OPT_IN_TAG[capability], OPTED_IN);

/** The request tags the resource it creates as opted in to this capability. */
export const createsOptedIn = (capability: OptInCapability) => ({
  StringEquals: { [`aws:RequestTag/${OPT_IN_TAG[capability]}`]: OPTED_IN },
});
