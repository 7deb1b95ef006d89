import type { Platform, Trace } from '../local/trace';

/**
 * Which images are Windows-like (slow initialization) in the pool bench: an input, never a hash
 * of the image id. In order: the trace's own `platform` column; else the images listed by
 * `--windows-images`; else the stated rule `--windows-share S --windows-start R`: rank the
 * trace's images by their requests over the whole trace (most first, ties by id) and take ranks
 * R, R + k, R + 2k, … with k = round(1 / S), so about S of the images at every popularity level
 * are Windows-like and the choice does not depend on how ids are spelled.
 */

export interface PlatformInput {
  /** `--windows-images`: explicit ids (undefined: not given). */
  readonly windowsImages?: readonly string[];
  readonly windowsShare: number;
  readonly windowsStart: number;
}

export interface PlatformChoice {
  readonly platformOf: (image: string) => Platform;
  /** Every image of the trace that is Windows-like, most requested first. */
  readonly windows: readonly string[];
  /** Where the split came from, for the report. */
  readonly source: string;
}

const rankedImages = (trace: Trace): string[] => {
  const counts = new Map<string, number>();
  for (const request of trace.requests) counts.set(request.image, (counts.get(request.image) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([image]) => image);
};

const fromTrace = (trace: Trace, ranked: readonly string[]): PlatformChoice | undefined => {
  const platforms = new Map<string, Platform>();
  let withPlatform = 0;
  for (const request of trace.requests) {
    if (request.platform === undefined) continue;
    withPlatform++;
    const seen = platforms.get(request.image);
    if (seen !== undefined && seen !== request.platform) {
      throw new Error(
        `trace ${trace.name}: image ${request.image} has requests for both linux and windows (platform)`,
      );
    }
    platforms.set(request.image, request.platform);
  }
  if (withPlatform === 0) return undefined;
  if (withPlatform < trace.requests.length) {
    throw new Error(
      `trace ${trace.name}: ${trace.requests.length - withPlatform} requests have no platform while others have one`,
    );
  }
  return {
    platformOf: (image) => platforms.get(image) ?? 'linux',
    windows: ranked.filter((image) => platforms.get(image) === 'windows'),
    source: "the trace's platform column",
  };
};

export const choosePlatforms = (trace: Trace, input: PlatformInput): PlatformChoice => {
  const ranked = rankedImages(trace);
  const own = fromTrace(trace, ranked);
  if (own !== undefined) return own;
  let windows: string[];
  let source: string;
  if (input.windowsImages !== undefined) {
    const known = new Set(ranked);
    const unknown = input.windowsImages.filter((image) => !known.has(image));
    if (unknown.length > 0) {
      throw new Error(`--windows-images: ${unknown.join(', ')} not an image of trace ${trace.name}`);
    }
    const listed = new Set(input.windowsImages);
    windows = ranked.filter((image) => listed.has(image));
    source = '--windows-images';
  } else {
    const { windowsShare, windowsStart } = input;
    if (!(windowsShare >= 0 && windowsShare <= 1))
      throw new Error(`--windows-share: ${windowsShare} is not in [0, 1]`);
    if (!Number.isInteger(windowsStart) || windowsStart < 1) {
      throw new Error(`--windows-start: ${windowsStart} is not a rank (an integer >= 1)`);
    }
    const every = windowsShare === 0 ? 0 : Math.max(1, Math.round(1 / windowsShare));
    windows =
      every === 0
        ? []
        : ranked.filter((_, index) => index + 1 >= windowsStart && (index + 1 - windowsStart) % every === 0);
    source = `--windows-share ${windowsShare} --windows-start ${windowsStart} (ranks ${windowsStart}, ${windowsStart} + ${every}, ... by requests)`;
  }
  const set = new Set(windows);
  return { platformOf: (image) => (set.has(image) ? 'windows' : 'linux'), windows, source };
};
