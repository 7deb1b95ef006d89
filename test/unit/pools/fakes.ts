import type { ClaimDependencies } from '../../../functions/claim/dependencies';
import type { PoolEc2, PoolSsm } from '../../../functions/pools/adapters/ec2';
import { MemoryPoolStore } from '../../../functions/pools/adapters/memory-store';
import type { PoolTelemetry } from '../../../functions/pools/adapters/telemetry';
import { poolPolicySchema } from '../../../functions/pools/config';
import type { PoolsDependencies } from '../../../functions/pools/dependencies';
import { ImageOwnerNotAllowedError } from '../../../functions/pools/domain/admission';
import type { InitResult, ObservedInstance } from '../../../functions/pools/domain/reconcile';
import { isManagedBy } from '../../../functions/pools/domain/tags';
import type { Fact } from '../../../functions/shared/adapters/facts';
import type { Clock } from '../../../functions/shared/clock';
import {
  CapacityError,
  DependencyError,
  IncorrectStateError,
  UnmanagedResourceError,
} from '../../../functions/shared/errors';
import { NOW } from './fixtures';

/** A clock whose sleeps pass at once (after yielding), so concurrent service calls interleave. */
export class TestClock implements Clock {
  #now = NOW;
  now(): number {
    return this.#now;
  }
  async sleep(ms: number): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    this.#now += ms;
  }
}

const yieldTurn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * EC2 as the pools and claim services see it: instances with tags and a state that moves at once
 * (start → running, stop → stopped). `noCapacity` makes StartInstances and RunInstances refuse an
 * AZ; every call yields, so concurrent callers interleave between calls like real ones.
 */
export class FakeEc2 implements PoolEc2 {
  readonly instances = new Map<string, ObservedInstance>();
  readonly calls: string[] = [];
  readonly noCapacity = new Set<string>();
  /** Tags of each instance's root volume, launched with the instance's tags like RunInstances does. */
  readonly volumeTags = new Map<string, Record<string, string>>();
  readonly #clock: Clock;
  #next = 0;
  constructor(clock: Clock) {
    this.#clock = clock;
  }

  add(
    instance: Partial<ObservedInstance> & { instanceId: string; tags: Record<string, string> },
  ): ObservedInstance {
    const full: ObservedInstance = {
      state: 'stopped',
      imageId: 'ami-0a1b2c3d4e5f60718',
      instanceType: 'm7i.large',
      availabilityZone: 'us-east-1a',
      subnetId: 'subnet-0aaaaaaaaaaaaaaa1',
      launchedAt: this.#clock.now(),
      volumeIds: [`vol-${instance.instanceId.slice(2)}`],
      ...instance,
    };
    this.instances.set(full.instanceId, full);
    for (const volumeId of full.volumeIds ?? []) this.volumeTags.set(volumeId, { ...full.tags });
    return full;
  }

  async describePool(pool: string) {
    await yieldTurn();
    return [...this.instances.values()].filter((instance) => instance.tags['warmboot:pool'] === pool);
  }
  async describe(instanceId: string) {
    await yieldTurn();
    return this.instances.get(instanceId);
  }
  /** Every ClientToken RunInstances was sent, in order. */
  readonly clientTokens: string[] = [];
  /** AMIs of an owner the pool policy does not allow. */
  readonly foreignImages = new Set<string>();

  async checkImageOwner(imageId: string) {
    if (this.foreignImages.has(imageId)) throw new ImageOwnerNotAllowedError(imageId, ['self', 'amazon']);
  }

  async launch(input: Parameters<PoolEc2['launch']>[0]) {
    await this.checkImageOwner(input.imageId);
    this.calls.push(`launch ${input.subnetId}`);
    this.clientTokens.push(input.clientToken);
    // RunInstances: "Maximum 64 ASCII characters" (API_RunInstances, ClientToken).
    if (input.clientToken.length > 64)
      throw new DependencyError('RunInstances failed: InvalidParameterValue');
    await yieldTurn();
    await yieldTurn();
    const zone = input.subnetId.endsWith('1') ? 'us-east-1a' : 'us-east-1b';
    if (this.noCapacity.has(zone)) throw new CapacityError(`no capacity in ${zone}`);
    this.#next += 1;
    return this.add({
      instanceId: `i-${this.#next.toString(16).padStart(17, 'f')}`,
      state: 'pending',
      imageId: input.imageId,
      instanceType: input.instanceType ?? input.spec.instanceType,
      availabilityZone: zone,
      subnetId: input.subnetId,
      tags: { ...input.tags },
      clientToken: input.clientToken,
    });
  }
  async start(instance: ObservedInstance, pool: string) {
    this.#fence(instance, pool);
    this.calls.push(`start ${instance.instanceId}`);
    await yieldTurn();
    const current = this.instances.get(instance.instanceId);
    if (current?.state !== 'stopped') throw new IncorrectStateError(`${instance.instanceId} is not stopped`);
    if (this.noCapacity.has(current.availabilityZone))
      throw new CapacityError('InsufficientInstanceCapacity');
    this.instances.set(instance.instanceId, { ...current, state: 'running' });
  }
  async stop(instance: ObservedInstance, pool: string) {
    this.#fence(instance, pool);
    this.calls.push(`stop ${instance.instanceId}`);
    this.#patch(instance.instanceId, { state: 'stopped' });
  }
  async terminate(instance: ObservedInstance, pool: string) {
    this.#fence(instance, pool);
    this.calls.push(`terminate ${instance.instanceId}`);
    this.#patch(instance.instanceId, { state: 'terminated' });
  }
  async resize(instance: ObservedInstance, pool: string, instanceType: string) {
    this.#fence(instance, pool);
    this.calls.push(`resize ${instance.instanceId} ${instanceType}`);
    this.#patch(instance.instanceId, { instanceType });
  }
  async tag(instanceId: string, tags: Record<string, string>) {
    const current = this.instances.get(instanceId);
    if (current) this.#patch(instanceId, { tags: { ...current.tags, ...tags } });
  }
  async untag(instanceId: string, keys: readonly string[]) {
    const current = this.instances.get(instanceId);
    if (current) {
      this.#patch(instanceId, {
        tags: Object.fromEntries(Object.entries(current.tags).filter(([key]) => !keys.includes(key))),
      });
    }
  }
  async untagVolumes(instance: ObservedInstance, pool: string, keys: readonly string[]) {
    this.#fence(instance, pool);
    this.calls.push(`untag-volumes ${instance.instanceId}`);
    await yieldTurn();
    for (const volumeId of instance.volumeIds ?? []) {
      const tags = this.volumeTags.get(volumeId) ?? {};
      this.volumeTags.set(
        volumeId,
        Object.fromEntries(Object.entries(tags).filter(([key]) => !keys.includes(key))),
      );
    }
  }
  #patch(instanceId: string, changes: Partial<ObservedInstance>) {
    const current = this.instances.get(instanceId);
    if (current) this.instances.set(instanceId, { ...current, ...changes });
  }
  #fence(instance: ObservedInstance, pool: string) {
    if (!isManagedBy(instance.tags, pool))
      throw new UnmanagedResourceError(`${instance.instanceId} is not ${pool}'s`);
  }
}

/**
 * Run Command with scripted results: `offlineSends` refusals first (agent not registered yet).
 * IAM as the pools and claim roles have it (infra/capabilities/pools.ts, RunPoolDocumentsOnMembers):
 * SendCommand is allowed only on instances that carry `warmboot:pools=true` and a
 * `warmboot:pool` tag at the moment of the call, else AccessDeniedException.
 */
export class FakeSsm implements PoolSsm {
  readonly sent: { instanceId: string; document: string; parameters: Record<string, string[]> }[] = [];
  readonly results = new Map<string, InitResult>();
  readonly parameters = new Map<string, string>();
  offlineSends = 0;

  constructor(
    private readonly ec2?: { readonly instances: ReadonlyMap<string, { tags: Record<string, string> }> },
  ) {}

  async resolveImage(image: string) {
    return image.startsWith('/') ? (this.parameters.get(image) ?? 'ami-00000000000000000') : image;
  }
  async send(instanceId: string, document: string, parameters: Record<string, string[]>) {
    const tags = this.ec2?.instances.get(instanceId)?.tags;
    if (this.ec2 && (tags?.['warmboot:pools'] !== 'true' || tags['warmboot:pool'] === undefined)) {
      throw new DependencyError(
        `SendCommand failed: AccessDeniedException: not authorized to perform ssm:SendCommand on ${instanceId}`,
      );
    }
    if (this.offlineSends > 0) {
      this.offlineSends -= 1;
      throw new IncorrectStateError(`SendCommand failed: InvalidInstanceId: ${instanceId} not registered`);
    }
    this.sent.push({ instanceId, document, parameters });
    return `command-${this.sent.length}`;
  }
  async result(commandId: string) {
    return this.results.get(commandId) ?? 'success';
  }
}

export interface Harness {
  readonly clock: TestClock;
  readonly store: MemoryPoolStore;
  readonly ec2: FakeEc2;
  readonly ssm: FakeSsm;
  readonly facts: Fact[];
  readonly pools: PoolsDependencies;
  readonly claims: ClaimDependencies;
}

/** Metrics and logs the services report: nobody reads them in these tests. */
const telemetry: PoolTelemetry = {
  foreignTagged: () => undefined,
  readyMembers: () => undefined,
  serverReady: () => undefined,
};

export const harness = (): Harness => {
  const clock = new TestClock();
  const store = new MemoryPoolStore();
  const ec2 = new FakeEc2(clock);
  const ssm = new FakeSsm(ec2);
  const facts: Fact[] = [];
  const publisher = {
    async publish(published: readonly Fact[]) {
      facts.push(...published);
    },
  };
  let seed = 0;
  const random = () => {
    seed = (seed * 9301 + 49297) % 233280;
    return seed / 233280;
  };
  return {
    clock,
    store,
    ec2,
    ssm,
    facts,
    pools: { store, ec2, ssm, facts: publisher, clock, random, telemetry },
    claims: {
      store,
      ec2,
      ssm,
      facts: publisher,
      clock,
      random,
      telemetry,
      policy: poolPolicySchema.parse({}),
    },
  };
};
