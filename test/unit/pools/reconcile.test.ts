import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { countsAgainstMax, MEMBER_STATES, type PoolMember } from '../../../functions/pools/domain/lifecycle';
import {
  AGENT_FAILURE_HOLD_MS,
  AGENT_REGISTRATION_DEADLINE_MS,
  CLAIM_TIMEOUT_MS,
  KEY_FAILURE_HOLD_MS,
  type ObservedInstance,
  type ReconcileInput,
  reconcilePool,
} from '../../../functions/pools/domain/reconcile';
import { AMI, intentFor, member, NOW, observedFor, spec } from './fixtures';

const input = (overrides: Partial<ReconcileInput>): ReconcileInput => ({
  spec: spec(),
  draining: false,
  members: [],
  observed: [],
  currentImageId: AMI,
  sizing: { targetSize: 2, runningSize: 0 },
  initResults: new Map(),
  intents: [],
  launchNonce: '5f0c6a1e9d2b4c7a8e3f1b0d2c4a6e8f',
  now: NOW,
  ...overrides,
});

/** The input of a pool whose `members` all exist, each in the state its record implies. */
const inputWith = (members: PoolMember[], overrides: Partial<ReconcileInput> = {}): ReconcileInput =>
  input({ members, observed: members.map((m) => observedFor(m)), ...overrides });

const kinds = (actions: ReturnType<typeof reconcilePool>) => actions.map((action) => action.kind).sort();

describe('reconcilePool', () => {
  it('launches up to the target, spread over the subnets', () => {
    const actions = reconcilePool(input({ sizing: { targetSize: 2, runningSize: 0 } }));
    expect(actions.filter((action) => action.kind === 'launch').map((action) => action.subnetId)).toEqual([
      'subnet-0aaaaaaaaaaaaaaa1',
      'subnet-0bbbbbbbbbbbbbbb2',
    ]);
  });

  it('gives every launch a ClientToken of at most 64 characters, distinct per launch and the same on a retry (R10)', () => {
    // The longest pool name POOL_NAME_PATTERN allows; API_RunInstances ClientToken: "Maximum 64 ASCII characters".
    const longName = spec({ name: `p${'-x'.repeat(31)}` });
    const tokens = (now: number) =>
      reconcilePool(input({ spec: longName, now, sizing: { targetSize: 3, runningSize: 0 } })).flatMap(
        (action) => (action.kind === 'launch' ? [action.clientToken] : []),
      );

    const first = tokens(NOW);

    expect(longName.name).toHaveLength(63);
    expect(first).toHaveLength(3);
    for (const token of first) expect(token).toMatch(/^[\x21-\x7e]{1,64}$/);
    expect(new Set([...first, ...tokens(NOW + 1_000)]).size).toBe(6);
    expect(tokens(NOW)).toEqual(first);
  });

  it("makes launch tokens nobody can compute in advance: they depend on the reconcile's secret nonce (L7)", () => {
    const launchOf = (launchNonce: string) =>
      reconcilePool(input({ launchNonce, sizing: { targetSize: 1, runningSize: 0 } }))[0];

    const launch = launchOf('5f0c6a1e9d2b4c7a8e3f1b0d2c4a6e8f');

    expect(launch).toMatchObject({ kind: 'launch', nonce: '5f0c6a1e9d2b4c7a8e3f1b0d2c4a6e8f' });
    const token = launch?.kind === 'launch' ? launch.clientToken : '';
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(token).not.toContain(spec().name);
    expect(token).not.toContain(String(Math.floor(NOW / 1000)));
    expect(launchOf('0b7e4d2c9a1f3e5d7c9b1a3f5e7d9c1b')).toMatchObject({ kind: 'launch' });
    expect(launchOf('0b7e4d2c9a1f3e5d7c9b1a3f5e7d9c1b')).not.toMatchObject({ clientToken: token });
  });

  it('counts members still launching or initializing toward the target', () => {
    const launching = member({ state: 'launching', stateSince: NOW - 10_000 });
    const initializing = member({ state: 'initializing', initCommandId: 'cmd-1' });
    const actions = reconcilePool(
      input({
        members: [launching, initializing],
        observed: [observedFor(launching, 'pending'), observedFor(initializing)],
      }),
    );
    expect(kinds(actions)).toEqual([]);
  });

  /** The launches planned for a pool of at most four with `members` (ready ones stopped), sized to `targetSize`. */
  const launchesUnderMaxFour = (members: PoolMember[], targetSize: number) =>
    reconcilePool(
      input({
        spec: spec({ maxSize: 4 }),
        members,
        observed: members.map((m) => observedFor(m, m.state === 'ready' ? 'stopped' : 'running')),
        sizing: { targetSize, runningSize: 0 },
      }),
    ).filter((action) => action.kind === 'launch');

  it('never launches past max even when the target is larger', () => {
    const members = [member(), member({ state: 'retiring' }), member({ state: 'claimed', stateSince: NOW })];
    expect(launchesUnderMaxFour(members, 10)).toHaveLength(1);
  });

  it("leaves room for claims' cold launches under way: refill and cold launches together stay within max (H4)", () => {
    const members = [
      member(),
      member({ origin: 'claim', claimId: 'req-1', state: 'initializing' }),
      member({ origin: 'claim', claimId: 'req-2', state: 'launching' }),
    ];
    expect(launchesUnderMaxFour(members, 4)).toHaveLength(1);
  });

  it('retires a member whose image is no longer what the SSM alias resolves to, and replaces it', () => {
    const old = member({ imageId: 'ami-00000000000000001' });
    const current = member();
    const actions = reconcilePool(inputWith([old, current], { sizing: { targetSize: 2, runningSize: 0 } }));
    expect(actions).toContainEqual({ kind: 'retire', member: old, reason: 'image-changed' });
    expect(actions.filter((action) => action.kind === 'launch')).toHaveLength(1);
  });

  it('retires members older than maxAgeHours and members whose initialization failed or timed out', () => {
    const aged = member({ launchedAt: NOW - 200 * 3_600_000 });
    const failed = member({ state: 'initializing', initCommandId: 'cmd-f' });
    const slow = member({ state: 'initializing', initCommandId: 'cmd-s', stateSince: NOW - 61 * 60_000 });
    const actions = reconcilePool(
      inputWith([aged, failed, slow], { initResults: new Map([[failed.instanceId, 'failed']]) }),
    );
    const reasons = actions.flatMap((action) => (action.kind === 'retire' ? [action.reason] : []));
    expect(reasons.sort()).toEqual(['init-failed', 'init-timeout', 'max-age']);
  });

  it('heals lost events: launching member running → initialize; stopping member stopped → ready', () => {
    const launched = member({ state: 'launching' });
    const stopping = member({ state: 'stopping' });
    const actions = reconcilePool(
      input({
        members: [launched, stopping],
        observed: [observedFor(launched, 'running'), observedFor(stopping, 'stopped')],
      }),
    );
    expect(actions).toContainEqual({ kind: 'initialize', member: launched });
    expect(actions).toContainEqual({ kind: 'mark-ready', member: stopping, running: false });
  });

  it('adopts a tagged instance without a member record whose ClientToken names an open intent (crash between RunInstances and the write)', () => {
    const orphan = observedFor(member({ state: 'launching' }), 'running');
    const actions = reconcilePool(
      input({ observed: [orphan], intents: [intentFor(orphan)], sizing: { targetSize: 1, runningSize: 0 } }),
    );
    expect(kinds(actions)).toEqual(['adopt']);
    expect(actions[0]).toMatchObject({ clientToken: orphan.clientToken });
  });

  describe('never adopts an instance only because it carries the pool tags (H1)', () => {
    const planted = observedFor(member({ state: 'ready' }), 'stopped');
    const cases: [string, Partial<ReconcileInput>][] = [
      ['no intent at all', { intents: [] }],
      ['an intent of another pool', { intents: [intentFor(planted, { pool: 'other-pool' })] }],
      [
        'its token in another subnet (EC2 binds a token per zone)',
        { intents: [intentFor(planted, { subnetId: 'subnet-0bbbbbbbbbbbbbbb2' })] },
      ],
      [
        'a closed intent (a handed-over server tagged again)',
        { intents: [intentFor(planted, { instanceId: 'i-0000000000000abcd' })] },
      ],
      [
        'an intent older than its TTL',
        { intents: [intentFor(planted, { createdAt: NOW - 25 * 3_600_000 })] },
      ],
      [
        'no ClientToken',
        { observed: [{ ...planted, clientToken: undefined }], intents: [intentFor(planted)] },
      ],
    ];
    it.each(cases)('%s', (_, overrides) => {
      const actions = reconcilePool(
        input({ observed: [planted], sizing: { targetSize: 0, runningSize: 0 }, ...overrides }),
      );
      expect(actions).toEqual([]);
    });

    it("adopts at most the intent's count of instances under one token", () => {
      const first = observedFor(member({ state: 'launching', launchedAt: NOW - 2_000 }), 'running');
      const second = {
        ...observedFor(member({ state: 'launching', launchedAt: NOW - 1_000 }), 'running'),
        clientToken: first.clientToken,
      };
      const actions = reconcilePool(
        input({
          observed: [second, first],
          intents: [intentFor(first)],
          sizing: { targetSize: 0, runningSize: 0 },
        }),
      );
      expect(
        actions.map((action) => (action.kind === 'adopt' ? action.member.instanceId : action.kind)),
      ).toEqual([first.instanceId]);
    });
  });

  it('closes an open intent whose instance already has a member record (launcher died after the member write)', () => {
    const recorded = member({ state: 'launching', stateSince: NOW - 10_000 });
    const instance = observedFor(recorded, 'pending');
    const intent = intentFor(instance);
    const actions = reconcilePool(
      input({
        members: [recorded],
        observed: [instance],
        intents: [intent],
        sizing: { targetSize: 1, runningSize: 0 },
      }),
    );
    expect(actions).toEqual([{ kind: 'close-intent', intent, instanceId: recorded.instanceId }]);
  });

  it('releases a claim stuck on a still-stopped member and retires one stuck after it started', () => {
    const stale = NOW - CLAIM_TIMEOUT_MS - 1;
    const untouched = member({ state: 'claimed', claimId: 'c1', stateSince: stale });
    const started = member({ state: 'claimed', claimId: 'c2', stateSince: stale });
    const transferred = member({ state: 'claimed', claimId: 'c3', stateSince: NOW });
    const actions = reconcilePool(
      input({
        members: [untouched, started, transferred],
        observed: [
          observedFor(untouched, 'stopped'),
          observedFor(started, 'running'),
          { ...observedFor(transferred, 'running'), tags: { owner: 'team-a' } },
        ],
      }),
    );
    expect(actions).toContainEqual({ kind: 'release', member: untouched });
    expect(actions).toContainEqual({ kind: 'retire', member: started, reason: 'claim-abandoned' });
    expect(actions).toContainEqual({ kind: 'hand-over', member: transferred });
  });

  it('drains: retires every pool member, launches nothing, leaves claims alone', () => {
    const ready = member();
    const claimed = member({ state: 'claimed', claimId: 'c', stateSince: NOW });
    const actions = reconcilePool(
      input({
        draining: true,
        members: [ready, claimed],
        observed: [observedFor(ready), observedFor(claimed, 'running')],
      }),
    );
    expect(actions).toEqual([{ kind: 'retire', member: ready, reason: 'draining' }]);
  });

  it('retires surplus members only once they idled past the break-even, oldest first', () => {
    const breakEven = 1.37 * 3_600_000;
    const fresh = member({ stateSince: NOW - 10 * 60_000, launchedAt: NOW - 20 * 60_000 });
    const idle = member({ stateSince: NOW - 2 * 3_600_000, launchedAt: NOW - 3 * 3_600_000 });
    const oldest = member({ stateSince: NOW - 2 * 3_600_000, launchedAt: NOW - 50 * 3_600_000 });
    const members = [fresh, idle, oldest];
    const retired = (targetSize: number, retireSurplusAfterIdleMs?: number) =>
      reconcilePool(
        inputWith(members, {
          spec: spec({ minSize: 0, maxSize: 4 }),
          sizing: { targetSize, runningSize: 0, retireSurplusAfterIdleMs },
        }),
      ).flatMap((action) => (action.kind === 'retire' ? [[action.member, action.reason]] : []));

    // One surplus member: the oldest of those idle past the break-even.
    expect(retired(2, breakEven)).toEqual([[oldest, 'scale-down']]);
    // Three surplus members, but the fresh one is kept: a claim may still take it.
    expect(retired(0, breakEven)).toEqual([
      [oldest, 'scale-down'],
      [idle, 'scale-down'],
    ]);
    // Without a break-even (fixed pools, retireSurplus at-once) the surplus goes at once.
    expect(retired(0)).toHaveLength(3);
  });

  it('retires over the quota at once, whatever the break-even', () => {
    const members = [member({ stateSince: NOW - 60_000 }), member({ stateSince: NOW - 60_000 })];
    const actions = reconcilePool(
      inputWith(members, {
        spec: spec({ minSize: 0, maxSize: 1 }),
        sizing: { targetSize: 1, runningSize: 0, retireSurplusAfterIdleMs: 8 * 3_600_000 },
      }),
    );
    expect(actions.filter((action) => action.kind === 'retire')).toEqual([
      expect.objectContaining({ kind: 'retire', reason: 'over-max' }),
    ]);
  });

  it('starts stopped members to fill the running tier', () => {
    const a = member();
    const b = member();
    const actions = reconcilePool(inputWith([a, b], { sizing: { targetSize: 2, runningSize: 1 } }));
    expect(kinds(actions)).toEqual(['start']);
  });

  it('launches nothing for a while after EC2 ended a launch for its EBS key, instead of relaunching every reconcile (R4)', () => {
    const died: ObservedInstance = {
      ...observedFor(member({ state: 'launching', launchedAt: NOW - 60_000 }), 'terminated'),
      stateReason: 'Client.InternalError',
    };
    const userTerminated = observedFor(member({ launchedAt: NOW - 60_000 }), 'terminated');
    const launched = [died, userTerminated].map((instance) =>
      intentFor(instance, { instanceId: instance.instanceId }),
    );
    const launches = (now: number, observed = [died], intents = launched) =>
      reconcilePool(input({ observed, intents, now, sizing: { targetSize: 2, runningSize: 0 } })).filter(
        (action) => action.kind === 'launch',
      ).length;

    expect(launches(NOW)).toBe(0);
    expect(launches(NOW - 60_000 + KEY_FAILURE_HOLD_MS)).toBe(2);
    expect(launches(NOW, [userTerminated])).toBe(2);
    // An instance the pool did not launch holds nothing, whatever EC2 says ended it.
    expect(launches(NOW, [died], [])).toBe(2);
  });

  it('retires a member still joining past its registration deadline as agent-never-registered', () => {
    const joining = member({
      state: 'joining',
      running: true,
      stateSince: NOW - AGENT_REGISTRATION_DEADLINE_MS.linux - 1,
    });
    const recent = member({ state: 'joining', running: true, stateSince: NOW - 60_000 });
    const actions = reconcilePool(
      inputWith([joining, recent], { sizing: { targetSize: 2, runningSize: 0 } }),
    );

    expect(actions).toContainEqual({ kind: 'retire', member: joining, reason: 'agent-never-registered' });
    expect(actions).toContainEqual({ kind: 'initialize', member: recent });
  });

  it('adopts as launching whatever its member-state tag says: state never comes from a tag (H1)', () => {
    const instance = observedFor(member({ state: 'ready', running: false }), 'stopped');
    const [adopt] = reconcilePool(
      input({
        observed: [instance],
        intents: [intentFor(instance)],
        sizing: { targetSize: 1, runningSize: 0 },
      }),
    );
    expect(instance.tags['warmboot:member-state']).toBe('ready');
    expect(adopt).toMatchObject({ kind: 'adopt', member: { state: 'launching', origin: 'pool' } });
  });

  it("adopts a claim's cold launch with the claim its intent names, not the one a tag names", () => {
    const instance = observedFor(member({ state: 'launching' }), 'running', {
      'warmboot:claim': 'req-forged',
    });
    const [adopt] = reconcilePool(
      input({
        observed: [instance],
        intents: [intentFor(instance, { origin: 'claim', claimId: 'req-1' })],
        sizing: { targetSize: 0, runningSize: 0 },
      }),
    );
    expect(adopt).toMatchObject({ kind: 'adopt', member: { origin: 'claim', claimId: 'req-1' } });
  });

  it('after a member was retired as agent-never-registered, keeps one probe on its way until one registers', () => {
    const retired = observedFor(member({ state: 'retiring', launchedAt: NOW - 11 * 60_000 }), 'terminated', {
      'warmboot:retired-for': 'agent-never-registered',
    });
    const probe = member({
      state: 'joining',
      running: true,
      launchedAt: NOW - 60_000,
      stateSince: NOW - 60_000,
    });
    const registered = member({
      state: 'initializing',
      running: true,
      launchedAt: NOW - 60_000,
      initCommandId: 'c',
    });
    const launches = (
      members: PoolMember[],
      now = NOW,
      intents = [intentFor(retired, { instanceId: retired.instanceId })],
    ) =>
      reconcilePool(
        input({
          members,
          observed: [retired, ...members.map((m) => observedFor(m))],
          intents,
          now,
          sizing: { targetSize: 3, runningSize: 0 },
        }),
      ).filter((action) => action.kind === 'launch').length;

    expect(launches([])).toBe(1);
    // The tag on an instance the pool did not launch holds nothing.
    expect(launches([], NOW, [])).toBe(3);
    expect(launches([probe])).toBe(0);
    expect(launches([registered])).toBe(2);
    expect(launches([], NOW - 11 * 60_000 + AGENT_FAILURE_HOLD_MS)).toBe(3);
  });

  it('does not start again a stopped member whose start EC2 ended for its EBS key (R4)', () => {
    const refused = member();
    const actions = reconcilePool(
      input({
        members: [refused],
        observed: [{ ...observedFor(refused, 'stopped'), stateReason: 'Client.InvalidKMSKey.InvalidState' }],
        sizing: { targetSize: 1, runningSize: 1 },
      }),
    );
    expect(kinds(actions)).toEqual([]);
  });

  it('property: members counted against max plus launches never exceed maxSize', () => {
    const memberArb = fc.record({
      state: fc.constantFrom(...MEMBER_STATES),
      running: fc.boolean(),
      ageMinutes: fc.integer({ min: 0, max: 400 * 60 }),
      stale: fc.boolean(),
      visible: fc.boolean(),
      claim: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.array(memberArb, { maxLength: 12 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 20 }),
        fc.boolean(),
        (shapes, maxSize, targetSize, draining) => {
          const members: PoolMember[] = shapes.map((shape) =>
            member({
              state: shape.state,
              running: shape.running,
              origin: shape.claim ? 'claim' : 'pool',
              launchedAt: NOW - shape.ageMinutes * 60_000,
              stateSince: NOW - shape.ageMinutes * 30_000,
              imageId: shape.stale ? 'ami-00000000000000001' : AMI,
              initCommandId: 'cmd',
            }),
          );
          const poolSpec = spec({ minSize: 0, maxSize });
          const actions = reconcilePool(
            input({
              spec: poolSpec,
              draining,
              members,
              observed: members.filter((_, i) => shapes[i]?.visible).map((m) => observedFor(m)),
              sizing: { targetSize, runningSize: 0 },
            }),
          );
          const forgotten = new Set(
            actions.flatMap((a) => (a.kind === 'forget' ? [a.member.instanceId] : [])),
          );
          const counted = members.filter((m) => countsAgainstMax(m) && !forgotten.has(m.instanceId)).length;
          const launches = actions.filter((action) => action.kind === 'launch').length;
          expect(launches === 0 || counted + launches <= maxSize).toBe(true);
          if (draining) expect(launches).toBe(0);
        },
      ),
      { numRuns: 500 },
    );
  });
});
