import { describe, expect, it } from 'vitest';
import { defaultShelvingSettings } from '../../../functions/shelving/config';
import { nextStep } from '../../../functions/shelving/domain/saga';
import type {
  Observation,
  ObservedInstance,
  ObservedRootReplacement,
  ObservedVolume,
  ShelfRecord,
  UnshelveState,
} from '../../../functions/shelving/domain/types';
import { FRESH, instance, NOW, RECORD_ID, REPLACEMENT, REPLACEMENT_TAGS, record, volume } from './fakes';

/**
 * Unshelve in place (issue 19): the running replacement's root is swapped for the retained one by
 * one CreateReplaceRootVolumeTask; the stop / detach / attach / start swap is the fallback, and
 * each unshelve says which one it took and why.
 */

const ROOT = 'vol-0000000000000000a';
const DATA = 'vol-0000000000000000b';

const replacement = (
  overrides: Partial<ObservedInstance> = {},
  devices: readonly { deviceName: string; volumeId: string; deleteOnTermination?: boolean }[] = [
    { deviceName: '/dev/xvda', volumeId: FRESH },
  ],
): ObservedInstance =>
  instance({
    instanceId: REPLACEMENT,
    tags: REPLACEMENT_TAGS,
    blockDevices: devices.map((device) => ({ deleteOnTermination: true, ...device })),
    ...overrides,
  });
const freshRoot = (more: Partial<ObservedVolume> = {}) =>
  volume(FRESH, {
    attachment: { instanceId: REPLACEMENT, device: '/dev/xvda', state: 'attached' },
    tags: REPLACEMENT_TAGS,
    ...more,
  });
const available = (volumeId: string, more: Partial<ObservedVolume> = {}) =>
  volume(volumeId, { state: 'available', ...more });
const onReplacement = (volumeId: string, device: string) =>
  volume(volumeId, { attachment: { instanceId: REPLACEMENT, device, state: 'attached' } });
const task = (state: ObservedRootReplacement['state']): ObservedRootReplacement => ({
  taskId: 'replacevol-0123456789abcdef0',
  instanceId: REPLACEMENT,
  state,
});

const observe = (
  volumes: ObservedVolume[],
  more: Omit<Partial<Observation>, 'volumes'> = {},
): Observation => ({ volumes: new Map(volumes.map((v) => [v.volumeId, v])), snapshots: [], ...more });
const unshelving = (
  step: ShelfRecord['step'],
  state: Partial<UnshelveState> = {},
  overrides: Partial<ShelfRecord> = {},
): ShelfRecord =>
  record({
    ...overrides,
    step,
    unshelve: {
      requestId: 'r',
      requestedAt: NOW - 20_000,
      attempt: 0,
      path: 'in-place',
      replacementInstanceId: REPLACEMENT,
      ...state,
    },
  });
const decide = (r: ShelfRecord, o: Observation, settings = defaultShelvingSettings) =>
  nextStep(r, o, NOW, settings);

describe('the launch step hands a replacement to the in-place swap', () => {
  it('replaces the root in place when nothing rules it out', () => {
    const launched = unshelving('unshelve.launch', { path: 'fast', replacementInstanceId: undefined });

    const decision = decide(launched, observe([], { replacement: replacement() }));

    expect(decision.to).toBe('unshelve.replace-root');
    expect(decision.set?.unshelve).toMatchObject({ path: 'in-place', replacementInstanceId: REPLACEMENT });
  });

  it.each([
    ['user data', { config: { ...record().config, userData: 'IyEvYmluL3NoCg==' } }, /user data/],
    ['Windows', { config: { ...record().config, platform: 'windows' as const } }, /Windows/],
    ['bare metal', { config: { ...record().config, instanceType: 'c7i.metal-24xl' } }, /bare metal/],
  ])('takes the stopped swap for %s, saying why', (_case, overrides, why) => {
    const launched = unshelving(
      'unshelve.launch',
      { path: 'fast', replacementInstanceId: undefined },
      overrides,
    );

    const decision = decide(launched, observe([], { replacement: replacement() }));

    expect(decision.to).toBe('unshelve.stop-replacement');
    expect(decision.set?.unshelve?.path).toBe('fast');
    expect(decision.set?.unshelve?.inPlaceSkipped).toMatch(why);
  });

  it('takes the stopped swap when the setting turns in-place off', () => {
    const launched = unshelving('unshelve.launch', { path: 'fast', replacementInstanceId: undefined });

    const decision = decide(launched, observe([], { replacement: replacement() }), {
      ...defaultShelvingSettings,
      replaceRootInPlace: false,
    });

    expect(decision.to).toBe('unshelve.stop-replacement');
    expect(decision.set?.unshelve?.inPlaceSkipped).toMatch(/replaceRootInPlace/);
  });
});

describe('the in-place swap', () => {
  it('tags the running replacement and its fresh root, and attaches the data volume while it runs', () => {
    const untagged = replacement({ tags: {} });

    const decision = decide(
      unshelving('unshelve.replace-root'),
      observe([freshRoot({ tags: {} }), available(ROOT), available(DATA)], { replacement: untagged }),
    );

    expect(decision.actions).toEqual([
      { kind: 'tag', resourceIds: [REPLACEMENT, FRESH], tags: REPLACEMENT_TAGS },
      { kind: 'attach', volumeId: DATA, instanceId: REPLACEMENT, device: '/dev/sdf' },
    ]);
  });

  it('asks EC2 to replace the root with the retained one once the data volume is attached', () => {
    const decision = decide(
      unshelving('unshelve.replace-root'),
      observe([freshRoot(), available(ROOT), onReplacement(DATA, '/dev/sdf')], {
        replacement: replacement({}, [
          { deviceName: '/dev/xvda', volumeId: FRESH },
          { deviceName: '/dev/sdf', volumeId: DATA },
        ]),
      }),
    );

    expect(decision.actions).toEqual([
      {
        kind: 'replace-root',
        recordId: RECORD_ID,
        instanceId: REPLACEMENT,
        volumeId: ROOT,
        clientToken: `${RECORD_ID}-root-0`,
      },
    ]);
    expect(decision.to).toBeUndefined();
  });

  it('waits for the data volume to attach before replacing the root', () => {
    const attaching = volume(DATA, {
      attachment: { instanceId: REPLACEMENT, device: '/dev/sdf', state: 'attaching' },
    });

    const decision = decide(
      unshelving('unshelve.replace-root'),
      observe([freshRoot(), available(ROOT), attaching], { replacement: replacement() }),
    );

    expect(decision.actions).toEqual([]);
    expect(decision.reason).toMatch(/data volumes to attach/);
  });

  it('issues nothing while the task runs (a repeated round does not start a second one)', () => {
    const decision = decide(
      unshelving('unshelve.replace-root'),
      observe([freshRoot(), available(ROOT), onReplacement(DATA, '/dev/sdf')], {
        replacement: replacement(),
        rootReplacement: task('in-progress'),
      }),
    );

    expect(decision.actions).toEqual([]);
    expect(decision.to).toBeUndefined();
  });

  /** The replace-root round after EC2 swapped in the retained root (its DeleteOnTermination as said). */
  const afterSwap = (
    { rootDeleteOnTermination }: { rootDeleteOnTermination: boolean },
    settings: Partial<typeof defaultShelvingSettings> = {},
  ) =>
    decide(
      unshelving('unshelve.replace-root'),
      observe([onReplacement(ROOT, '/dev/xvda'), onReplacement(DATA, '/dev/sdf')], {
        replacement: replacement({}, [
          { deviceName: '/dev/xvda', volumeId: ROOT, deleteOnTermination: rootDeleteOnTermination },
          { deviceName: '/dev/sdf', volumeId: DATA, deleteOnTermination: false },
        ]),
        rootReplacement: task('succeeded'),
      }),
      { ...defaultShelvingSettings, ...settings },
    );
  const recordedRootDeleteOnTermination =
    record().volumes.find((volume) => volume.root)?.deleteOnTermination ?? false;

  it('gives the new root its recorded DeleteOnTermination before the hand-back when EC2 shows another', () => {
    const decision = afterSwap({ rootDeleteOnTermination: !recordedRootDeleteOnTermination });

    expect(decision.to).toBeUndefined();
    expect(decision.actions).toEqual([
      {
        kind: 'set-delete-on-termination',
        instanceId: REPLACEMENT,
        devices: [{ deviceName: '/dev/xvda', deleteOnTermination: recordedRootDeleteOnTermination }],
      },
    ]);
  });

  it('keeps the retained root on termination before the hand-back when restoreDeleteOnTermination is off', () => {
    const decision = afterSwap({ rootDeleteOnTermination: true }, { restoreDeleteOnTermination: false });

    expect(decision.actions).toEqual([
      {
        kind: 'set-delete-on-termination',
        instanceId: REPLACEMENT,
        devices: [{ deviceName: '/dev/xvda', deleteOnTermination: false }],
      },
    ]);
  });

  it('is ready once the task succeeded with the retained root at the root device, and says in-place', () => {
    // EC2 shows the new root with the flag the owner's instance had: nothing to call.
    const decision = afterSwap({ rootDeleteOnTermination: recordedRootDeleteOnTermination });

    expect(decision.actions).toEqual([]);
    expect(decision.to).toBe('unshelve.finalize');
    expect(decision.facts?.[0]?.detail).toMatchObject({ path: 'in-place', instanceId: REPLACEMENT });
  });

  it.each(['failed', 'failed-detached'] as const)(
    'falls back to the stopped swap when the task %s',
    (state) => {
      const decision = decide(
        unshelving('unshelve.replace-root'),
        observe([freshRoot(), available(ROOT), onReplacement(DATA, '/dev/sdf')], {
          replacement: replacement(),
          rootReplacement: task(state),
        }),
      );

      expect(decision.to).toBe('unshelve.stop-replacement');
      expect(decision.set?.unshelve).toMatchObject({
        path: 'fast',
        inPlaceSkipped: expect.stringContaining(state),
      });
    },
  );

  it('falls back when the replacement root is encrypted and the retained root is not', () => {
    const decision = decide(
      unshelving('unshelve.replace-root'),
      observe([freshRoot({ encrypted: true }), available(ROOT), onReplacement(DATA, '/dev/sdf')], {
        replacement: replacement(),
      }),
    );

    expect(decision.to).toBe('unshelve.stop-replacement');
    expect(decision.set?.unshelve?.inPlaceSkipped).toMatch(/encrypted/);
  });

  it('never detaches a retained volume another instance holds', () => {
    const elsewhere = volume(ROOT, {
      attachment: { instanceId: 'i-0aaaaaaaaaaaaaaa1', device: '/dev/xvda', state: 'attached' },
    });

    const decision = decide(
      unshelving('unshelve.replace-root'),
      observe([freshRoot(), elsewhere, onReplacement(DATA, '/dev/sdf')], { replacement: replacement() }),
    );

    expect(decision.to).toBe('failed');
    expect(decision.actions).toEqual([]);
  });

  it('hands a replacement that stopped under it to the stopped swap', () => {
    const decision = decide(
      unshelving('unshelve.replace-root'),
      observe([freshRoot(), available(ROOT)], { replacement: replacement({ state: 'stopped' }) }),
    );

    expect(decision.to).toBe('unshelve.stop-replacement');
  });
});

describe('the stopped swap after a fallback', () => {
  it('reports the fast path with the reason in-place was not taken', () => {
    const reason = 'replace-root-volume task replacevol-0123456789abcdef0 failed';
    const swapped = replacement({}, [
      { deviceName: '/dev/xvda', volumeId: ROOT, deleteOnTermination: false },
      { deviceName: '/dev/sdf', volumeId: DATA, deleteOnTermination: false },
    ]);

    const decision = decide(
      unshelving('unshelve.start-replacement', { path: 'fast', inPlaceSkipped: reason }),
      observe([onReplacement(ROOT, '/dev/xvda'), onReplacement(DATA, '/dev/sdf')], { replacement: swapped }),
    );

    expect(decision.facts?.[0]?.detail).toMatchObject({ path: 'fast', reason });
  });
});
