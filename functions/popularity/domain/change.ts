/**
 * When to nudge the cache planner with a `Popularity Changed` fact: an image entered the top K
 * of a scope, or its score rose through the threshold. Leaving is not announced: the planner's
 * schedule picks up cooling images, and announcing both edges would double the traffic for no
 * decision that cannot wait five minutes.
 */
export interface PopularityStanding {
  readonly inTopK: boolean;
  readonly aboveThreshold: boolean;
}

export type ChangeReason = 'entered-top-k' | 'crossed-threshold';

export const popularityChange = (
  previous: PopularityStanding | undefined,
  current: PopularityStanding,
): ChangeReason[] => [
  ...(current.inTopK && !previous?.inTopK ? (['entered-top-k'] as const) : []),
  ...(current.aboveThreshold && !previous?.aboveThreshold ? (['crossed-threshold'] as const) : []),
];
