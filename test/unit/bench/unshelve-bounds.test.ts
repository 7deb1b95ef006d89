import { describe, expect, it } from 'vitest';
import { inPlaceBound, reattachBound, snapshotBound } from '../../../bench/unshelve-bounds';
import { ec2Latencies } from '../../../local/latency';

const l = ec2Latencies('calibrated');
const seconds = (ms: number) => ms / 1000;
const launch = seconds(l.runInstancesApiMs + l.launchPendingMs);
const attach = seconds(l.mutatingApiMs + l.attachMs);
const fastPath =
  launch +
  seconds(l.mutatingApiMs + l.stoppingMs) +
  seconds(l.mutatingApiMs + l.detachMs) +
  attach +
  seconds(l.startInstancesApiMs + l.startPendingMs);

describe('the unshelve bounds', () => {
  it('lets the data volumes attach after the start: the last attach ends the causal bound', () => {
    // N = 500, 250 offloaded, one data volume, batched launches: 500 AttachVolume calls drain the
    // bucket (burst 50, 5/s) in 90 s, which can start only once a replacement was launched.
    const bound = reattachBound(250, 250, 1, 2);

    expect(bound.boundSeconds).toBeCloseTo(90);
    expect(bound.bottleneck).toBe('AttachVolume.requests');
    expect(bound.causalBoundSeconds).toBeCloseTo(launch + 90 + attach);
  });

  it('holds a replacement that keeps its private IP to one RunInstances call of its own', () => {
    // 250 single-instance launches through the RunInstances bucket (burst 5, 2/s): 122.5 s, then
    // the last replacement's whole path.
    const bound = reattachBound(250, 250, 1, 250);

    expect(bound.bottleneck).toBe('RunInstances.requests');
    expect(bound.causalBoundSeconds).toBeCloseTo(122.5 + fastPath);
  });

  it('is one instance’s critical path when the buckets admit every call at once', () => {
    const bound = reattachBound(5, 5, 1, 5);

    expect(bound.boundSeconds).toBeCloseTo(fastPath);
    expect(bound.causalBoundSeconds).toBeCloseTo(fastPath);
  });

  it('restores only the offloaded instances from snapshots and starts the others', () => {
    const all = snapshotBound(500, 0, 20);
    const offloadedOnly = snapshotBound(250, 250, 20);

    expect(all.calls['RunInstances.requests']).toBe(500);
    expect(offloadedOnly.calls).toMatchObject({
      'RunInstances.requests': 250,
      'StartInstances.instances': 250,
    });
    expect(offloadedOnly.causalBoundSeconds).toBeLessThan(all.causalBoundSeconds);
    // 250 launches at 2/s after a burst of 5, then a launch and 20 GiB initialized at 300 MiB/s.
    expect(offloadedOnly.causalBoundSeconds).toBeCloseTo(122.5 + launch + (20 * 1024) / 300);
  });

  it('puts one instance back in place after its launch, its data attach and the replace-root task', () => {
    const taskMs = l.replaceRootPendingMs + l.replaceRootSwapMs + l.replaceRootBootMs;

    const bound = inPlaceBound({ fast: 1, start: 0, dataVolumes: 1, configurations: 1, taskMs });
    const slower = inPlaceBound({
      fast: 1,
      start: 0,
      dataVolumes: 1,
      configurations: 1,
      taskMs: taskMs + 10_000,
    });

    expect(bound.criticalPathSeconds).toBeCloseTo(launch + attach + seconds(l.mutatingApiMs + taskMs));
    expect(bound.criticalPathSeconds).toBeLessThan(fastPath);
    expect(slower.causalBoundSeconds - bound.causalBoundSeconds).toBeCloseTo(10);
    expect(bound.calls).toMatchObject({
      'CreateReplaceRootVolumeTask.requests': 1,
      'AttachVolume.requests': 1,
    });
  });

  it('paces 250 in-place replacements by the CreateReplaceRootVolumeTask bucket after their attaches', () => {
    // 250 replace-root calls through the general mutating bucket (burst 50, 5/s): 40 s of drain.
    const taskMs = l.replaceRootPendingMs + l.replaceRootSwapMs + l.replaceRootBootMs;

    const bound = inPlaceBound({ fast: 250, start: 250, dataVolumes: 1, configurations: 2, taskMs });

    expect(bound.causalBoundSeconds).toBeCloseTo(launch + attach + 40 + seconds(l.mutatingApiMs + taskMs));
  });
});
