import {
  CreateTagsCommand,
  DeleteTagsCommand,
  EC2Client,
  ModifyInstanceAttributeCommand,
  type ModifyInstanceAttributeCommandInput,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FunctionId } from '../../../functions/catalog';
import { documentNamed, INITIALIZE_DOCUMENT, PERSONALIZE_DOCUMENT } from '../../../functions/pools/documents';
import { classifyAwsError } from '../../../functions/shared/aws-errors';
import { EBS_KEY_ACTIONS } from '../../../functions/shared/ebs-encryption';
import { deployedDocumentName } from '../../../functions/shared/ssm-document';
import { ec2ResourceState } from '../../../local/iam/ec2-state';
import { attachIam, type LocalIam } from '../../../local/iam/evaluator';
import { synthesizedRolePolicies } from '../../../local/iam/policy-source';
import type { IamDeployment, SynthesizedRolePolicies } from '../../../local/iam/policy-template';
import { ebsKeyUseChecks, ec2Checks, eventsChecks, ssmChecks } from '../../../local/iam/request-context';
import { holdClockWhileSending } from '../../../local/runtime';
import { attachSimulator } from '../../../local/sdk-bridge';
import { ACCOUNT, type Cloud, createCloud, launch, REGION, runRequest } from './ec2-harness';
import { asFunction, localIamOn } from './iam-harness';

/**
 * Denials the role policies synthesized from infra/ produce on the simulators' current state.
 * Each case is a call the code makes (or one outside the role), evaluated as AWS would.
 */

const DEPLOYMENT: Partial<IamDeployment> = { hostGroups: ['web'] };

const MEMBER_TAGS = [
  { Key: 'warmboot:pools', Value: 'true' },
  { Key: 'warmboot:pool', Value: 'web' },
  { Key: 'warmboot:member-state', Value: 'ready' },
];

let synthesized: SynthesizedRolePolicies;
beforeAll(async () => {
  // Cached under node_modules/.cache after the first synth (~30 s).
  synthesized = await synthesizedRolePolicies();
}, 180_000);

const setup = async (deployment: Partial<IamDeployment> = {}) => {
  const cloud = await createCloud();
  const iam = localIamOn(cloud, synthesized, { ...DEPLOYMENT, ...deployment });
  return { cloud, iam };
};

const member = (cloud: Cloud) =>
  launch(cloud, { TagSpecifications: [{ ResourceType: 'instance', Tags: MEMBER_TAGS }] });

const rejection = async (promise: Promise<unknown>) => {
  const error = (await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  )) as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return { name: error?.name, message: error?.message ?? '', status: error?.$metadata?.httpStatusCode };
};

/** A function's EC2 client, as the local cloud gives it, called from inside an invocation. */
const functionClient = (cloud: Cloud, iam: LocalIam, functionId: FunctionId) => {
  const client = new EC2Client({
    region: REGION,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    endpoint: 'http://127.0.0.1:9',
    maxAttempts: 1,
  });
  attachSimulator(client, cloud.ec2.dispatch);
  holdClockWhileSending(client, cloud.clock);
  attachIam(client, iam, functionId, 'ec2');
  return <T>(call: (ec2: EC2Client) => Promise<T>): Promise<T> =>
    cloud.run(() => asFunction(functionId, () => call(client)));
};

const deployedName = (logicalName: string): string => {
  const document = documentNamed(logicalName);
  if (!document) throw new Error(`no pool document ${logicalName}`);
  return deployedDocumentName(document);
};

describe('local IAM on the synthesized role policies', () => {
  it('lets the pools role terminate a pool member and refuses an instance without warmboot:pools', async () => {
    const { cloud, iam } = await setup();
    const poolMember = await member(cloud);
    const outsider = await launch(cloud, {
      TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'warmboot:pool', Value: 'web' }] }],
    });
    const asPools = functionClient(cloud, iam, 'pools');

    await asPools((ec2) => ec2.send(new TerminateInstancesCommand({ InstanceIds: [poolMember] })));
    const refused = await rejection(
      asPools((ec2) => ec2.send(new TerminateInstancesCommand({ InstanceIds: [outsider] }))),
    );

    expect(cloud.ec2.instance(poolMember)?.state).toBe('shutting-down');
    expect(refused.name).toBe('UnauthorizedOperation');
    expect(refused.status).toBe(403);
    expect(refused.message).toContain(
      `ec2:TerminateInstances on resource: arn:aws:ec2:us-east-1:${ACCOUNT}:instance/${outsider}`,
    );
    expect(refused.message).toMatch(/Encoded authorization failure message: [A-Za-z0-9+/=]+$/);
    expect(classifyAwsError(Object.assign(new Error(refused.message), { name: refused.name }))).toBe(
      'unauthorized',
    );
    expect(cloud.ec2.instance(outsider)?.state).not.toMatch(/shutting-down|terminated/);
    expect(iam.stats().denials).toEqual({ pools: { 'ec2:TerminateInstances': 1 } });
  });

  it('lets the pool roles launch only AMIs of the allowed owners, with only the configured roles (C2)', async () => {
    const { cloud, iam } = await setup({ instanceRoles: ['builder'] });
    const amazon = cloud.ec2.registerImage({
      name: 'al2023-public',
      rootSizeGiB: 8,
      ownerId: '137112412989',
      ownerAlias: 'amazon',
    });
    const stranger = cloud.ec2.registerImage({ name: 'stranger', rootSizeGiB: 8, ownerId: '210987654321' });
    const asPools = functionClient(cloud, iam, 'pools');
    const launchAs = (imageId: string, profile = 'builder') =>
      asPools((ec2) =>
        ec2.send(
          runRequest(imageId, {
            IamInstanceProfile: { Name: profile },
            TagSpecifications: [
              { ResourceType: 'instance', Tags: MEMBER_TAGS },
              { ResourceType: 'volume', Tags: [{ Key: 'warmboot:pools', Value: 'true' }] },
            ],
          }),
        ),
      );

    await launchAs(cloud.imageId);
    await launchAs(amazon);
    const foreignImage = await rejection(launchAs(stranger));
    const otherRole = await rejection(launchAs(cloud.imageId, 'admin'));

    expect(foreignImage.message).toContain(
      `ec2:RunInstances on resource: arn:aws:ec2:us-east-1::image/${stranger}`,
    );
    expect(otherRole.message).toContain(`iam:PassRole on resource: arn:aws:iam::${ACCOUNT}:role/admin`);
    // A deployment that trusts one other account's AMIs only: not even this account's own.
    const { cloud: trusting, iam: trustingIam } = await setup({ imageOwners: ['210987654321'] });
    const shared = trusting.ec2.registerImage({ name: 'shared', rootSizeGiB: 8, ownerId: '210987654321' });
    const coldLaunch = (imageId: string) =>
      functionClient(
        trusting,
        trustingIam,
        'claim',
      )((ec2) =>
        ec2.send(
          runRequest(imageId, {
            TagSpecifications: [
              { ResourceType: 'instance', Tags: [...MEMBER_TAGS, { Key: 'warmboot:claim', Value: 'r1' }] },
              { ResourceType: 'volume', Tags: [{ Key: 'warmboot:pools', Value: 'true' }] },
            ],
          }),
        ),
      );
    await coldLaunch(shared);
    expect((await rejection(coldLaunch(trusting.imageId))).name).toBe('UnauthorizedOperation');
  });

  it('refuses the whole call when one of its instances is not allowed', async () => {
    const { cloud, iam } = await setup();
    const poolMember = await member(cloud);
    const outsider = await launch(cloud);
    const asPools = functionClient(cloud, iam, 'pools');

    const refused = await rejection(
      asPools((ec2) => ec2.send(new TerminateInstancesCommand({ InstanceIds: [poolMember, outsider] }))),
    );

    expect(refused.name).toBe('UnauthorizedOperation');
    expect(cloud.ec2.instance(poolMember)?.state).not.toMatch(/shutting-down|terminated/);
  });

  it('denies SendCommand on a member whose pool tags the claim just removed (finding R1)', async () => {
    const { cloud, iam } = await setup();
    const claimed = await member(cloud);
    const personalize = { DocumentName: deployedName(PERSONALIZE_DOCUMENT), InstanceIds: [claimed] };

    await iam.authorize('claim', 'ssm', 'SendCommand', personalize);
    // The hand-over: the member loses its pool tags (functions/claim/application/hand-over.ts handOver).
    await functionClient(
      cloud,
      iam,
      'claim',
    )((ec2) =>
      ec2.send(
        new DeleteTagsCommand({
          Resources: [claimed],
          Tags: [{ Key: 'warmboot:pools' }, { Key: 'warmboot:pool' }, { Key: 'warmboot:member-state' }],
        }),
      ),
    );
    const refused = await rejection(iam.authorize('claim', 'ssm', 'SendCommand', personalize));

    expect(refused.name).toBe('AccessDeniedException');
    expect(refused.status).toBe(400);
    expect(iam.denials()).toEqual([
      expect.objectContaining({
        functionId: 'claim',
        action: 'ssm:SendCommand',
        resource: `arn:aws:ec2:us-east-1:${ACCOUNT}:instance/${claimed}`,
        nearMisses: ['RunPoolDocumentsOnMembers'],
      }),
    ]);
  });

  it('lets the image cache publish its warm list only on hosts of a configured host group', async () => {
    const hostTags = [
      { Key: 'warmboot:image-cache', Value: 'true' },
      { Key: 'warmboot:host-group', Value: 'web' },
    ];
    const { cloud, iam } = await setup({ hostGroups: ['web'] });
    const host = await launch(cloud, { TagSpecifications: [{ ResourceType: 'instance', Tags: hostTags }] });
    const asCache = functionClient(cloud, iam, 'imageCache');
    const warmList = (resource: string, key = 'warmboot:warm-images') =>
      asCache((ec2) =>
        ec2.send(new CreateTagsCommand({ Resources: [resource], Tags: [{ Key: key, Value: 'ami-1' }] })),
      );

    await warmList(host);
    const otherKey = await rejection(warmList(host, 'warmboot:pool'));
    const { cloud: otherCloud, iam: otherIam } = await setup({ hostGroups: ['gpu'] });
    const otherHost = await launch(otherCloud, {
      TagSpecifications: [{ ResourceType: 'instance', Tags: hostTags }],
    });
    const otherGroup = await rejection(
      functionClient(
        otherCloud,
        otherIam,
        'imageCache',
      )((ec2) =>
        ec2.send(
          new CreateTagsCommand({
            Resources: [otherHost],
            Tags: [{ Key: 'warmboot:warm-images', Value: 'x' }],
          }),
        ),
      ),
    );

    expect(cloud.ec2.instance(host)?.tags['warmboot:warm-images']).toBe('ami-1');
    expect(otherKey.name).toBe('UnauthorizedOperation');
    expect(otherGroup.name).toBe('UnauthorizedOperation');
  });

  it('lets shelving delete a retained volume only in a deployment that opted in', async () => {
    const { cloud, iam } = await setup();
    const optedIn = localIamOn(cloud, synthesized, { ...DEPLOYMENT, allowShelvedDataDeletion: true });
    const instanceId = await launch(cloud);
    const root = cloud.ec2.volumes().find((volume) => volume.attachment?.instanceId === instanceId)?.volumeId;
    await cloud.run(() =>
      cloud.ec2Client.send(
        new CreateTagsCommand({
          Resources: [root ?? ''],
          Tags: [
            { Key: 'warmboot:shelving', Value: 'true' },
            { Key: 'warmboot:shelved', Value: 'rec-1' },
          ],
        }),
      ),
    );

    const refused = await rejection(iam.authorize('shelving', 'ec2', 'DeleteVolume', { VolumeId: root }));
    await optedIn.authorize('shelving', 'ec2', 'DeleteVolume', { VolumeId: root });

    expect(refused.name).toBe('UnauthorizedOperation');
    expect(optedIn.stats().denied).toBe(0);
  });

  it('resolves only public AMI aliases and the image parameters deployed in context (finding R11)', async () => {
    const { iam } = await setup({ imageParameters: ['/team/ami/web'] });
    const resolve = (Name: string) => iam.authorize('pools', 'ssm', 'GetParameter', { Name });

    await resolve('/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64');
    await resolve('/team/ami/web');
    // A pool defined at run time (Define Pool) with its own parameter: not in the synthesized policy.
    const runtimeDefined = await rejection(resolve('/team/ami/batch'));

    expect(runtimeDefined.name).toBe('AccessDeniedException');
    expect(iam.denials().map((denial) => denial.resource)).toEqual([
      `arn:aws:ssm:us-east-1:${ACCOUNT}:parameter/team/ami/batch`,
    ]);
  });

  it('refuses DynamoDB and EventBridge calls outside the role with AccessDeniedException', async () => {
    const { iam } = await setup();

    await iam.authorize('placement', 'dynamodb', 'Query', { TableName: 'wb-image-cache', IndexName: 'gsi1' });
    const write = await rejection(
      iam.authorize('placement', 'dynamodb', 'PutItem', { TableName: 'wb-image-cache', Item: {} }),
    );
    const put = (bus: string, source: string, detailType: string) =>
      iam.authorize('placement', 'events', 'PutEvents', {
        Entries: [{ EventBusName: bus, Source: source, DetailType: detailType, Detail: '{}' }],
      });
    // Placement publishes Plan Cache as a fact, on the facts bus.
    await put('warmboot-facts', 'warmboot.fact', 'Plan Cache');
    const spoof = await rejection(put('warmboot-facts', 'aws.ec2', 'EC2 Instance State-change Notification'));
    // Security review C1: the read-only role cannot emit a destructive request, as a fact or a request.
    const destructive = await rejection(put('warmboot-facts', 'warmboot.fact', 'Delete Shelved Record'));
    const request = await rejection(put('warmboot-requests', 'warmboot', 'Delete Shelved Record'));
    const defaultBus = await rejection(put('default', 'warmboot.fact', 'Plan Cache'));

    expect(write.name).toBe('AccessDeniedException');
    for (const denied of [spoof, destructive, request, defaultBus])
      expect(denied.name).toBe('AccessDeniedException');
    expect(iam.stats().denials).toEqual({ placement: { 'dynamodb:PutItem': 1, 'events:PutEvents': 4 } });
  });

  it('treats a condition on a key the action does not support as a missing key, as AWS does', async () => {
    const { cloud, iam } = await setup();
    const volume = `arn:aws:ec2:us-east-1:${ACCOUNT}:volume/vol-0123456789abcdef0`;
    const policy = (operator: string) =>
      localIamOn(
        cloud,
        {
          ...synthesized,
          base: {
            ...synthesized.base,
            placement: [
              {
                Version: '2012-10-17',
                Statement: [
                  {
                    Effect: 'Allow',
                    Action: 'ec2:DeleteVolume',
                    Resource: `arn:aws:ec2:us-east-1:${ACCOUNT}:volume/*`,
                    Condition: { [operator]: { 'ec2:InstanceType': 'm7i.large' } },
                  },
                ],
              },
            ],
          },
        },
        DEPLOYMENT,
      );
    // ec2:InstanceType is not a condition key of DeleteVolume's volume resource (SAR), so even a
    // request that carries it arrives without it.
    const check = {
      action: 'ec2:DeleteVolume',
      resource: volume,
      context: { 'ec2:InstanceType': 'm7i.large' },
    };

    expect((await policy('StringEquals').evaluate('placement', check)).allowed).toBe(false);
    expect((await policy('StringEqualsIfExists').evaluate('placement', check)).allowed).toBe(true);
    expect(iam.stats().denied).toBe(0);
  });

  it('lets each role change only its own instance attributes, refusing any other as AWS does (ec2:Attribute)', async () => {
    const { cloud, iam } = await setup();
    const shelvable = await launch(cloud, {
      TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'warmboot:shelving', Value: 'true' }] }],
    });
    const poolMember = await member(cloud);
    await cloud.run(() =>
      cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [shelvable, poolMember], Force: true })),
    );
    await cloud.settle();
    const modify = (
      functionId: FunctionId,
      input: Omit<ModifyInstanceAttributeCommandInput, 'InstanceId'>,
      id: string,
    ) =>
      functionClient(
        cloud,
        iam,
        functionId,
      )((ec2) => ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: id, ...input })));

    // What each capability changes: shelving the user data and protection, the pool roles the type.
    await modify('shelving', { UserData: { Value: Buffer.from('#!/bin/sh\n') } }, shelvable);
    await modify('shelving', { DisableApiTermination: { Value: true } }, shelvable);
    await modify('shelving', { DisableApiStop: { Value: false } }, shelvable);
    await modify('claim', { InstanceType: { Value: 'm7i.xlarge' } }, poolMember);
    // Anything else, on the very instances they may change.
    const refused = await Promise.all([
      rejection(modify('shelving', { InstanceType: { Value: 'p5.48xlarge' } }, shelvable)),
      rejection(modify('shelving', { InstanceInitiatedShutdownBehavior: { Value: 'terminate' } }, shelvable)),
      rejection(modify('shelving', { Attribute: 'instanceType', Value: 'p5.48xlarge' }, shelvable)),
      rejection(modify('claim', { DisableApiTermination: { Value: true } }, poolMember)),
      rejection(modify('claim', { UserData: { Value: Buffer.from('x') } }, poolMember)),
      rejection(modify('pools', { SourceDestCheck: { Value: false } }, poolMember)),
    ]);

    expect(refused.map((answer) => [answer.name, answer.status])).toEqual(
      refused.map(() => ['UnauthorizedOperation', 403]),
    );
    expect(cloud.ec2.instance(shelvable)?.instanceType).toBe('m7i.large');
    expect(cloud.ec2.instance(poolMember)?.instanceType).toBe('m7i.xlarge');
    expect(iam.denials().map((denial) => denial.nearMisses)).toEqual([
      ['RestoreInstanceAttributes'],
      ['RestoreInstanceAttributes'],
      ['RestoreInstanceAttributes'],
      ['ResizePoolMembers'],
      ['ResizePoolMembers'],
      ['ResizePoolMembers'],
    ]);
  });

  it('lets shelving launch only AMIs of shelving.allowedImageOwners, passing only the roles of its profiles', async () => {
    const { cloud, iam } = await setup({ shelvingInstanceRoles: ['web-server'] });
    const stranger = cloud.ec2.registerImage({ name: 'stranger', rootSizeGiB: 8, ownerId: '210987654321' });
    const relaunch = (imageId: string, profile?: string) =>
      functionClient(
        cloud,
        iam,
        'shelving',
      )((ec2) =>
        ec2.send(
          runRequest(imageId, {
            ...(profile ? { IamInstanceProfile: { Name: profile } } : {}),
            TagSpecifications: ['instance', 'volume'].map((type) => ({
              ResourceType: type as 'instance' | 'volume',
              Tags: [{ Key: 'warmboot:shelving', Value: 'true' }],
            })),
          }),
        ),
      );

    await relaunch(cloud.imageId);
    await relaunch(cloud.imageId, 'web-server');
    const foreignImage = await rejection(relaunch(stranger));
    const otherProfile = await rejection(relaunch(cloud.imageId, 'admin'));
    const { cloud: unconfigured, iam: unconfiguredIam } = await setup();
    const noProfiles = await rejection(
      functionClient(
        unconfigured,
        unconfiguredIam,
        'shelving',
      )((ec2) =>
        ec2.send(
          runRequest(unconfigured.imageId, {
            IamInstanceProfile: { Name: 'web-server' },
            TagSpecifications: ['instance', 'volume'].map((type) => ({
              ResourceType: type as 'instance' | 'volume',
              Tags: [{ Key: 'warmboot:shelving', Value: 'true' }],
            })),
          }),
        ),
      ),
    );

    expect(foreignImage.message).toContain(
      `ec2:RunInstances on resource: arn:aws:ec2:us-east-1::image/${stranger}`,
    );
    expect(otherProfile.message).toContain(`iam:PassRole on resource: arn:aws:iam::${ACCOUNT}:role/admin`);
    expect(noProfiles.message).toContain(`iam:PassRole on resource: arn:aws:iam::${ACCOUNT}:role/web-server`);
  });

  it('supplies every condition key the synthesized policies use, on the calls where AWS supplies it', async () => {
    const { cloud } = await setup();
    const instanceId = await member(cloud);
    const state = ec2ResourceState(cloud.ec2);
    const env = { partition: 'aws', region: REGION, accountId: ACCOUNT };
    const principal = `arn:aws:sts::${ACCOUNT}:assumed-role/r/s`;
    const tags = (keys: string[]) => keys.map((Key) => ({ Key, Value: 'x' }));
    const policyKeys = new Set<string>();
    for (const variant of [synthesized.base, synthesized.optIn]) {
      for (const documents of Object.values(variant)) {
        for (const statement of documents.flatMap((document) => document.Statement)) {
          for (const keys of Object.values(statement.Condition ?? {})) {
            for (const key of Object.keys(keys)) policyKeys.add(key.replace(/\/.*$/, '/*'));
          }
        }
      }
    }
    const contexts = [
      ...ec2Checks(
        'RunInstances',
        {
          ImageId: cloud.imageId,
          IamInstanceProfile: { Name: 'builder' },
          TagSpecifications: [
            { ResourceType: 'instance', Tags: tags(['warmboot:pools', 'warmboot:pool']) },
            { ResourceType: 'volume', Tags: tags(['warmboot:pools']) },
          ],
        },
        env,
        principal,
        state,
      ),
      // The Attribute/Value form sets ec2:Attribute and ec2:Attribute/Value (instance-attribute-keys.ts).
      ...ec2Checks(
        'ModifyInstanceAttribute',
        { InstanceId: instanceId, Attribute: 'instanceType', Value: 'm7i.xlarge' },
        env,
        principal,
        state,
      ),
      ...ec2Checks(
        'CreateTags',
        { Resources: [instanceId], Tags: tags(['warmboot:warm-images']) },
        env,
        principal,
        state,
      ),
      ...ec2Checks(
        'DeleteTags',
        { Resources: [instanceId], Tags: [{ Key: 'warmboot:pool' }] },
        env,
        principal,
        state,
      ),
      ...ssmChecks(
        'SendCommand',
        { DocumentName: deployedName(INITIALIZE_DOCUMENT), InstanceIds: [instanceId] },
        env,
        principal,
        state,
      ),
      ...eventsChecks(
        'PutEvents',
        { Entries: [{ Source: 'warmboot', DetailType: 'Server Ready' }] },
        env,
        principal,
      ),
      // What EC2 asks KMS as the caller for an encrypted volume (the ebsKmsKeyArns statement).
      ...ebsKeyUseChecks(env, principal, cloud.ec2.kms.createKey(), EBS_KEY_ACTIONS),
    ].map((check) => check.context);
    const supplied = new Set(
      contexts.flatMap((context) => Object.keys(context).map((key) => key.replace(/\/.*$/, '/*'))),
    );

    expect([...policyKeys].filter((key) => !supplied.has(key))).toEqual([]);
    expect(policyKeys.size).toBeGreaterThan(5);
  });
});
