import type { Filter, Tag, TagSpecification } from '@aws-sdk/client-ec2';
import { pageOf } from '../pagination';
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

/** Resources without tags (zones, subnets, tag rows): `tag:KEY` and `tag-key` match none of them. */
const untagged = (): Tags => new Map();

/**
 * Applies Describe* filters: every filter must match (AND), any value of a filter may match (OR).
 * `tag:KEY` and `tag-key` work for every resource. An unknown filter name is an error, as in EC2.
 */
export const applyFilters = <T>(
  records: Iterable<T>,
  filters: readonly Filter[] | undefined,
  fields: FilterFields<T>,
  tagsOf: (record: T) => Tags = untagged,
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

/** What a Describe* request says besides the ids it names: its filters and the page it asks for. */
export interface DescribeRequest {
  readonly Filters?: readonly Filter[];
  readonly MaxResults?: number;
  readonly NextToken?: string;
}

/** Describe*: every filter of the request (applyFilters), then the page it asks for. */
export const describePage = <T>(
  records: Iterable<T>,
  request: DescribeRequest,
  fields: FilterFields<T>,
  tagsOf: (record: T) => Tags = untagged,
): { page: T[]; nextToken: string | undefined } =>
  pageOf(applyFilters(records, request.Filters, fields, tagsOf), request, (token) =>
    ec2Error('InvalidPaginationToken', `Invalid pagination token '${token}'`),
  );

/**
 * The records a Describe* call names by id or, naming none, every record. Named ids must all
 * exist: EC2 fails the whole call naming the missing ones.
 */
export const namedOrAll = <T>(
  table: ReadonlyMap<string, T>,
  ids: readonly string[] | undefined,
  onMissing: (missing: string[]) => Error,
): Iterable<T> => {
  if (!ids?.length) return table.values();
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
