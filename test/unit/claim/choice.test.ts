import { describe, expect, it } from 'vitest';
import { architectureOf, rankCandidates, resizeCompatible } from '../../../functions/claim/domain/choice';
import { member, NOW } from '../pools/fixtures';

describe('claim choice', () => {
  it('prefers the requested AZ and type: running (hot), then stopped (warm), then a resize, then other AZs', () => {
    const otherAz = member({ availabilityZone: 'us-east-1b', launchedAt: NOW - 9e6 });
    const resize = member({ instanceType: 'm7i.xlarge', launchedAt: NOW - 8e6 });
    const warm = member({ launchedAt: NOW - 1e6 });
    const hot = member({ running: true, launchedAt: NOW - 1e5 });
    const order = rankCandidates([otherAz, resize, warm, hot], {
      instanceType: 'm7i.large',
      availabilityZone: 'us-east-1a',
    });
    expect(order.map((c) => c.member.instanceId)).toEqual([
      hot.instanceId,
      warm.instanceId,
      resize.instanceId,
      otherAz.instanceId,
    ]);
    expect(order.map((c) => [c.path, c.resize])).toEqual([
      ['hot', false],
      ['warm', false],
      ['warm', true],
      ['warm', false],
    ]);
  });

  it('never offers a running member of another type, an incompatible architecture, or a non-ready member', () => {
    const runningOtherType = member({ running: true, instanceType: 'm7i.xlarge' });
    const graviton = member({ instanceType: 'm7g.large' });
    const initializing = member({ state: 'initializing' });
    expect(rankCandidates([runningOtherType, graviton, initializing], { instanceType: 'm7i.large' })).toEqual(
      [],
    );
  });

  it('skips members a claim already tried', () => {
    const first = member({ launchedAt: NOW - 2e6 });
    const second = member({ launchedAt: NOW - 1e6 });
    const order = rankCandidates([first, second], { instanceType: 'm7i.large' }, new Set([first.instanceId]));
    expect(order.map((c) => c.member.instanceId)).toEqual([second.instanceId]);
  });

  it('knows Graviton families by the g after the generation', () => {
    expect(['m7g.large', 'c7gn.xlarge', 'r8gd.large', 'g5g.xlarge', 'a1.medium'].map(architectureOf)).toEqual(
      Array(5).fill('arm64'),
    );
    expect(['m7i.large', 'g4dn.xlarge', 'c6in.large', 'm7i-flex.large'].map(architectureOf)).toEqual(
      Array(4).fill('x86_64'),
    );
    expect(resizeCompatible('m7i.large', 'c7i.2xlarge')).toBe(true);
    expect(resizeCompatible('m7i.large', 'm7g.large')).toBe(false);
  });

  it('keeps Mac instances apart: mac1 is Intel, the later Mac families Apple silicon (W3)', () => {
    expect(['mac1.metal', 'mac2.metal', 'mac2-m2pro.metal'].map(architectureOf)).toEqual([
      'x86_64_mac',
      'arm64_mac',
      'arm64_mac',
    ]);
    expect(resizeCompatible('mac2.metal', 'mac2-m2.metal')).toBe(true);
    expect(resizeCompatible('mac2.metal', 'm7g.large')).toBe(false);
    expect(resizeCompatible('mac1.metal', 'm7i.large')).toBe(false);
  });
});
