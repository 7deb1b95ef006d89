import type { Filter, Tag, TagSpecification } from '@aws-sdk/client-ec2';
import { ec2Error } from './errors';
import type { Tags } from './state';

/** The values a resource has for one filter name; several values match if any of them does. */
export type FilterFields<T> = Readonly<Record<string, (record: T) => readonly (string | undefined)[]>>;

/** EC2 filter values accept `*` (any characters) and `?` (one character) (Using_Filtering). */
const wildcard = (pattern: string): RegExp =>
  new RegExp(
    `^${pattern
      .split('')
      .map((character) =>
        character === '*' ? '.*' : character === '?' ? '.' : character.replace(/[\\^$.|+()[\]{}]/g, '\\$&'),
      )
      .join('')}$`,
  );

/**
 * Applies Describe* filters: every filter must match (AND), any value of a filter may match (OR).
 * `tag:KEY` and `tag-key` work for every resource. An unknown filter name is an error, as in EC2.
 */
export const applyFilters = <T>(
  records: Iterable<T>,
  filters: readonly Filter[] | undefined,
  fields: FilterFields<T>,
  tagsOf: (record: T) => Tags,
): T[] => {
  const predicates = (filters ?? []).map((filter) => {
    const name = filter.Name ?? '';
    const patterns = (filter.Values ?? []).map(wildcard);
    const matchesAny = (values: readonly (string | undefined)[]): boolean =>
      values.some((value) => value !== undefined && patterns.some((pattern) => pattern.test(value)));
    if (name.startsWith('tag:')) {
      const key = name.slice('tag:'.length);
      return (record: T) => matchesAny([tagsOf(record).get(key)]);
    }
    if (name === 'tag-key') return (record: T) => matchesAny([...tagsOf(record).keys()]);
    const field = fields[name];
    if (!field) throw ec2Error('InvalidParameterValue', `The filter '${name}' is invalid`);
    return (record: T) => matchesAny(field(record));
  });
  return [...records].filter((record) => predicates.every((predicate) => predicate(record)));
};

/** MaxResults / NextToken: the token is an opaque position in the (stable) result order. */
export const paginate = <T>(
  items: readonly T[],
  maxResults: number | undefined,
  nextToken: string | undefined,
): { page: T[]; nextToken: string | undefined } => {
  const start = nextToken === undefined ? 0 : Number(Buffer.from(nextToken, 'base64url').toString());
  if (!Number.isInteger(start) || start < 0 || start > items.length)
    throw ec2Error('InvalidPaginationToken', `Invalid pagination token '${nextToken}'`);
  const end = maxResults === undefined ? items.length : Math.min(items.length, start + maxResults);
  return {
    page: items.slice(start, end),
    nextToken: end < items.length ? Buffer.from(String(end)).toString('base64url') : undefined,
  };
};

/** Requested ids must all exist: EC2 fails the whole call naming the missing ones. */
export const requireAll = <T>(
  table: ReadonlyMap<string, T>,
  ids: readonly string[],
  onMissing: (missing: string[]) => Error,
): T[] => {
  const missing = ids.filter((id) => !table.has(id));
  if (missing.length > 0) throw onMissing(missing);
  return ids.map((id) => table.get(id) as T);
};

export const tagList = (tags: Tags): Tag[] | undefined =>
  tags.size === 0 ? undefined : [...tags].map(([Key, Value]) => ({ Key, Value }));

/** Tags of the TagSpecifications entries for one resource type (Using_Tags: tag on create). */
export const tagsFor = (
  specifications: readonly TagSpecification[] | undefined,
  resourceType: string,
): Tags =>
  new Map(
    (specifications ?? [])
      .filter((specification) => specification.ResourceType === resourceType)
      .flatMap((specification) => specification.Tags ?? [])
      .map((tag) => [tag.Key ?? '', tag.Value ?? ''] as const),
  );
