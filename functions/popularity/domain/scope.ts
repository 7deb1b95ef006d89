/**
 * Where a launch is counted. Every launch counts in the global scope, in its AZ's scope when
 * the AZ is known, and in its host group's scope when the instance carries
 * `warmboot:host-group`. "Top K" is asked per scope.
 */
export type PopularityScope =
  | { readonly kind: 'global' }
  | { readonly kind: 'az'; readonly az: string }
  | { readonly kind: 'hostGroup'; readonly hostGroup: string };

export const GLOBAL_SCOPE: PopularityScope = { kind: 'global' };

/** A stable string for keys and logs; AZ and host-group names never contain `=` or `#`. */
export const scopeKey = (scope: PopularityScope): string => {
  switch (scope.kind) {
    case 'global':
      return 'global';
    case 'az':
      return `az=${scope.az}`;
    case 'hostGroup':
      return `hg=${scope.hostGroup}`;
  }
};

export const scopeFromKey = (key: string): PopularityScope => {
  if (key === 'global') return GLOBAL_SCOPE;
  if (key.startsWith('az=')) return { kind: 'az', az: key.slice(3) };
  if (key.startsWith('hg=')) return { kind: 'hostGroup', hostGroup: key.slice(3) };
  throw new Error(`not a popularity scope key: ${key}`);
};

export const scopesOf = (where: {
  readonly availabilityZone?: string | undefined;
  readonly hostGroup?: string | undefined;
}): PopularityScope[] => [
  GLOBAL_SCOPE,
  ...(where.availabilityZone ? [{ kind: 'az', az: where.availabilityZone } as const] : []),
  ...(where.hostGroup ? [{ kind: 'hostGroup', hostGroup: where.hostGroup } as const] : []),
];
