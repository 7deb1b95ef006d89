import { describe, expect, it } from 'vitest';
import { dynamoPoolStore } from '../../functions/pools/adapters/store';
import { sampleEvent } from '../support/events';
import { invokeSample, localCloudPerTest } from '../support/local-cloud';

const MINUTE = 60_000;
const SUBNET = 'subnet-0aaaaaaaaaaaaaaa1';
const POOL = 'legacy-web';

const definePoolEvent = sampleEvent('pools/define-pool.json');
const requestServerEvent = sampleEvent('claim/request-server.json');

const startCloud = localCloudPerTest();

/**
 * A resize EC2 refuses for a member (resize-limitations) is the member's problem: the member goes
 * back to the pool unchanged and the request is answered, never left half-claimed. Here the pool's
 * AMI has no ENA driver, so EC2 refuses its members on every Nitro type with
 * InvalidParameterCombination, a code the claim used to treat as a failure of the whole request.
 */
describe('a claim whose resize EC2 refuses', () => {
  it('gives the member back ready and answers the request with the refusal', async () => {
    const local = await startCloud({
      functions: ['pools', 'claim'],
      // The account has Default Host Management Configuration on: the members' agents register (S4).
      defaultHostManagement: true,
    });
    local.ec2.addSubnet({ subnetId: SUBNET, availabilityZone: 'us-east-1a' });
    const image = local.ec2.registerImage({ name: 'centos-6-web', rootSizeGiB: 8, enaSupport: false });
    // Define Pool is an administrator's request: a direct (IAM-authenticated) invoke.
    await invokeSample(local, 'pools', definePoolEvent, {
      id: 'define-legacy-web',
      detail: {
        pool: {
          name: POOL,
          image,
          instanceType: 't2.large',
          // Requests may ask for m7i.large (H4: only listed types).
          instanceTypes: ['m7i.large'],
          subnets: [SUBNET],
          initialization: { platform: 'linux', packages: ['nginx'], timeoutMinutes: 30 },
          minSize: 1,
          // Room for the cold launch after the refused resize (H4: cold launches count against it).
          maxSize: 2,
        },
      },
    });
    await local.settleFor(5 * MINUTE);
    const store = dynamoPoolStore(local.documents, local.tables.pools);
    const [member] = await local.run(() => store.listMembers(POOL));
    expect(member?.state).toBe('ready');

    const answer = (await invokeSample(local, 'claim', requestServerEvent, {
      id: 'request-event-resize',
      detail: {
        ...requestServerEvent.detail,
        requestId: 'req-resize',
        pool: POOL,
        instanceType: 'm7i.large',
        availabilityZone: 'us-east-1a',
      },
    })) as { result: { status: string; error?: { code: string; message?: string } } };
    await local.settleFor(2 * MINUTE);

    // The member was given back; the cold launch EC2 refuses for the same reason ends the request.
    expect(answer.result).toMatchObject({ status: 'failed', error: { code: 'LaunchRefused' } });
    expect(answer.result.error?.message).toContain('detail.instanceType');
    expect(answer.result.error?.message).toContain('ENA');
    const members = await local.run(() => store.listMembers(POOL));
    expect(members.map((each) => [each.instanceId, each.state])).toEqual([[member?.instanceId, 'ready']]);
    expect(local.ec2.instance(member?.instanceId ?? '')).toMatchObject({
      state: 'stopped',
      instanceType: 't2.large',
    });
  });
});
