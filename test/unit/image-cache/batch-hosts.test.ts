import { describe, expect, it } from 'vitest';
import { BatchHostDirectory } from '../../../functions/image-cache/adapters/batch-hosts';
import type { HostDirectory, HostInfo } from '../../../functions/image-cache/adapters/ec2';

const host = (instanceId: string): HostInfo => ({
  instanceId,
  hostGroup: 'web',
  availabilityZone: 'us-east-1a',
  state: 'running',
  devices: ['/dev/xvda'],
  managed: true,
});

/** An EC2 that knows two group hosts and records which call answered what. */
const recordingDirectory = () => {
  const calls: string[] = [];
  const hosts = [host('i-0000000000000000a'), host('i-0000000000000000b')];
  const directory: HostDirectory = {
    groupHosts: async (group) => {
      calls.push(`groupHosts ${group ?? '*'}`);
      return hosts;
    },
    host: async (instanceId) => {
      calls.push(`host ${instanceId}`);
      return hosts.find((candidate) => candidate.instanceId === instanceId);
    },
    tagHost: async () => undefined,
  };
  return { directory, calls };
};

describe('host lookups of a queue batch', () => {
  it('lists the group hosts once for the whole batch and answers each event from that list', async () => {
    const { directory, calls } = recordingDirectory();
    const batch = new BatchHostDirectory(directory);

    await batch.prefetch(['i-0000000000000000a', 'i-00000000000000001', 'i-00000000000000002']);

    expect(await batch.host('i-0000000000000000a')).toMatchObject({ instanceId: 'i-0000000000000000a' });
    // An instance that is no group host needs no call of its own.
    expect(await batch.host('i-00000000000000001')).toBeUndefined();
    expect(await batch.host('i-00000000000000002')).toBeUndefined();
    expect(calls).toEqual(['groupHosts *']);
  });

  it('asks EC2 about an instance outside the batch, and about a second event of one instance', async () => {
    const { directory, calls } = recordingDirectory();
    const batch = new BatchHostDirectory(directory);
    await batch.prefetch(['i-0000000000000000a']);

    await batch.host('i-0000000000000000a');
    await batch.host('i-0000000000000000a');
    await batch.host('i-0000000000000000b');

    expect(calls).toEqual(['groupHosts *', 'host i-0000000000000000a', 'host i-0000000000000000b']);
  });

  it("forgets the last batch's list when the next batch comes, and lists nothing for an empty one", async () => {
    const { directory, calls } = recordingDirectory();
    const batch = new BatchHostDirectory(directory);
    await batch.prefetch(['i-00000000000000001']);
    await batch.prefetch([]);

    expect(await batch.host('i-00000000000000001')).toBeUndefined();
    expect(calls).toEqual(['groupHosts *', 'host i-00000000000000001']);
  });
});
