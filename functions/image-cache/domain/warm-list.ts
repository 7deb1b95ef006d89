/**
 * The `warmboot:warm-images` tag: a machine-readable list of the images a host holds, for
 * schedulers that read tags or instance attributes.
 *
 * Format: `v1 <id> <id> … [+N]` — the version, then image ids separated by single spaces, most
 * valuable first; when the ids do not fit in the 256-character tag value limit, the list is cut
 * at a whole id and ends with `+N`, the number of ids left out. Spaces never occur in image ids
 * (IMAGE_ID_PATTERN) and ids start with a letter or digit, so a token starting with `+` is
 * always the overflow marker. Every character used is one EC2 tag values allow.
 */
export const WARM_LIST_VERSION = 'v1';
export const TAG_VALUE_MAX_LENGTH = 256;

export const formatWarmList = (imageIds: readonly string[], maxLength = TAG_VALUE_MAX_LENGTH): string => {
  let value = WARM_LIST_VERSION;
  for (let index = 0; index < imageIds.length; index += 1) {
    const candidate = `${value} ${imageIds[index]}`;
    const leftAfter = imageIds.length - index - 1;
    const marker = leftAfter > 0 ? ` +${leftAfter}` : '';
    if (candidate.length + marker.length > maxLength) return `${value} +${imageIds.length - index}`;
    value = candidate;
  }
  return value;
};

export interface WarmList {
  readonly imageIds: readonly string[];
  /** Ids that did not fit in the tag. */
  readonly omitted: number;
}

export const parseWarmList = (value: string): WarmList => {
  const [version, ...tokens] = value.split(' ');
  if (version !== WARM_LIST_VERSION) throw new Error(`unknown warm-list version: ${version}`);
  const last = tokens.at(-1);
  const omitted = last?.startsWith('+') ? Number(last.slice(1)) : 0;
  return { imageIds: omitted > 0 ? tokens.slice(0, -1) : tokens, omitted };
};
