import { seededRandom } from '../local/ec2/ids';
import { loadImageSizes, type Platform, type Trace, type TraceRequest } from '../local/trace';

/**
 * A seeded synthetic request trace, so defaults can be chosen and swept on traces other than the
 * one the README judges them on (docs/benchmarks.md, "Traces"). The same options give the same
 * trace on every run and machine.
 *
 * Model: a catalog of images ranked by popularity; a launch picks rank r with probability
 * ∝ 1/(r+1)^zipfExponent among the images that exist. Every hour the ranks drift (image pairs
 * swap ranks: one rank drawn log-uniformly, so the head moves as often as each decade of the tail,
 * and a partner within twice its rank) and new images arrive: each takes a log-uniformly drawn
 * rank and the image there drops to the bottom (a new version replacing an old one). Launch times
 * follow a daily cosine (peak at `peakHourUtc`) with exactly `launchesPerDay` per day. Each image
 * gets, when it is created, a size from the Docker Hub sample times `sizeScale`, an owner tenant
 * (Zipf over tenants with `tenantSkew`) and a platform (Windows with probability `windowsShare`).
 */
export interface TraceGenOptions {
  /** What reports print for the trace. */
  readonly name: string;
  readonly seed: number;
  readonly days: number;
  readonly launchesPerDay: number;
  /** Zipf exponent of image popularity over ranks: higher is more skewed. */
  readonly zipfExponent: number;
  /** Images in the catalog at the start. */
  readonly initialImages: number;
  readonly newImagesPerDay: number;
  /** Rank swaps per day, as a fraction of the catalog's size. */
  readonly drift: number;
  /** 0 = flat load; 1 = the quietest hour has no launches. */
  readonly diurnalAmplitude: number;
  readonly peakHourUtc: number;
  readonly tenants: number;
  /** Zipf exponent of image ownership over tenants. */
  readonly tenantSkew: number;
  /** Share of images that are Windows (the rest are Linux). */
  readonly windowsShare: number;
  /** Multiplies every sampled size. */
  readonly sizeScale: number;
  /** Sizes to sample from; default the Docker Hub sample (`loadImageSizes`). */
  readonly imageSizes?: readonly number[];
}

type Random = () => number;

/** Cumulative Zipf weights of ranks 0..count-1. */
const zipfCumulative = (count: number, exponent: number): Float64Array => {
  const cumulative = new Float64Array(count);
  let sum = 0;
  for (let rank = 0; rank < count; rank++) {
    sum += (rank + 1) ** -exponent;
    cumulative[rank] = sum;
  }
  return cumulative;
};

/** A rank in [0, n) drawn with probability ∝ the weights, considering only the first n ranks. */
const pickRank = (cumulative: Float64Array, n: number, random: Random): number => {
  const target = random() * (cumulative[n - 1] ?? 0);
  let low = 0;
  let high = n - 1;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((cumulative[middle] ?? 0) < target) low = middle + 1;
    else high = middle;
  }
  return low;
};

/** A rank in [0, n) whose logarithm is uniform: each decade of ranks is equally likely. */
const logUniformRank = (n: number, random: Random): number =>
  Math.min(n - 1, Math.floor(Math.exp(random() * Math.log(n + 1))) - 1);

const checkOptions = (options: TraceGenOptions): void => {
  const rules: [keyof TraceGenOptions, boolean, string][] = [
    ['seed', Number.isInteger(options.seed), 'an integer'],
    ['days', Number.isInteger(options.days) && options.days >= 1, 'an integer ≥ 1'],
    [
      'launchesPerDay',
      Number.isInteger(options.launchesPerDay) && options.launchesPerDay >= 1,
      'an integer ≥ 1',
    ],
    ['zipfExponent', options.zipfExponent >= 0, '≥ 0'],
    [
      'initialImages',
      Number.isInteger(options.initialImages) && options.initialImages >= 1,
      'an integer ≥ 1',
    ],
    ['newImagesPerDay', options.newImagesPerDay >= 0, '≥ 0'],
    ['drift', options.drift >= 0, '≥ 0'],
    ['diurnalAmplitude', options.diurnalAmplitude >= 0 && options.diurnalAmplitude <= 1, 'in [0, 1]'],
    ['peakHourUtc', options.peakHourUtc >= 0 && options.peakHourUtc < 24, 'in [0, 24)'],
    ['tenants', Number.isInteger(options.tenants) && options.tenants >= 1, 'an integer ≥ 1'],
    ['tenantSkew', options.tenantSkew >= 0, '≥ 0'],
    ['windowsShare', options.windowsShare >= 0 && options.windowsShare <= 1, 'in [0, 1]'],
    ['sizeScale', options.sizeScale > 0, '> 0'],
  ];
  for (const [field, ok, rule] of rules) {
    if (!ok) throw new RangeError(`trace generator: ${field} must be ${rule}, got ${String(options[field])}`);
  }
};

interface Image {
  readonly id: string;
  readonly sizeBytes: number;
  readonly tenant: string;
  readonly platform: Platform;
}

/** Generates the trace `options` describe (see `TraceGenOptions`). */
export const generateTrace = (options: TraceGenOptions): Trace => {
  checkOptions(options);
  const random = seededRandom(options.seed);
  const sizes = options.imageSizes ?? loadImageSizes();
  if (sizes.length === 0) throw new RangeError('trace generator: no image sizes to sample from');
  const totalNew = Math.ceil(options.newImagesPerDay * options.days);
  const popularity = zipfCumulative(options.initialImages + totalNew, options.zipfExponent);
  const ownership = zipfCumulative(options.tenants, options.tenantSkew);
  const idWidth = String(options.initialImages + totalNew).length;
  const tenantWidth = String(options.tenants).length;
  const images: Image[] = [];
  const createImage = (): number => {
    const index = images.length;
    images.push({
      id: `img-${String(index + 1).padStart(idWidth, '0')}`,
      sizeBytes: Math.max(
        1,
        Math.round((sizes[Math.floor(random() * sizes.length)] ?? 1) * options.sizeScale),
      ),
      tenant: `t${String(pickRank(ownership, options.tenants, random) + 1).padStart(tenantWidth, '0')}`,
      platform: random() < options.windowsShare ? 'windows' : 'linux',
    });
    return index;
  };
  /** byRank[r] = the image at popularity rank r. */
  const byRank: number[] = Array.from({ length: options.initialImages }, createImage);
  let arrivalsDue = 0;
  let swapsDue = 0;
  const hourPasses = (): void => {
    arrivalsDue += options.newImagesPerDay / 24;
    for (; arrivalsDue >= 1 && images.length < popularity.length; arrivalsDue--) {
      const rank = logUniformRank(byRank.length, random);
      byRank.push(byRank[rank] ?? 0);
      byRank[rank] = createImage();
    }
    swapsDue += (options.drift * byRank.length) / 24;
    for (; swapsDue >= 1; swapsDue--) {
      const rank = logUniformRank(byRank.length, random);
      const partner = Math.floor(random() * Math.min(byRank.length, 2 * rank + 2));
      [byRank[rank], byRank[partner]] = [byRank[partner] ?? 0, byRank[rank] ?? 0];
    }
  };
  const loadAt = (timeS: number): number =>
    1 + options.diurnalAmplitude * Math.cos((2 * Math.PI * (timeS / 3600 - options.peakHourUtc)) / 24);
  const requests: TraceRequest[] = [];
  let hour = 0;
  for (let day = 0; day < options.days; day++) {
    const times: number[] = [];
    while (times.length < options.launchesPerDay) {
      const timeS = (day + random()) * 86_400;
      if (random() * (1 + options.diurnalAmplitude) < loadAt(timeS))
        times.push(Math.round(timeS * 1000) / 1000);
    }
    times.sort((a, b) => a - b);
    for (const timeS of times) {
      for (; hour <= Math.floor(timeS / 3600); hour++) hourPasses();
      const image = images[byRank[pickRank(popularity, byRank.length, random)] ?? 0];
      if (image === undefined) throw new Error('trace generator: rank outside the catalog');
      requests.push({
        timeS,
        image: image.id,
        sizeBytes: image.sizeBytes,
        tenant: image.tenant,
        platform: image.platform,
      });
    }
  }
  // Re-based like a loaded trace: time 0 is the first request; `originS` keeps where it fell
  // after midnight UTC of day 0, so the diurnal phase stays recoverable.
  const originS = requests[0]?.timeS ?? 0;
  return {
    name: options.name,
    path: null,
    format: 'synthetic',
    requests: requests.map((request) => ({
      ...request,
      timeS: Math.round((request.timeS - originS) * 1000) / 1000,
    })),
    originS,
    skippedRows: 0,
    repairs: {},
    sizeSource: 'trace',
  };
};
