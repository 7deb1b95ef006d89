import {
  AttachVolumeCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  EnableEbsEncryptionByDefaultCommand,
  GetEbsDefaultKmsKeyIdCommand,
  ModifyEbsDefaultKmsKeyIdCommand,
  StartInstancesCommand,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, it } from 'vitest';
import { FUNCTIONS, type FunctionId } from '../../../functions/catalog';
import { classifyAwsError } from '../../../functions/shared/aws-errors';
import { ebsKeyAuthorizer } from '../../../local/iam/evaluator';
import { synthesizedRolePolicies } from '../../../local/iam/policy-source';
import type {
  PolicyStatement,
  SynthesizedRolePolicies,
  SynthesizedVariant,
} from '../../../local/iam/policy-template';
import { ACCOUNT, type Cloud, createCloud, REGION, runInstances, stateChanges, ZONE_A } from './ec2-harness';
import { asFunction, localIamOn } from './iam-harness';

/**
 * EBS encryption with customer managed KMS keys (finding R4): which key a volume gets, and what a
 * launch, start, attach or create does when EC2 cannot use the key for the caller (EBS User Guide,
 * ebs-encryption-requirements; KMS Developer Guide, key-policy-default, key-state; re:Post
 * knowledge center kms-iam-ec2-permission and encrypted-volumes-stops-immediately).
 */

const send = <T>(cloud: Cloud, call: () => Promise<T>) => cloud.run(call);

const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error as { name?: string; message?: string },
  );

const launchWith = (cloud: Cloud, keyArn: string) =>
  runInstances(cloud, {
    Placement: { AvailabilityZone: ZONE_A },
    BlockDeviceMappings: [
      { DeviceName: '/dev/xvda', Ebs: { Encrypted: true, KmsKeyId: keyArn } },
      { DeviceName: '/dev/sdf', Ebs: { VolumeSize: 20, Encrypted: true, KmsKeyId: keyArn } },
    ],
  });

type Caller = <T>(call: () => Promise<T>) => Promise<T>;
const asAdministrator: Caller = (call) => call();

/** launchWith as `as` calls it, then lets the launch, or its failure, play out. */
const launchSettled = async (cloud: Cloud, keyArn: string, as: Caller = asAdministrator) => {
  const reservation = await as(() => launchWith(cloud, keyArn));
  await cloud.settle();
  return { reservation, instanceId: reservation.Instances?.[0]?.InstanceId ?? '' };
};

/** An instance launched with the key, run and then stopped; its id. */
const stoppedWith = async (cloud: Cloud, keyArn: string) => {
  const { instanceId } = await launchSettled(cloud, keyArn);
  await send(cloud, () => cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [instanceId] })));
  await cloud.settle();
  return instanceId;
};

const describeInstance = async (cloud: Cloud, instanceId: string) => {
  const output = await send(cloud, () =>
    cloud.ec2Client.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })),
  );
  return output.Reservations?.[0]?.Instances?.[0];
};

const volumesOf = (cloud: Cloud, instanceId: string) =>
  cloud.ec2.volumes().filter((volume) => volume.attachment?.instanceId === instanceId);

/** AttachVolume of `volumeId` to `instanceId` as /dev/sdg, as `as` calls it; the refusal, if any. */
const attachRefusal = (
  cloud: Cloud,
  volumeId: string | undefined,
  instanceId: string | undefined,
  as: Caller = asAdministrator,
) =>
  rejection(
    as(() =>
      send(cloud, () =>
        cloud.ec2Client.send(
          new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: '/dev/sdg' }),
        ),
      ),
    ),
  );

const createVolume = async (cloud: Cloud, input: Record<string, unknown>) =>
  send(cloud, () =>
    cloud.ec2Client.send(new CreateVolumeCommand({ AvailabilityZone: ZONE_A, Size: 10, ...input })),
  );

describe('which KMS key an EBS volume is encrypted with', () => {
  it('gives a customer managed key the default key policy: the account root may do everything, so IAM decides', async () => {
    const cloud = await createCloud();
    const key = cloud.ec2.kms.createKey({ alias: 'alias/shelved-data' });

    expect(key).toMatchObject({
      arn: `arn:aws:kms:${REGION}:${ACCOUNT}:key/${key.keyId}`,
      state: 'Enabled',
      keyManager: 'CUSTOMER',
    });
    expect(key.policy).toMatchObject({
      Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*' }],
    });
    expect(cloud.ec2.kms.key('alias/shelved-data')?.arn).toBe(key.arn);
    expect(cloud.ec2.kms.key(key.keyId)?.arn).toBe(key.arn);
  });

  it('encrypts a volume with the key it asks for, and refuses KmsKeyId without Encrypted', async () => {
    const cloud = await createCloud();
    const key = cloud.ec2.kms.createKey();

    const encrypted = await createVolume(cloud, { Encrypted: true, KmsKeyId: key.keyId });
    const plain = await createVolume(cloud, {});
    const refused = await rejection(createVolume(cloud, { KmsKeyId: key.arn }));

    expect(encrypted).toMatchObject({ Encrypted: true, KmsKeyId: key.arn });
    expect(plain).toMatchObject({ Encrypted: false });
    expect(plain.KmsKeyId).toBeUndefined();
    expect(refused).toMatchObject({ name: 'InvalidParameterDependency' });
  });

  it('keeps the key: snapshots of an encrypted volume and volumes restored from them use it', async () => {
    const cloud = await createCloud();
    const key = cloud.ec2.kms.createKey();
    const source = await createVolume(cloud, { Encrypted: true, KmsKeyId: key.arn });
    await cloud.settle();

    const snapshot = await send(cloud, () =>
      cloud.ec2Client.send(new CreateSnapshotCommand({ VolumeId: source.VolumeId })),
    );
    await cloud.settle();
    const restored = await createVolume(cloud, { SnapshotId: snapshot.SnapshotId, Size: undefined });
    const image = cloud.ec2.registerImage({ name: 'encrypted-ami', rootSizeGiB: 8, rootKmsKeyId: key.arn });
    const reservation = await runInstances(cloud, { ImageId: image });
    const instanceId = reservation.Instances?.[0]?.InstanceId ?? '';

    expect(snapshot).toMatchObject({ Encrypted: true, KmsKeyId: key.arn });
    expect(restored).toMatchObject({ Encrypted: true, KmsKeyId: key.arn });
    expect(volumesOf(cloud, instanceId).map((volume) => volume.kmsKeyId)).toEqual([key.arn]);
  });

  it('encrypts every new volume with the account default key when encryption by default is on', async () => {
    const cloud = await createCloud();
    const key = cloud.ec2.kms.createKey();
    const before = await send(cloud, () => cloud.ec2Client.send(new GetEbsDefaultKmsKeyIdCommand({})));

    await send(cloud, () => cloud.ec2Client.send(new EnableEbsEncryptionByDefaultCommand({})));
    await send(cloud, () =>
      cloud.ec2Client.send(new ModifyEbsDefaultKmsKeyIdCommand({ KmsKeyId: key.keyId })),
    );
    const volume = await createVolume(cloud, {});
    const reservation = await runInstances(cloud);
    const instanceId = reservation.Instances?.[0]?.InstanceId ?? '';

    expect(before.KmsKeyId).toBe('alias/aws/ebs');
    expect(volume).toMatchObject({ Encrypted: true, KmsKeyId: key.arn });
    expect(volumesOf(cloud, instanceId).map((attached) => attached.kmsKeyId)).toEqual([key.arn]);
  });

  it('uses the AWS managed key aws/ebs when no key is named, and runs without asking the caller', async () => {
    const cloud = await createCloud();
    // Every caller is refused the customer managed keys: aws/ebs must not need that.
    cloud.ec2.kms.authorizeWith(async () => 'not authorized');

    const volume = await createVolume(cloud, { Encrypted: true });
    const reservation = await runInstances(cloud, {
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { Encrypted: true } }],
    });
    await cloud.settle();
    const instanceId = reservation.Instances?.[0]?.InstanceId ?? '';

    const managed = cloud.ec2.kms.key('alias/aws/ebs');
    expect(managed?.keyManager).toBe('AWS');
    expect(volume.KmsKeyId).toBe(managed?.arn);
    expect(cloud.ec2.instance(instanceId)?.state).toBe('running');
    expect(cloud.ec2.volume(volume.VolumeId ?? '')?.state).toBe('available');
  });
});

describe('a key EBS cannot use (disabled), whoever calls', () => {
  const setup = async () => {
    const cloud = await createCloud();
    const key = cloud.ec2.kms.createKey();
    return { cloud, key };
  };

  it('accepts RunInstances, then the instance goes pending → shutting-down → terminated, saying why', async () => {
    const { cloud, key } = await setup();
    cloud.ec2.kms.setKeyState(key.arn, 'Disabled');

    const { reservation, instanceId } = await launchSettled(cloud, key.arn);
    const described = await describeInstance(cloud, instanceId);

    expect(reservation.Instances?.[0]?.State?.Name).toBe('pending');
    expect(stateChanges(cloud, instanceId)).toEqual(['pending', 'shutting-down', 'terminated']);
    expect(described?.StateReason).toEqual({
      Code: 'Client.InvalidKMSKey.InvalidState',
      Message: 'Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state',
    });
  });

  it('accepts StartInstances, then the instance goes pending → stopped and keeps its volumes', async () => {
    const { cloud, key } = await setup();
    const instanceId = await stoppedWith(cloud, key.arn);
    cloud.ec2.kms.setKeyState(key.arn, 'PendingDeletion');

    const started = await send(cloud, () =>
      cloud.ec2Client.send(new StartInstancesCommand({ InstanceIds: [instanceId] })),
    );
    await cloud.settle();
    const described = await describeInstance(cloud, instanceId);

    expect(started.StartingInstances?.[0]?.CurrentState?.Name).toBe('pending');
    expect(stateChanges(cloud, instanceId)).toEqual([
      'pending',
      'running',
      'stopping',
      'stopped',
      'pending',
      'stopped',
    ]);
    expect(described?.StateReason?.Code).toBe('Client.InvalidKMSKey.InvalidState');
    expect(volumesOf(cloud, instanceId)).toHaveLength(2);
  });

  it('refuses AttachVolume with CustomerKeyHasBeenRevoked, which warmboot reads as an unusable key', async () => {
    const { cloud, key } = await setup();
    const reservation = await runInstances(cloud, { Placement: { AvailabilityZone: ZONE_A } });
    const volume = await createVolume(cloud, { Encrypted: true, KmsKeyId: key.arn });
    await cloud.settle();
    cloud.ec2.kms.setKeyState(key.arn, 'Disabled');

    const refused = await attachRefusal(cloud, volume.VolumeId, reservation.Instances?.[0]?.InstanceId);

    expect(refused).toMatchObject({ name: 'CustomerKeyHasBeenRevoked' });
    expect(refused?.message).toContain(key.arn);
    expect(classifyAwsError(refused)).toBe('encryption-key');
    expect(cloud.ec2.volume(volume.VolumeId ?? '')?.state).toBe('available');
  });

  it('accepts CreateVolume, then the volume is deleted instead of becoming available', async () => {
    const { cloud, key } = await setup();
    cloud.ec2.kms.setKeyState(key.arn, 'Disabled');

    const created = await createVolume(cloud, { Encrypted: true, KmsKeyId: key.arn });
    await cloud.settle();
    const described = await rejection(
      send(cloud, () =>
        cloud.ec2Client.send(new DescribeVolumesCommand({ VolumeIds: [created.VolumeId ?? ''] })),
      ),
    );

    expect(created.State).toBe('creating');
    expect(described).toMatchObject({ name: 'InvalidVolume.NotFound' });
  });

  it('fails a launch naming a key that does not exist the same way (EBS checks the key asynchronously)', async () => {
    const { cloud } = await setup();
    const missing = `arn:aws:kms:${REGION}:${ACCOUNT}:key/00000000-0000-4000-8000-000000000000`;

    const { instanceId } = await launchSettled(cloud, missing);

    expect(cloud.ec2.instance(instanceId)?.state).toBe('terminated');
  });
});

/**
 * The caller's KMS permissions, evaluated by the local IAM as the calling function's role with
 * the condition keys EC2 presents: a role policy made for each case.
 */
describe("the caller's KMS permissions (IAM as the function's role)", () => {
  const USE = [
    'kms:Decrypt',
    'kms:DescribeKey',
    'kms:GenerateDataKeyWithoutPlaintext',
    'kms:ReEncryptFrom',
    'kms:ReEncryptTo',
  ];

  /** The shelving role holds exactly `statements`; every other role nothing. */
  const policiesWith = (statements: PolicyStatement[]): SynthesizedRolePolicies => {
    const variant = Object.fromEntries(
      (Object.keys(FUNCTIONS) as FunctionId[]).map((id) => [
        id,
        id === 'shelving' ? [{ Version: '2012-10-17', Statement: statements }] : [],
      ]),
    ) as unknown as SynthesizedVariant;
    return { key: 'test', base: variant, optIn: variant };
  };

  const setup = async (statements: (keyArn: string) => PolicyStatement[]) => {
    const cloud = await createCloud();
    const key = cloud.ec2.kms.createKey();
    const iam = localIamOn(cloud, policiesWith(statements(key.arn)));
    cloud.ec2.kms.authorizeWith(ebsKeyAuthorizer(iam));
    const asShelving: Caller = (call) => asFunction('shelving', call);
    return { cloud, key, iam, asShelving };
  };

  const throughEc2 = { 'kms:ViaService': `ec2.${REGION}.amazonaws.com`, 'kms:CallerAccount': ACCOUNT };
  const leastPrivilege = (keyArn: string): PolicyStatement[] => [
    { Effect: 'Allow', Action: USE, Resource: keyArn, Condition: { StringEquals: throughEc2 } },
    {
      Effect: 'Allow',
      Action: 'kms:CreateGrant',
      Resource: keyArn,
      Condition: { StringEquals: throughEc2, Bool: { 'kms:GrantIsForAWSResource': 'true' } },
    },
  ];

  it('launches and starts for a role allowed the five actions through EC2, grants only for AWS resources', async () => {
    const { cloud, key, iam, asShelving } = await setup(leastPrivilege);

    const { instanceId } = await launchSettled(cloud, key.arn, asShelving);

    expect(cloud.ec2.instance(instanceId)?.state).toBe('running');
    expect(iam.denials()).toEqual([]);
  });

  it('ends the launch (Client.InternalError) of a role without them, and names the missing action', async () => {
    const { cloud, key, iam, asShelving } = await setup(() => []);

    const { instanceId } = await launchSettled(cloud, key.arn, asShelving);
    const described = await describeInstance(cloud, instanceId);

    expect(described?.State?.Name).toBe('terminated');
    expect(described?.StateReason).toEqual({
      Code: 'Client.InternalError',
      Message: 'Client.InternalError: Client error on launch',
    });
    expect(iam.denials()[0]).toMatchObject({
      functionId: 'shelving',
      operation: 'RunInstances via EC2',
      action: 'kms:CreateGrant',
      resource: key.arn,
      context: { 'kms:ViaService': `ec2.${REGION}.amazonaws.com`, 'kms:GrantIsForAWSResource': 'true' },
    });
  });

  it('stops the start of a role that lost the key: pending → stopped, Client.InternalError', async () => {
    const { cloud, key, asShelving } = await setup(() => []);
    const instanceId = await stoppedWith(cloud, key.arn);

    await asShelving(() =>
      send(cloud, () => cloud.ec2Client.send(new StartInstancesCommand({ InstanceIds: [instanceId] }))),
    );
    await cloud.settle();
    const described = await describeInstance(cloud, instanceId);

    expect(described?.State?.Name).toBe('stopped');
    expect(described?.StateReason?.Code).toBe('Client.InternalError');
  });

  it('evaluates the conditions EC2 presents: a grant allowed only in another Region is no grant', async () => {
    const otherRegion = (keyArn: string): PolicyStatement[] => [
      { Effect: 'Allow', Action: USE, Resource: keyArn },
      {
        Effect: 'Allow',
        Action: 'kms:CreateGrant',
        Resource: keyArn,
        Condition: { StringEquals: { 'kms:ViaService': 'ec2.eu-west-1.amazonaws.com' } },
      },
    ];
    const { cloud, key, iam, asShelving } = await setup(otherRegion);
    const reservation = await launchWith(cloud, key.arn);
    const volume = await createVolume(cloud, { Encrypted: true, KmsKeyId: key.arn });
    await cloud.settle();

    const refused = await attachRefusal(
      cloud,
      volume.VolumeId,
      reservation.Instances?.[0]?.InstanceId,
      asShelving,
    );

    expect(refused).toMatchObject({ name: 'CustomerKeyHasBeenRevoked' });
    expect(iam.denials()[0]).toMatchObject({ operation: 'AttachVolume via EC2', action: 'kms:CreateGrant' });
    expect(iam.denials()[0]?.nearMisses.length).toBeGreaterThan(0);
  });

  it('lets a test outside any invocation act as the administrator (the default key policy)', async () => {
    const { cloud, key } = await setup(() => []);

    const created = await createVolume(cloud, { Encrypted: true, KmsKeyId: key.arn });
    await cloud.settle();

    expect(cloud.ec2.volume(created.VolumeId ?? '')?.state).toBe('available');
  });
});

/** The roles as infra/ synthesizes them: the configured keys, and only those, through EC2. */
describe('the synthesized roles and ebsKmsKeyArns', () => {
  let synthesized: SynthesizedRolePolicies;
  beforeAll(async () => {
    // Cached under node_modules/.cache after the first synth (~30 s).
    synthesized = await synthesizedRolePolicies();
  }, 300_000);

  const launchAs = async (functionId: FunctionId, ebsKmsKeyArns: (keyArn: string) => string[]) => {
    const cloud = await createCloud();
    const key = cloud.ec2.kms.createKey();
    const iam = localIamOn(cloud, synthesized, { ebsKmsKeyArns: ebsKmsKeyArns(key.arn) });
    cloud.ec2.kms.authorizeWith(ebsKeyAuthorizer(iam));
    const { instanceId } = await launchSettled(cloud, key.arn, (call) => asFunction(functionId, call));
    return { state: cloud.ec2.instance(instanceId)?.state, iam };
  };

  it('lets shelving, pools and claim use a key the deployment names', async () => {
    for (const functionId of ['shelving', 'pools', 'claim'] as const) {
      const { state, iam } = await launchAs(functionId, (keyArn) => [keyArn]);
      expect(state, functionId).toBe('running');
      expect(iam.denials(), functionId).toEqual([]);
    }
  });

  it('gives no role a key the deployment does not name', async () => {
    const other = `arn:aws:kms:${REGION}:${ACCOUNT}:key/11111111-1111-4111-8111-111111111111`;
    const named = await launchAs('shelving', () => [other]);
    const none = await launchAs('shelving', () => []);
    const advisor = await launchAs('placement', (keyArn) => [keyArn]);

    expect(named.state).toBe('terminated');
    expect(none.state).toBe('terminated');
    expect(advisor.state).toBe('terminated');
  });
});
