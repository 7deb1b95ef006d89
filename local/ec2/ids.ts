/**
 * Resource ids in EC2's real formats: a prefix and 17 lowercase hex digits
 * (resource-ids: "i-1234567890abcdef0"), drawn from the simulator's random source so a seeded
 * run names everything the same way every time.
 */
export type Random = () => number;

/** A small deterministic PRNG (mulberry32), the default random source of the simulators. */
export const seededRandom = (seed = 1): Random => {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
};

const hex = (random: Random, digits: number): string =>
  Array.from({ length: digits }, () => Math.floor(random() * 16).toString(16)).join('');

export type ResourcePrefix =
  | 'i'
  | 'r'
  | 'vol'
  | 'snap'
  | 'ami'
  | 'h'
  | 'subnet'
  | 'eipalloc'
  | 'eipassoc'
  | 'pg'
  | 'replacevol';

export class IdGenerator {
  readonly #random: Random;
  readonly #issued = new Set<string>();

  constructor(random: Random) {
    this.#random = random;
  }

  next(prefix: ResourcePrefix): string {
    for (;;) {
      const id = `${prefix}-${hex(this.#random, 17)}`;
      if (!this.#issued.has(id)) {
        this.#issued.add(id);
        return id;
      }
    }
  }

  /** Records an id chosen by a caller (seeding), so generated ids never collide with it. */
  claim(id: string): string {
    this.#issued.add(id);
    return id;
  }

  /** A version-4 style UUID, the format of SSM command ids. */
  uuid(): string {
    const digits = hex(this.#random, 32);
    return `${digits.slice(0, 8)}-${digits.slice(8, 12)}-4${digits.slice(13, 16)}-a${digits.slice(17, 20)}-${digits.slice(20)}`;
  }
}

/** resource-ids: 8 hex digits (old format) or 17 (current format). */
export const isWellFormedId = (prefix: ResourcePrefix, id: string): boolean =>
  new RegExp(`^${prefix}-(?:[0-9a-f]{8}|[0-9a-f]{17})$`).test(id);
