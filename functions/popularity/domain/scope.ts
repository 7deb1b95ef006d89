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

export const scopesOf = (where: {
  readonly availabilityZone?: string | undefined;
  readonly hostGroup?: string | undefined;
}): PopularityScope[] => [
  GLOBAL_SCOPE,
  ...(where.availabilityZone ? [{ kind: 'az', az: where.availabilityZone } as const] : []),
  ...(where.hostGroup ? [{ kind: 'hostGroup', hostGroup: where.hostGroup } as const] : []),
];
