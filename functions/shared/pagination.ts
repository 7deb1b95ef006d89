/**
 * Every page of a paginated AWS read. `page` makes one call with the token of the previous page
 * (undefined first) and returns its items and the next token (a NextToken string, or DynamoDB's
 * LastEvaluatedKey); a call that must be paced or retried does that inside `page`, so each page
 * goes through the same budget.
 */
export const collectPages = async <T, Token = string>(
  page: (
    nextToken: Token | undefined,
  ) => Promise<{ readonly items: readonly T[]; readonly nextToken?: Token }>,
): Promise<T[]> => {
  const items: T[] = [];
  let nextToken: Token | undefined;
  do {
    const answer = await page(nextToken);
    items.push(...answer.items);
    nextToken = answer.nextToken;
  } while (nextToken);
  return items;
};

/**
 * Every page of a paginated read whose filter takes at most `size` values (DescribeSnapshots'
 * snapshot-id filter, DescribeInstanceInformation's InstanceIds): one collectPages per chunk of
 * `values`, the chunk passed to `page` with the token.
 */
export const collectPagesInChunks = async <V, T>(
  values: readonly V[],
  size: number,
  page: (
    chunk: readonly V[],
    nextToken: string | undefined,
  ) => Promise<{ readonly items: readonly T[]; readonly nextToken?: string }>,
): Promise<T[]> => {
  const items: T[] = [];
  for (let start = 0; start < values.length; start += size) {
    const chunk = values.slice(start, start + size);
    items.push(...(await collectPages((nextToken: string | undefined) => page(chunk, nextToken))));
  }
  return items;
};
