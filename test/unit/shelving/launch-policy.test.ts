import { describe, expect, it } from 'vitest';
import { attributeChange, CHANGED_INSTANCE_ATTRIBUTES } from '../../../functions/shared/instance-attributes';
import type { ShelvingEc2 } from '../../../functions/shelving/adapters/ec2';
import { shelveInstances } from '../../../functions/shelving/application/requests';
import { defaultShelvingSettings, type ShelvingSettings } from '../../../functions/shelving/config';
import { type ImageOwnership, launchRefusal } from '../../../functions/shelving/domain/launch-policy';
import type { ObservedInstance } from '../../../functions/shelving/domain/types';
import { countingEc2, instance, NOW, record, shelvingOnClock, volume } from './fakes';

/**
 * What a replacement may be launched with (issue 15, security review C2): only the instance
 * profiles and the AMI owners the shelving settings name. Checked when a Shelve is asked, before
 * anything is stopped, and again before every relaunch.
 */

const IMAGE = 'ami-0123456789abcdef0';
const PROFILE_ARN = 'arn:aws:iam::123456789012:instance-profile/web/web-server';
const POLICY = { instanceProfiles: [{ name: 'web-server' }], allowedImageOwners: ['self', 'amazon'] };
const ours: ImageOwnership[] = [{ imageId: IMAGE, allowedOwner: true }];
const foreign: ImageOwnership[] = [{ imageId: IMAGE, allowedOwner: false }];

describe('launchRefusal', () => {
  it('allows a configured profile (whatever its path), no profile, and an AMI of an allowed owner', () => {
    expect(
      launchRefusal({ imageId: IMAGE, iamInstanceProfileArn: PROFILE_ARN }, ours, POLICY),
    ).toBeUndefined();
    expect(launchRefusal({ imageId: IMAGE }, ours, POLICY)).toBeUndefined();
  });

  it('refuses a profile the settings do not name, naming the field and what it names', () => {
    const refusal = launchRefusal(
      { imageId: IMAGE, iamInstanceProfileArn: 'arn:aws:iam::123456789012:instance-profile/admin' },
      ours,
      POLICY,
    );

    expect(refusal).toEqual({
      code: 'InstanceProfileNotAllowed',
      message: expect.stringMatching(
        /instance profile admin is not in shelving\.instanceProfiles \(web-server\)/,
      ),
    });
    expect(
      launchRefusal({ imageId: IMAGE, iamInstanceProfileArn: PROFILE_ARN }, ours, {
        ...POLICY,
        instanceProfiles: [],
      })?.message,
    ).toContain('(none)');
  });

  it('refuses an AMI of another owner, naming the field; leaves an AMI that no longer exists to EC2', () => {
    expect(launchRefusal({ imageId: IMAGE }, foreign, POLICY)).toEqual({
      code: 'ImageOwnerNotAllowed',
      message: expect.stringContaining(
        `image ${IMAGE} is not owned by one of shelving.allowedImageOwners (self, amazon)`,
      ),
    });
    expect(launchRefusal({ imageId: IMAGE }, [], POLICY)).toBeUndefined();
  });
});

/** EC2 with one managed instance, whose AMI DescribeImages shows as `ownership`. */
const oneInstance = (described: ObservedInstance, ownership: readonly ImageOwnership[]) => {
  const base = countingEc2();
  const overrides: Partial<ShelvingEc2> = {
    describeInstances: async () => [described],
    describeVolumes: async (ids) => ids.map((id) => volume(id)),
    describeImageOwners: async () => [...ownership],
  };
  const ec2 = new Proxy(overrides as ShelvingEc2, {
    get: (target, property) =>
      property in target ? target[property as keyof ShelvingEc2] : Reflect.get(base, property),
  });
  return { ec2, calls: base.calls };
};

const shelveOne = async (
  described: ObservedInstance,
  ownership: readonly ImageOwnership[],
  settings: Partial<ShelvingSettings> = {},
) => {
  const { ec2, calls } = oneInstance(described, ownership);
  const shelving = shelvingOnClock(ec2, undefined, { ...defaultShelvingSettings, ...settings });
  const answers = await shelveInstances(
    shelving.deps,
    shelving.rounds,
    { instanceIds: [described.instanceId] },
    { requestId: 'event-1' },
  );
  return { answers, calls, store: shelving.store };
};

describe('a Shelve of an instance no replacement could be launched for', () => {
  it('is refused before anything is stopped or tagged when its profile is not configured', async () => {
    const withProfile = instance({ iamInstanceProfileArn: PROFILE_ARN });

    const refused = await shelveOne(withProfile, ours);
    const allowed = await shelveOne(withProfile, ours, { instanceProfiles: [{ name: 'web-server' }] });

    expect(refused.answers).toEqual([
      {
        id: withProfile.instanceId,
        ok: false,
        error: {
          code: 'InstanceProfileNotAllowed',
          message: expect.stringContaining('shelving.instanceProfiles'),
        },
      },
    ]);
    expect(refused.store.records.size).toBe(0);
    expect(refused.calls.filter((call) => !call.startsWith('describe'))).toEqual([]);
    expect(allowed.answers).toEqual([expect.objectContaining({ ok: true, created: true })]);
  });

  it('is refused before anything is stopped or tagged when its AMI is not of an allowed owner', async () => {
    const refused = await shelveOne(instance(), foreign);

    expect(refused.answers).toEqual([
      expect.objectContaining({
        ok: false,
        error: expect.objectContaining({ code: 'ImageOwnerNotAllowed' }),
      }),
    ]);
    expect(refused.store.records.size).toBe(0);
    expect(refused.calls.filter((call) => !call.startsWith('describe'))).toEqual([]);
  });
});

describe('a relaunch the settings no longer allow', () => {
  it('launches nothing and fails the record, saying why, instead of retrying', async () => {
    // Shelved while the profile was configured; the deployment has since dropped it.
    const shelved = record({
      config: { ...record().config, iamInstanceProfileArn: PROFILE_ARN },
      step: 'unshelve.choose',
      offloadedAt: NOW - 3_600_000,
      nextDueAt: NOW,
      unshelve: { requestId: 'unshelve-event', requestedAt: NOW, attempt: 0 },
    });
    const { ec2, calls } = oneInstance(instance(), ours);
    const shelving = shelvingOnClock(ec2);
    await shelving.store.create(shelved);

    await shelving.rounds.advance([shelved]);
    shelving.clock.at += 10 * 60_000;
    await shelving.rounds.reconcile();

    expect(calls).not.toContain('runInstances');
    expect(shelving.store.records.get(shelved.recordId)).toMatchObject({
      step: 'failed',
      error: { message: expect.stringContaining('InstanceProfileNotAllowed') },
    });
  });
});

describe('attributeChange (the check before every ModifyInstanceAttribute)', () => {
  const shelvingOnly = CHANGED_INSTANCE_ATTRIBUTES.shelving;

  it('passes a change of one of the capability’s attributes', () => {
    const input = { InstanceId: 'i-1', DisableApiStop: { Value: true } };
    expect(attributeChange(input, shelvingOnly)).toBe(input);
  });

  it('refuses another attribute, the Attribute/Value form and two attributes at once', () => {
    expect(() =>
      attributeChange({ InstanceId: 'i-1', InstanceType: { Value: 'p5.48xlarge' } }, shelvingOnly),
    ).toThrow(/InstanceType of i-1: this capability changes only/);
    expect(() =>
      attributeChange({ InstanceId: 'i-1', Attribute: 'userData', Value: 'eA==' }, shelvingOnly),
    ).toThrow(/exactly one attribute/);
    expect(() =>
      attributeChange(
        { InstanceId: 'i-1', DisableApiStop: { Value: true }, DisableApiTermination: { Value: true } },
        shelvingOnly,
      ),
    ).toThrow(/exactly one attribute/);
    expect(() =>
      attributeChange(
        { InstanceId: 'i-1', UserData: { Value: new Uint8Array([1]) } },
        CHANGED_INSTANCE_ATTRIBUTES.pools,
      ),
    ).toThrow(/changes only InstanceType/);
  });
});
