import type {
  CreateTagsRequest,
  DeleteTagsRequest,
  DescribeTagsRequest,
  DescribeTagsResult,
  ResourceType,
} from '@aws-sdk/client-ec2';
import { ec2Error, invalidParameterValue, missingParameter, notFound } from './errors';
import { describePage } from './filters';
import type { Ec2Context, Tags } from './state';

/** Tagging (Using_Tags): every taggable resource of the simulator, found by its id prefix. */

interface TaggableKind {
  readonly resourceType: ResourceType;
  readonly notFoundCode: string;
  readonly noun: string;
  readonly table: (ctx: Ec2Context) => ReadonlyMap<string, { readonly tags: Tags }>;
}

const kind = (
  resourceType: ResourceType,
  notFoundCode: string,
  noun: string,
  table: TaggableKind['table'],
): TaggableKind => ({ resourceType, notFoundCode, noun, table });

/** By id prefix: the resource type, the error naming an unknown id of it, and its table. */
const KINDS: Readonly<Record<string, TaggableKind>> = {
  i: kind('instance', 'InvalidInstanceID.NotFound', 'instance', (ctx) => ctx.instances),
  vol: kind('volume', 'InvalidVolume.NotFound', 'volume', (ctx) => ctx.volumes),
  snap: kind('snapshot', 'InvalidSnapshot.NotFound', 'snapshot', (ctx) => ctx.snapshots),
  ami: kind('image', 'InvalidAMIID.NotFound', 'image', (ctx) => ctx.images),
  h: kind('dedicated-host', 'InvalidHostID.NotFound', 'host', (ctx) => ctx.hosts),
};

/** Using_Tags "Tag restrictions": at most 50 tags per resource; the aws: prefix is reserved. */
const MAX_TAGS_PER_RESOURCE = 50;

const tagsOf = (ctx: Ec2Context, resourceId: string): Tags => {
  const kind = KINDS[resourceId.slice(0, resourceId.indexOf('-'))];
  if (!kind) throw ec2Error('InvalidID', `The ID '${resourceId}' is not valid`);
  const resource = kind.table(ctx).get(resourceId);
  if (!resource) throw notFound(kind.notFoundCode, [resourceId], kind.noun);
  return resource.tags;
};

export const createTags = (ctx: Ec2Context, input: CreateTagsRequest): Record<string, never> => {
  if (!input.Resources?.length) throw missingParameter('ResourceId');
  if (!input.Tags?.length) throw missingParameter('Tag');
  const targets = input.Resources.map((resourceId) => tagsOf(ctx, resourceId));
  for (const tag of input.Tags) {
    if (!tag.Key) throw missingParameter('Tag.Key');
    if (tag.Key.toLowerCase().startsWith('aws:'))
      throw invalidParameterValue("Tag keys starting with 'aws:' are reserved for internal use");
  }
  for (const [index, tags] of targets.entries()) {
    const keys = new Set([...tags.keys(), ...input.Tags.map((tag) => tag.Key ?? '')]);
    if (keys.size > MAX_TAGS_PER_RESOURCE)
      throw ec2Error(
        'TagLimitExceeded',
        `The maximum number of tags for ${input.Resources[index]} has been reached`,
      );
  }
  for (const tags of targets) for (const tag of input.Tags) tags.set(tag.Key ?? '', tag.Value ?? '');
  return {};
};

/** API_DeleteTags: a tag given with a value is deleted only when the value matches. */
export const deleteTags = (ctx: Ec2Context, input: DeleteTagsRequest): Record<string, never> => {
  if (!input.Resources?.length) throw missingParameter('ResourceId');
  for (const tags of input.Resources.map((resourceId) => tagsOf(ctx, resourceId))) {
    if (input.Tags === undefined) {
      tags.clear();
      continue;
    }
    for (const tag of input.Tags) {
      const key = tag.Key ?? '';
      if (tag.Value === undefined || tags.get(key) === tag.Value) tags.delete(key);
    }
  }
  return {};
};

export const describeTags = async (
  ctx: Ec2Context,
  input: DescribeTagsRequest,
): Promise<DescribeTagsResult> => {
  const rows = Object.values(KINDS).flatMap((kind) =>
    [...kind.table(ctx)].flatMap(([resourceId, resource]) =>
      [...resource.tags].map(([key, value]) => ({ resourceId, resourceType: kind.resourceType, key, value })),
    ),
  );
  const { page, nextToken } = describePage(rows, input, {
    'resource-id': (row) => [row.resourceId],
    'resource-type': (row) => [row.resourceType],
    key: (row) => [row.key],
    value: (row) => [row.value],
  });
  return {
    Tags: page.map((row) => ({
      ResourceId: row.resourceId,
      ResourceType: row.resourceType,
      Key: row.key,
      Value: row.value,
    })),
    NextToken: nextToken,
  };
};
