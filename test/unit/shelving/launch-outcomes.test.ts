import { describe, expect, it } from 'vitest';
import { defaultShelvingSettings } from '../../../functions/shelving/config';
import {
  batchClaimed,
  fastLaunchFailed,
  LAUNCH_RETRY_MS,
  type LaunchFailure,
  launchRetry,
  launchState,
  replacementLaunched,
  slowLaunchFailed,
  slowLaunchIssued,
  slowLaunchPending,
  waitingForHost,
} from '../../../functions/shelving/domain/launch-outcomes';
import { HOST_WAIT_RETRY_MS, LAUNCH_REISSUE_MS } from '../../../functions/shelving/domain/saga';
import { NOW, record } from './fakes';

const LAUNCHING = record({
  step: 'unshelve.launch',
  unshelve: { requestId: 'unshelve-event', requestedAt: NOW - 60_000, attempt: 1 },
});
const ON_HOST = record({
  step: 'unshelve.launch',
  config: { ...LAUNCHING.config, tenancy: 'host', affinity: 'host', hostId: 'h-0123456789abcdef0' },
  unshelve: LAUNCHING.unshelve,
});

const failure = (overrides: Partial<LaunchFailure> = {}): LaunchFailure => ({
  error: { code: 'DependencyError', message: 'RunInstances failed' },
  refusedForGood: false,
  mayHaveLaunched: false,
  addressInUse: false,
  capacity: false,
  ...overrides,
});

describe('launch outcomes', () => {
  it('counts a record launching without an unshelve state as unshelved by the reconcile, asked now', () => {
    expect(launchState(record({ unshelve: undefined }), NOW)).toEqual({
      requestId: 'reconcile',
      requestedAt: NOW,
      attempt: 0,
    });
    expect(launchState(LAUNCHING, NOW, { reason: 'x' })).toEqual({ ...LAUNCHING.unshelve, reason: 'x' });
  });

  it('writes the batch claim before the call and looks again after the reissue grace period', () => {
    const batch = {
      batchId: 'batch-1',
      recordIds: ['a', LAUNCHING.recordId],
      request: { placement: { hostId: 'h-1', affinity: 'host' } },
    } as unknown as Parameters<typeof batchClaimed>[1];
    const decision = batchClaimed(LAUNCHING, batch, 1, NOW);
    expect(decision.set?.unshelve?.batch).toEqual({
      batchId: 'batch-1',
      size: 2,
      index: 1,
      issuedAt: NOW,
      hostId: 'h-1',
      affinity: 'host',
    });
    expect(decision).toMatchObject({ actions: [], recheckAt: NOW + LAUNCH_REISSUE_MS });
    expect(decision.to).toBeUndefined();
  });

  it("starts the grace period before a re-issue once the round's calls may have left the budget", () => {
    const batch = {
      batchId: 'batch-1',
      recordIds: [LAUNCHING.recordId],
      request: { placement: {} },
    } as unknown as Parameters<typeof batchClaimed>[1];
    const decision = batchClaimed(LAUNCHING, batch, 0, NOW, 150_000);

    expect(decision.set?.unshelve?.batch).toMatchObject({ issuedAt: NOW, queuedMs: 150_000 });
    expect(decision.recheckAt).toBe(NOW + 150_000 + LAUNCH_REISSUE_MS);
  });

  it('moves a launched replacement on to the in-place root swap', () => {
    expect(replacementLaunched(LAUNCHING, 'i-0aaaaaaaaaaaaaaaa', NOW, defaultShelvingSettings)).toMatchObject(
      {
        to: 'unshelve.replace-root',
        set: { unshelve: { replacementInstanceId: 'i-0aaaaaaaaaaaaaaaa', attempt: 1, path: 'in-place' } },
        recheckAt: NOW,
      },
    );
  });

  it('moves a launched replacement on to its stop when in-place is turned off, saying so', () => {
    const settings = { ...defaultShelvingSettings, replaceRootInPlace: false };

    expect(replacementLaunched(LAUNCHING, 'i-0aaaaaaaaaaaaaaaa', NOW, settings)).toMatchObject({
      to: 'unshelve.stop-replacement',
      set: {
        unshelve: {
          replacementInstanceId: 'i-0aaaaaaaaaaaaaaaa',
          attempt: 1,
          path: 'fast',
          inPlaceSkipped: expect.stringContaining('replaceRootInPlace'),
        },
      },
      recheckAt: NOW,
    });
  });

  it('keeps the first time a full host was waited for', () => {
    const since = NOW - 5_000;
    const waiting = {
      ...ON_HOST,
      unshelve: { ...LAUNCHING.unshelve, waitingForHostSince: since },
    } as typeof ON_HOST;
    expect(waitingForHost(waiting, 'host full', NOW)).toMatchObject({
      set: { unshelve: { waitingForHostSince: since, reason: 'host full' } },
      recheckAt: NOW + HOST_WAIT_RETRY_MS,
    });
  });

  it('on a capacity refusal waits for a host-bound record’s host, and counts the refusal for any other', () => {
    const hostBound = launchRetry(ON_HOST, 'capacity', 'no room', NOW).set?.unshelve;
    expect(hostBound).toMatchObject({ attempt: 2, waitingForHostSince: NOW, batch: undefined });
    expect(hostBound?.capacityRefusedSince).toBeUndefined();
    const elsewhere = launchRetry(LAUNCHING, 'capacity', 'no room', NOW);
    expect(elsewhere.set?.unshelve).toMatchObject({ hostFull: true, capacityRefusedSince: NOW });
    expect(elsewhere.recheckAt).toBe(NOW + HOST_WAIT_RETRY_MS);
    expect(launchRetry(LAUNCHING, 'failure', 'refused', NOW).recheckAt).toBe(NOW + LAUNCH_RETRY_MS);
  });

  it('leaves a fast-path batch that may have launched as it is, and fails one refused for good', () => {
    expect(
      fastLaunchFailed(LAUNCHING, failure({ mayHaveLaunched: true, refusedForGood: true }), NOW),
    ).toBeUndefined();
    expect(fastLaunchFailed(LAUNCHING, failure({ refusedForGood: true }), NOW)).toMatchObject({
      to: 'failed',
      set: { error: { code: 'LaunchRefused' } },
    });
    expect(fastLaunchFailed(LAUNCHING, failure({ addressInUse: true }), NOW)?.set?.unshelve).toMatchObject({
      privateIpInUse: true,
    });
    expect(fastLaunchFailed(LAUNCHING, failure({ capacity: true }), NOW)?.set?.unshelve).toMatchObject({
      hostFull: true,
    });
  });

  it('goes back to path choice when the slow path is refused for good, before anything else', () => {
    const slow = { ...LAUNCHING, step: 'unshelve.launch-from-snapshots' as const };
    expect(
      slowLaunchFailed(slow, failure({ refusedForGood: true, mayHaveLaunched: true }), false, NOW),
    ).toMatchObject({ to: 'unshelve.choose' });
    expect(slowLaunchFailed(slow, failure({ mayHaveLaunched: true }), false, NOW)).toBeUndefined();
  });

  it('retries a slow-path launch that launched nothing: a capacity refusal with the same token', () => {
    const slow = slowLaunchIssued({ ...LAUNCHING, step: 'unshelve.launch-from-snapshots' }, NOW - 1_000);
    const issued = {
      ...LAUNCHING,
      step: 'unshelve.launch-from-snapshots' as const,
      unshelve: slow.set?.unshelve,
    };
    expect(slowLaunchPending(issued, NOW)).toBe(true);
    expect(slowLaunchPending(issued, NOW - 1_000 + LAUNCH_REISSUE_MS)).toBe(false);
    const capacity = slowLaunchFailed(issued, failure({ capacity: true }), false, NOW);
    expect(capacity?.set?.unshelve).toMatchObject({
      attempt: 1,
      capacityRefusedSince: NOW,
      slowLaunchIssuedAt: undefined,
    });
    expect(capacity?.recheckAt).toBe(NOW + HOST_WAIT_RETRY_MS);
    // Answered: only recording the replacement failed; its tag finds it next round.
    expect(slowLaunchFailed(issued, failure(), true, NOW)).toBeUndefined();
    const other = slowLaunchFailed(issued, failure(), false, NOW);
    expect(other?.set?.unshelve).toMatchObject({ attempt: 2 });
    expect(other?.recheckAt).toBe(NOW + LAUNCH_RETRY_MS);
  });

  it("starts a slow-path launch's grace period once the round's other launches may have left the budget", () => {
    const slow = slowLaunchIssued({ ...LAUNCHING, step: 'unshelve.launch-from-snapshots' }, NOW, 90_000);
    const issued = {
      ...LAUNCHING,
      step: 'unshelve.launch-from-snapshots' as const,
      unshelve: slow.set?.unshelve,
    };

    expect(slow.recheckAt).toBe(NOW + 90_000 + LAUNCH_REISSUE_MS);
    expect(slowLaunchPending(issued, NOW + LAUNCH_REISSUE_MS + 1)).toBe(true);
    expect(slowLaunchPending(issued, NOW + 90_000 + LAUNCH_REISSUE_MS)).toBe(false);
  });
});
