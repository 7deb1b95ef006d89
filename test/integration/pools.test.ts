import { StopInstancesCommand } from '@aws-sdk/client-ec2';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { type ClaimRecord, dynamoPoolStore } from '../../functions/pools/adapters/store';
import type { PoolSpecInput } from '../../functions/pools/config';
import type { EventEnvelope } from '../../local/bus';
import type { LocalCloud } from '../../local/cloud';
import { plantForeignPoolMember } from '../../local/foreign-resources';
import { AMAZON_SSM_MANAGED_INSTANCE_CORE } from '../../local/iam/instance-profiles';
import { SimulatedAwsError } from '../../local/sdk-bridge';
import { sampleEvent } from '../support/events';
import { invokeSample, localCloudPerTest } from '../support/local-cloud';

const SECOND = 1_000;
const MINUTE = 60_000;
const SUBNET_A = 'subnet-0aaaaaaaaaaaaaaa1';
const SUBNET_B = 'subnet-0bbbbbbbbbbbbbbb2';
const POOL = 'linux-web';
/** The members' instance profile: its role carries AmazonSSMManagedInstanceCore, so their agents register. */
const MEMBER_PROFILE = 'web-member';

const definePoolEvent = sampleEvent('pools/define-pool.json');
const requestServerEvent = sampleEvent('claim/request-server.json');
const drainPoolEvent = sampleEvent('pools/drain-pool.json');

const startCloud = localCloudPerTest();

interface Started {
  readonly local: LocalCloud;
  readonly image: string;
  /** Every fact warmboot published, in order. */
  readonly facts: EventEnvelope[];
}

/** The instance profiles the pools of these tests launch with, allowed by the deployment's pool policy. */
const POOL_POLICY = JSON.stringify({ instanceProfiles: [{ name: MEMBER_PROFILE }, { name: 'no-ssm' }] });

const start = async (
  settings: Record<string, string> = {},
  iam?: { readonly ebsKmsKeyArns: readonly string[] },
): Promise<Started> => {
  const local = await startCloud({
    functions: ['pools', 'claim'],
    settings: { POOL_POLICY, ...settings },
    ...(iam ? { iam } : {}),
  });
  local.instanceProfiles.create(MEMBER_PROFILE, { managedPolicyArns: [AMAZON_SSM_MANAGED_INSTANCE_CORE] });
  local.ec2.addSubnet({ subnetId: SUBNET_A, availabilityZone: 'us-east-1a' });
  local.ec2.addSubnet({ subnetId: SUBNET_B, availabilityZone: 'us-east-1b' });
  const image = local.ec2.registerImage({ name: 'al2023-web', rootSizeGiB: 8 });
  const facts: EventEnvelope[] = [];
  local.bus.onEvent((event) => {
    if (event.source === 'warmboot.fact') facts.push(event);
  });
  return { local, image, facts };
};

const linuxPool = (image: string, overrides: Partial<PoolSpecInput> = {}): PoolSpecInput => ({
  name: POOL,
  image,
  instanceType: 'm7i.large',
  subnets: [SUBNET_A, SUBNET_B],
  instanceProfile: MEMBER_PROFILE,
  initialization: { platform: 'linux', packages: ['nginx'], timeoutMinutes: 30 },
  minSize: 2,
  maxSize: 3,
  ...overrides,
});

/** Define Pool is an administrative request: a direct invoke, not an event on the request bus. */
const definePool = (local: LocalCloud, pool: PoolSpecInput) =>
  local.adminRequest(definePoolEvent['detail-type'], { pool });

const store = (local: LocalCloud) => dynamoPoolStore(local.documents, local.tables.pools);
const membersOf = (local: LocalCloud, pool = POOL) => local.run(() => store(local).listMembers(pool));
const claimOf = (local: LocalCloud, requestId: string): Promise<ClaimRecord | undefined> =>
  local.run(() => store(local).getClaim(requestId));

let requests = 0;
type Outcome = {
  status: string;
  requestId: string;
  instanceId?: string;
  path?: string;
  timeToReadySeconds?: number;
  error?: { code: string };
};
const requestServer = async (local: LocalCloud, detail: Record<string, unknown> = {}): Promise<Outcome> => {
  requests += 1;
  const answer = (await invokeSample(local, 'claim', requestServerEvent, {
    id: `request-event-${requests}`,
    detail: {
      ...requestServerEvent.detail,
      requestId: `req-${requests}`,
      pool: POOL,
      instanceType: 'm7i.large',
      availabilityZone: 'us-east-1a',
      ...detail,
    },
  })) as { result: Outcome };
  return answer.result;
};

/** Instances the pool pays for: carrying the pool tag (not a claim's own launch) and not terminated. */
const poolInstances = (local: LocalCloud, pool = POOL) =>
  local.ec2
    .instances()
    .filter(
      (instance) =>
        instance.tags['warmboot:pool'] === pool &&
        instance.tags['warmboot:claim'] === undefined &&
        instance.state !== 'terminated' &&
        instance.state !== 'shutting-down',
    );

const readyEvents = (facts: readonly EventEnvelope[]) =>
  facts.filter((event) => event['detail-type'] === 'Server Ready');

/** Defines the pool and waits until every member is initialized and stopped. */
const filledPool = async (started: Started, overrides: Partial<PoolSpecInput> = {}) => {
  await definePool(started.local, linuxPool(started.image, overrides));
  await started.local.settleFor(5 * MINUTE);
  return membersOf(started.local);
};

/** Stands in for SSM Parameter Store (the SSM simulator only runs commands): answers GetParameter. */
const serveParameters = (local: LocalCloud, values: Map<string, string>): void => {
  for (const functionId of ['pools', 'claim'] as const) {
    local.runtime(functionId).clients.ssm.middlewareStack.add(
      (next, context) => async (args) => {
        if ((context as { commandName?: string }).commandName !== 'GetParameterCommand') return next(args);
        const name = String((args.input as { Name?: unknown }).Name);
        const value = values.get(name);
        if (value === undefined) throw new SimulatedAwsError('ParameterNotFound', `${name} not found`);
        return {
          output: { Parameter: { Name: name, Type: 'String', Value: value }, $metadata: {} },
          response: { statusCode: 200, headers: {} },
        } as never;
      },
      { step: 'initialize', priority: 'high', name: 'testParameterStore' },
    );
  }
};

describe('pool lifecycle on the local cloud', () => {
  it('launches, initializes over SSM, stops and marks members ready, mirroring the state in a tag', async () => {
    const { local, image } = await start();

    const members = await filledPool({ local, image, facts: [] });

    expect(members.map((member) => [member.state, member.running, member.origin])).toEqual([
      ['ready', false, 'pool'],
      ['ready', false, 'pool'],
    ]);
    expect(new Set(members.map((member) => member.availabilityZone))).toEqual(
      new Set(['us-east-1a', 'us-east-1b']),
    );
    for (const member of members) {
      const instance = local.ec2.instance(member.instanceId);
      expect(instance).toMatchObject({
        state: 'stopped',
        imageId: image,
        tags: { 'warmboot:pools': 'true', 'warmboot:pool': POOL, 'warmboot:member-state': 'ready' },
      });
      expect(local.ssm.agent(member.instanceId).files.get('package:nginx')).toBe('installed');
    }
    const inits = local.ssm
      .invocations()
      .filter((invocation) => invocation.documentName === 'Warmboot-PoolInitialize');
    expect(inits.map((invocation) => invocation.status)).toEqual(['Success', 'Success']);
  });

  it('fills a pool whose name takes all 63 characters (ClientToken at most 64, R10)', async () => {
    const { local, image } = await start();
    const name = `web${'-0'.repeat(30)}`;

    await definePool(local, linuxPool(image, { name }));
    await local.settleFor(5 * MINUTE);

    const members = await membersOf(local, name);
    expect(name).toHaveLength(63);
    expect(members.map((member) => member.state)).toEqual(['ready', 'ready']);
    const tokens = members.map((member) => local.ec2.instance(member.instanceId)?.clientToken ?? '');
    expect(tokens.every((token) => token.length > 0 && token.length <= 64)).toBe(true);
    expect(new Set(tokens).size).toBe(2);
  });

  it('hands out a stopped member on the warm path: started, re-owned, personalized, Server Ready, refilled', async () => {
    const started = await start();
    const { local, facts } = started;
    const before = await filledPool(started);

    const outcome = await requestServer(local, { personalization: { hostname: 'web-0001' } });

    expect(outcome).toMatchObject({ status: 'ready', path: 'warm' });
    const claimedMember = before.find((member) => member.instanceId === outcome.instanceId);
    expect(claimedMember?.availabilityZone).toBe('us-east-1a');
    // Start a stopped instance: 21.2 s measured; plus polling for running and a 3 s personalization.
    expect(outcome.timeToReadySeconds).toBeGreaterThanOrEqual(21.2);
    expect(outcome.timeToReadySeconds).toBeLessThan(35);
    const server = local.ec2.instance(outcome.instanceId ?? '');
    expect(server?.state).toBe('running');
    expect(server?.tags).toEqual(requestServerEvent.detail.ownerTags);
    // Its volumes were launched with the pool tags; none of them stays pool-managed.
    const volumes = local.ec2
      .volumes()
      .filter((volume) => volume.attachment?.instanceId === outcome.instanceId);
    expect(volumes).not.toHaveLength(0);
    for (const volume of volumes) {
      expect(Object.keys(volume.tags).filter((key) => key.startsWith('warmboot:'))).toEqual([]);
    }
    expect(local.ssm.agent(outcome.instanceId ?? '').files.get('hostname')).toBe('web-0001');
    expect(readyEvents(facts).map((event) => event.detail)).toEqual([
      {
        requestId: 'req-1',
        instanceId: outcome.instanceId,
        path: 'warm',
        timeToReadySeconds: outcome.timeToReadySeconds,
        pool: POOL,
      },
    ]);
    expect((await claimOf(local, 'req-1'))?.step).toBe('ready');

    await local.settleFor(4 * MINUTE);
    const after = await membersOf(local);
    expect(after.map((member) => member.state)).toEqual(['ready', 'ready']);
    expect(after.map((member) => member.instanceId)).not.toContain(outcome.instanceId);
    expect(poolInstances(local)).toHaveLength(2);
  });

  it('never gives one member to two concurrent requesters: the other one gets a cold launch', async () => {
    const started = await start();
    const { local, facts } = started;
    await filledPool(started, { minSize: 1, maxSize: 2 });

    const [first, second] = await local.run(() => Promise.all([requestServer(local), requestServer(local)]));

    const outcomes = [first, second].sort((a, b) => String(a?.path).localeCompare(String(b?.path)));
    expect(outcomes.map((outcome) => [outcome?.status, outcome?.path])).toEqual([
      ['launching', 'cold'],
      ['ready', 'warm'],
    ]);
    expect(first?.instanceId).not.toBe(second?.instanceId);

    await local.settleFor(6 * MINUTE);
    const ready = readyEvents(facts);
    expect(ready.map((event) => event.detail.path).sort()).toEqual(['cold', 'warm']);
    expect(new Set(ready.map((event) => event.detail.instanceId)).size).toBe(2);
    const cold = ready.find((event) => event.detail.path === 'cold');
    // Cold: launch (25.8 s measured) + initialization (120 s) + personalization.
    expect(cold?.detail.timeToReadySeconds).toBeGreaterThan(145);
    expect(local.ec2.instance(String(cold?.detail.instanceId))?.tags).toEqual(
      requestServerEvent.detail.ownerTags,
    );
    expect(poolInstances(local).length).toBeLessThanOrEqual(2);
  });

  it('on a capacity failure at start keeps the member in the pool and starts one in another AZ', async () => {
    const started = await start();
    const { local, facts } = started;
    const before = await filledPool(started);
    const inZoneA = before.find((member) => member.availabilityZone === 'us-east-1a');
    local.ec2.setCapacity('us-east-1a', 'm7i.large', 0);

    const outcome = await requestServer(local);

    expect(outcome).toMatchObject({ status: 'ready', path: 'warm' });
    expect(local.ec2.instance(outcome.instanceId ?? '')?.availabilityZone).toBe('us-east-1b');
    const kept = (await membersOf(local)).find((member) => member.instanceId === inZoneA?.instanceId);
    expect(kept).toMatchObject({ state: 'ready', running: false });
    expect(local.ec2.instance(inZoneA?.instanceId ?? '')).toMatchObject({
      state: 'stopped',
      tags: { 'warmboot:pool': POOL, 'warmboot:pools': 'true' },
    });

    // No capacity in either subnet's AZ: no member starts, the cold launch fails everywhere.
    local.ec2.setCapacity('us-east-1b', 'm7i.large', 0);
    await local.settleFor(4 * MINUTE);
    const failed = await requestServer(local);

    expect(failed).toMatchObject({ status: 'failed', error: { code: 'InsufficientCapacity' } });
    expect(
      facts
        .filter((event) => event['detail-type'] === 'Server Request Failed')
        .map((e) => e.detail.requestId),
    ).toEqual([failed.requestId]);
    expect((await membersOf(local)).find((member) => member.instanceId === inZoneA?.instanceId)?.state).toBe(
      'ready',
    );
  });

  it('resizes a stopped member to the requested type before starting it', async () => {
    const started = await start();
    const { local } = started;
    // The types requests may ask of the pool besides its own (security review H4).
    await filledPool(started, { instanceTypes: ['m7i.xlarge', 'm7g.large'] });

    const outcome = await requestServer(local, { instanceType: 'm7i.xlarge' });

    expect(outcome).toMatchObject({ status: 'ready', path: 'warm' });
    expect(local.ec2.instance(outcome.instanceId ?? '')).toMatchObject({
      state: 'running',
      instanceType: 'm7i.xlarge',
    });

    // A Graviton type cannot run this x86_64 AMI: no member can be resized to it, and EC2 refuses
    // to launch the image on it, so the request fails at once, naming the field.
    const arm = await requestServer(local, { instanceType: 'm7g.large' });
    expect(arm).toMatchObject({ status: 'failed', error: { code: 'IncompatibleInstanceType' } });
    expect(JSON.stringify(arm)).toContain('detail.instanceType');
    expect(local.ec2.instances().filter((instance) => instance.instanceType === 'm7g.large')).toEqual([]);
  });

  it('serves a request cold when the pool is empty and finishes it asynchronously once initialized', async () => {
    const started = await start();
    const { local, facts } = started;
    await filledPool(started, { minSize: 0 });

    const outcome = await requestServer(local, {
      requestId: 'cold-1',
      personalization: { hostname: 'cold-0001' },
    });

    expect(outcome).toMatchObject({ status: 'launching', path: 'cold' });
    expect((await claimOf(local, 'cold-1'))?.step).toBe('cold-launching');
    await local.settleFor(5 * MINUTE);
    expect(readyEvents(facts).map((event) => [event.detail.requestId, event.detail.path])).toEqual([
      ['cold-1', 'cold'],
    ]);
    expect((await claimOf(local, 'cold-1'))?.step).toBe('ready');
    const server = local.ec2.instance(outcome.instanceId ?? '');
    expect(server?.state).toBe('running');
    expect(server?.tags).toEqual(requestServerEvent.detail.ownerTags);
    expect(local.ssm.agent(outcome.instanceId ?? '').files.get('hostname')).toBe('cold-0001');
    expect(await membersOf(local)).toEqual([]);
  });

  it('fails a cold claim EC2 ended at launch for an EBS key the deployment does not name, naming the setting', async () => {
    const keyId = '1234abcd-12ab-34cd-56ef-1234567890ab';
    const keyArn = `arn:aws:kms:us-east-1:123456789012:key/${keyId}`;
    const started = await start({}, { ebsKmsKeyArns: [] });
    const { local, facts } = started;
    local.kms.createKey({ keyId });
    await filledPool(started, { minSize: 0 });
    // Every new volume is encrypted with the key (account default), the claim role may not use it.
    local.ec2.setEbsEncryptionByDefault(true, keyArn);

    const outcome = await requestServer(local, { requestId: 'cold-kms' });
    expect(outcome).toMatchObject({ status: 'launching', path: 'cold' });
    // The pools reconcile (on its schedule) finds the claim stalled and resumes it.
    local.startSchedules();
    await local.settleFor(5 * MINUTE);

    const failures = facts
      .filter((event) => event['detail-type'] === 'Server Request Failed')
      .map((event) => event.detail as { requestId: string; error: { code: string; message: string } });
    expect(failures.map((detail) => [detail.requestId, detail.error.code])).toEqual([
      ['cold-kms', 'EncryptionKeyUnusable'],
    ]);
    expect(failures[0]?.error.message).toContain('ebsKmsKeyArns');
    expect(local.ec2.instance(outcome.instanceId ?? '')).toMatchObject({
      state: 'terminated',
      stateReason: { code: 'Client.InternalError' },
    });
    expect((await claimOf(local, 'cold-kms'))?.step).toBe('failed');
  });

  it('hands out a running member on the hot path in seconds', async () => {
    const started = await start();
    const { local } = started;
    const members = await filledPool(started, { tier: 'running', minSize: 1 });
    expect(members.map((member) => [member.state, member.running])).toEqual([['ready', true]]);

    const outcome = await requestServer(local);

    expect(outcome).toMatchObject({ status: 'ready', path: 'hot' });
    expect(outcome.timeToReadySeconds).toBeLessThan(10);
  });
});

describe('pool reconcile on the local cloud', () => {
  it('converges to ready members when every EC2 and SSM event to the pools function is lost', async () => {
    const started = await start();
    const { local } = started;
    local.bus.injectFault({ match: { functionId: 'pools', source: 'aws.ec2' }, fault: { kind: 'drop' } });
    local.bus.injectFault({ match: { functionId: 'pools', source: 'aws.ssm' }, fault: { kind: 'drop' } });
    local.startSchedules();

    await definePool(local, linuxPool(started.image));
    await local.settleFor(12 * MINUTE);

    const members = await membersOf(local);
    expect(members.map((member) => [member.state, member.running])).toEqual([
      ['ready', false],
      ['ready', false],
    ]);
    expect(poolInstances(local).map((instance) => instance.state)).toEqual(['stopped', 'stopped']);
  });

  it("reconciles the other pools when a stored definition no longer passes today's rules, reporting that one", async () => {
    const started = await start();
    const { local } = started;
    local.bus.injectFault({ match: { functionId: 'pools', source: 'aws.ec2' }, fault: { kind: 'drop' } });
    local.bus.injectFault({ match: { functionId: 'pools', source: 'aws.ssm' }, fault: { kind: 'drop' } });
    // An operator's pool stored by an older release: no subnets, which today's rules require.
    const { subnets: _subnets, ...legacySpec } = linuxPool(started.image, { name: 'legacy-web' });
    await local.run(() =>
      local.documents.send(
        new PutCommand({
          TableName: local.tables.pools,
          Item: {
            pk: 'POOL#legacy-web',
            sk: 'SPEC',
            gsi1pk: 'POOLS',
            gsi1sk: 'legacy-web',
            spec: legacySpec,
            source: 'operator',
            status: 'active',
          },
        }),
      ),
    );
    local.startSchedules();

    await definePool(local, linuxPool(started.image));
    await local.settleFor(12 * MINUTE);

    expect((await membersOf(local)).map((member) => member.state)).toEqual(['ready', 'ready']);
    expect(local.bus.stats('pools')).toMatchObject({ errors: 0, deadLettered: 0 });
    // An operator's console Reconcile Pools sees why that one is not reconciled.
    const reconciled = (await invokeSample(
      local,
      'pools',
      { ...drainPoolEvent, 'detail-type': 'Reconcile Pools' },
      { id: 'reconcile-1', detail: {} },
    )) as { result: unknown };
    expect(JSON.stringify(reconciled.result)).toContain(
      "pool legacy-web: the stored definition no longer passes today's rules (spec.subnets",
    );
    // Defining it again replaces the stored definition.
    await definePool(local, linuxPool(started.image, { name: 'legacy-web', minSize: 0 }));
    expect((await local.run(() => store(local).getPool('legacy-web')))?.spec.subnets).toEqual([
      SUBNET_A,
      SUBNET_B,
    ]);
  });

  it('upserts the pools given in settings on the schedule', async () => {
    const probe = await start();
    const image = probe.image;
    const { local } = await start({ POOLS: JSON.stringify([linuxPool(image, { minSize: 1 })]) });
    local.ec2.registerImage({ name: 'al2023-web-2', rootSizeGiB: 8, imageId: image });
    local.startSchedules();

    await local.settleFor(8 * MINUTE);

    const record = await local.run(() => store(local).getPool(POOL));
    expect(record).toMatchObject({ source: 'context', status: 'active' });
    expect((await membersOf(local)).map((member) => member.state)).toEqual(['ready']);
  });

  it('re-resolves an SSM alias image: members of the old AMI are retired and replaced', async () => {
    const started = await start();
    const { local, image } = started;
    // Pools defined at run time may name parameters under /warmboot/images/ only (R11).
    const parameter = '/warmboot/images/al2023-latest';
    const values = new Map([[parameter, image]]);
    serveParameters(local, values);
    const before = await filledPool(started, { image: parameter });
    expect(before.map((member) => member.imageId)).toEqual([image, image]);

    const newer = local.ec2.registerImage({ name: 'al2023-web-newer', rootSizeGiB: 8 });
    values.set(parameter, newer);
    local.startSchedules();
    await local.putEvent({ source: 'warmboot', detailType: 'Reconcile Pools', detail: { pool: POOL } });
    let most = 0;
    local.bus.onInvocation(() => {
      most = Math.max(most, poolInstances(local).length);
    });
    // Retiring members still count against maxSize (3) until terminated: replacements follow one by one.
    await local.settleFor(10 * MINUTE);

    expect(most).toBeLessThanOrEqual(3);

    const after = await membersOf(local);
    expect(after.map((member) => [member.state, member.imageId])).toEqual([
      ['ready', newer],
      ['ready', newer],
    ]);
    for (const member of before) expect(local.ec2.instance(member.instanceId)?.state).toBe('terminated');
  });

  it('drains a pool: every member terminated, no refill, requests refused', async () => {
    const started = await start();
    const { local } = started;
    await filledPool(started);
    local.startSchedules();

    await local.adminRequest(drainPoolEvent['detail-type'], { pool: POOL });
    await local.settleFor(6 * MINUTE);

    expect(poolInstances(local)).toEqual([]);
    expect(await membersOf(local)).toEqual([]);
    expect(await requestServer(local)).toMatchObject({ status: 'failed', error: { code: 'NotFound' } });
  });

  it('never adopts, hands out or terminates an instance someone else tagged as a ready member (H1)', async () => {
    const started = await start();
    const { local } = started;
    // Someone with ec2:RunInstances and tagging rights (not a warmboot role) plants a server of
    // their own, tagged as a stopped ready member, under the readable token warmboot once used.
    const planted = await plantForeignPoolMember(local, {
      pool: POOL,
      imageId: started.image,
      subnetId: SUBNET_A,
    });
    const ec2 = local.runtime('pools').clients.ec2;
    await local.settleFor(MINUTE);
    await local.run(() => ec2.send(new StopInstancesCommand({ InstanceIds: [planted] })));
    await local.settleFor(MINUTE);

    const members = await filledPool(started, { minSize: 1, maxSize: 2 });
    local.startSchedules();
    const served = await requestServer(local);
    const { answer } = await local.adminRequest(drainPoolEvent['detail-type'], { pool: POOL });
    await local.settleFor(6 * MINUTE);

    expect(members.map((member) => member.instanceId)).not.toContain(planted);
    expect(served).toMatchObject({ status: 'ready' });
    expect(served.instanceId).not.toBe(planted);
    expect(answer).toMatchObject({ result: { foreignTagged: [planted] } });
    expect(local.ec2.instance(planted)?.state).toBe('stopped');
    const touched = local.calls
      .calls()
      .filter((call) => call.resource.id === planted && call.caller !== 'outside');
    expect(touched.map((call) => `${call.caller} ${call.operation}`)).toEqual([]);
    expect(poolInstances(local).map((instance) => instance.instanceId)).toEqual([planted]);
  });

  it('never holds more than maxSize members while claims, refills and reconciles race', async () => {
    const started = await start();
    const { local } = started;
    await filledPool(started, { minSize: 3, maxSize: 3 });
    local.startSchedules();
    let most = 0;
    local.bus.onInvocation(() => {
      most = Math.max(most, poolInstances(local).length);
    });

    const outcomes: Outcome[] = [];
    for (let round = 0; round < 3; round++) {
      outcomes.push(...(await local.run(() => Promise.all([requestServer(local), requestServer(local)]))));
      await local.putEvent({ source: 'warmboot', detailType: 'Reconcile Pools', detail: {} });
      await local.settleFor(30 * SECOND);
    }
    // The later requests find the pool full of members on their way and wait for them (a cold
    // launch would pass maxSize): their hand-overs, then the refill, take a few more minutes.
    await local.settleFor(14 * MINUTE);

    expect(most).toBeLessThanOrEqual(3);
    for (const { requestId } of outcomes) {
      expect((await claimOf(local, requestId))?.step, requestId).toBe('ready');
    }
    expect((await membersOf(local)).map((member) => member.state)).toEqual(['ready', 'ready', 'ready']);
  });
});

describe('pools with SSM agents that register late or never (S4, W6, W7)', () => {
  it('retires members whose instance profile lacks the SSM core policy as agent-never-registered', async () => {
    const started = await start();
    const { local } = started;
    local.instanceProfiles.create('no-ssm', { allowedActions: ['s3:GetObject'] });
    const seen = new Map<string, string>();
    local.startSchedules();

    await definePool(local, linuxPool(started.image, { instanceProfile: 'no-ssm', minSize: 1, maxSize: 1 }));
    // A retiring member is recorded until its termination is seen (seconds): sample often.
    for (let elapsed = 0; elapsed < 14 * MINUTE; elapsed += 10 * SECOND) {
      await local.settleFor(10 * SECOND);
      for (const member of await membersOf(local))
        seen.set(`${member.instanceId}:${member.state}`, member.reason ?? '');
    }

    expect([...seen.keys()].some((key) => key.endsWith(':joining'))).toBe(true);
    expect([...seen.keys()].some((key) => key.endsWith(':initializing'))).toBe(false);
    expect(
      [...seen.entries()].filter(([key]) => key.endsWith(':retiring')).map(([, reason]) => reason),
    ).toEqual(['agent-never-registered']);
    expect(local.ssm.invocations()).toEqual([]);
    expect(
      local.ec2
        .instances()
        .filter((instance) => instance.tags['warmboot:retired-for'] === 'agent-never-registered'),
    ).not.toEqual([]);
    expect(local.iam.denials()).toEqual([]);
    expect(local.bus.stats('pools')).toMatchObject({ timeouts: 0, errors: 0 });
  });

  it('a Define Pool with more launches than one invocation has time for defers the rest instead of timing out', async () => {
    const started = await start();
    const { local } = started;
    local.startSchedules();

    await definePool(local, linuxPool(started.image, { minSize: 30, maxSize: 30 }));
    await local.settleFor(2 * MINUTE + 30 * SECOND);

    expect(local.bus.stats('pools')).toMatchObject({ timeouts: 0 });
    await local.settleFor(6 * MINUTE);
    expect(poolInstances(local)).toHaveLength(30);
    expect(local.bus.stats('pools')).toMatchObject({ timeouts: 0, errors: 0 });
    expect(local.bus.deadLetters('pools')).toEqual([]);
  });
});
