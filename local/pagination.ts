/**
 * MaxResults / NextToken for the simulators' Describe* and List* calls: the token is an opaque
 * position in the (stable) result order. A token that is not one the simulator handed out is
 * refused with the service's own error (`invalidToken`).
 */
export const pageOf = <T>(
  items: readonly T[],
  request: { readonly MaxResults?: number; readonly NextToken?: string },
  invalidToken: (token: string | undefined) => Error,
): { page: T[]; nextToken: string | undefined } => {
  const { MaxResults: maxResults, NextToken: token } = request;
  const start = token === undefined ? 0 : Number(Buffer.from(token, 'base64url').toString());
  if (!Number.isInteger(start) || start < 0 || start > items.length) throw invalidToken(token);
  const end = maxResults === undefined ? items.length : Math.min(items.length, start + maxResults);
  return {
    page: items.slice(start, end),
    nextToken: end < items.length ? Buffer.from(String(end)).toString('base64url') : undefined,
  };
};
