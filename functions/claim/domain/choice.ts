import type { PoolMember } from '../../pools/domain/lifecycle';

export type ClaimPath = 'hot' | 'warm' | 'cold';

export interface Candidate {
  readonly member: PoolMember;
  /** The member's type differs from the requested one: ModifyInstanceAttribute before start. */
  readonly resize: boolean;
  readonly path: Exclude<ClaimPath, 'cold'>;
}

/**
 * CPU architecture of an instance type. Changing the type of a stopped instance only works within
 * one architecture (the AMI is built for one); Graviton families carry a `g` after the generation
 * digit (m7g, c7gn, r8gd, g5g, is4gen), plus the first-generation a1. Mac instances run only macOS
 * AMIs and resize only to another Mac of their architecture: mac1 is Intel, every later Mac family
 * (mac2, mac2-m2, mac2-m2pro, …) Apple silicon (EC2 user guide, "Amazon EC2 Mac instances").
 */
export const architectureOf = (instanceType: string): 'arm64' | 'x86_64' | 'arm64_mac' | 'x86_64_mac' => {
  const family = instanceType.split('.')[0] ?? '';
  if (family === 'mac1') return 'x86_64_mac';
  if (family.startsWith('mac')) return 'arm64_mac';
  if (family === 'a1') return 'arm64';
  const attributes = /^[a-z]+-?\d+([a-z-]*)$/.exec(family)?.[1] ?? '';
  return attributes.includes('g') ? 'arm64' : 'x86_64';
};

/** The instance type a request wants: its own, else its pool's. */
export const wantedInstanceType = (
  request: { readonly instanceType?: string | undefined },
  spec: { readonly instanceType: string },
): string => request.instanceType ?? spec.instanceType;

export const resizeCompatible = (from: string, to: string): boolean =>
  architectureOf(from) === architectureOf(to);

/**
 * Ready members in the order a claim tries them: requested AZ before other AZs; within an AZ,
 * the requested type running (hot, ~2 s), then stopped (warm, ~21 s), then stopped members of a
 * compatible type to resize (a resize needs a stopped instance, so running members of another
 * type are not candidates). Oldest first within a rank, so members age out through claims.
 * An empty list means the claim goes cold.
 */
export const rankCandidates = (
  members: readonly PoolMember[],
  request: { readonly instanceType: string; readonly availabilityZone?: string },
  exclude: ReadonlySet<string> = new Set(),
): Candidate[] => {
  const rank = (member: PoolMember): number | undefined => {
    const sameType = member.instanceType === request.instanceType;
    if (!sameType && (member.running || !resizeCompatible(member.instanceType, request.instanceType))) {
      return undefined;
    }
    const zone =
      request.availabilityZone === undefined || member.availabilityZone === request.availabilityZone ? 0 : 3;
    const kind = sameType ? (member.running ? 0 : 1) : 2;
    return zone + kind;
  };
  return members
    .filter((member) => member.state === 'ready' && !exclude.has(member.instanceId))
    .map((member) => ({ member, rank: rank(member) }))
    .filter((entry): entry is { member: PoolMember; rank: number } => entry.rank !== undefined)
    .sort(
      (a, b) =>
        a.rank - b.rank ||
        a.member.launchedAt - b.member.launchedAt ||
        a.member.instanceId.localeCompare(b.member.instanceId),
    )
    .map(({ member }) => ({
      member,
      resize: member.instanceType !== request.instanceType,
      path: member.running ? 'hot' : 'warm',
    }));
};
