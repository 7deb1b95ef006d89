import { type PoolSpec, type PoolSpecInput, poolSpecSchema } from '../../../functions/pools/config';
import type { LaunchIntent } from '../../../functions/pools/domain/launch-intents';
import type { PoolMember } from '../../../functions/pools/domain/lifecycle';
import type { ObservedInstance } from '../../../functions/pools/domain/reconcile';

export const NOW = Date.UTC(2026, 0, 5, 8, 0, 0);
export const AMI = 'ami-0a1b2c3d4e5f60718';

export const spec = (overrides: Partial<PoolSpecInput> = {}): PoolSpec =>
  poolSpecSchema.parse({
    name: 'linux-web',
    image: AMI,
    instanceType: 'm7i.large',
    subnets: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
    minSize: 2,
    maxSize: 4,
    ...overrides,
  });

let sequence = 0;
export const member = (overrides: Partial<PoolMember> = {}): PoolMember => {
  sequence += 1;
  return {
    pool: 'linux-web',
    instanceId: `i-${sequence.toString(16).padStart(17, '0')}`,
    origin: 'pool',
    state: 'ready',
    running: false,
    imageId: AMI,
    instanceType: 'm7i.large',
    availabilityZone: 'us-east-1a',
    subnetId: 'subnet-0aaaaaaaaaaaaaaa1',
    launchedAt: NOW - 3_600_000,
    stateSince: NOW - 1_800_000,
    version: 3,
    ...overrides,
  };
};

export const observedFor = (
  of: PoolMember,
  state: ObservedInstance['state'] = of.state === 'ready' && !of.running ? 'stopped' : 'running',
  tags: Record<string, string> = {},
): ObservedInstance => ({
  instanceId: of.instanceId,
  state,
  imageId: of.imageId,
  instanceType: of.instanceType,
  availabilityZone: of.availabilityZone,
  subnetId: of.subnetId,
  launchedAt: of.launchedAt,
  tags: { 'warmboot:pools': 'true', 'warmboot:pool': of.pool, 'warmboot:member-state': of.state, ...tags },
  clientToken: `token-${of.instanceId}`,
});

/** The launch intent warmboot recorded before launching `instance` (open unless `instanceId` is given). */
export const intentFor = (
  instance: ObservedInstance,
  overrides: Partial<LaunchIntent> = {},
): LaunchIntent => ({
  clientToken: instance.clientToken ?? `token-${instance.instanceId}`,
  pool: 'linux-web',
  subnetId: instance.subnetId,
  count: 1,
  origin: 'pool',
  nonce: 'nonce',
  createdAt: instance.launchedAt,
  ...overrides,
});
