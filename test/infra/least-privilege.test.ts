import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { FUNCTIONS, type FunctionId, REQUEST_REJECTED } from '../../functions/catalog';
import { DOCUMENTS as IMAGE_DOCUMENTS } from '../../functions/image-cache/documents';
import { DOCUMENTS as POOL_DOCUMENTS } from '../../functions/pools/documents';
import { EBS_KEY_ACTIONS } from '../../functions/shared/ebs-encryption';
import { deployedDocumentName } from '../../functions/shared/ssm-document';
import type { TableId } from '../../functions/shared/tables';
import { OPT_IN_TAG, RETIRED_MANAGED_TAG } from '../../functions/shared/tags';
import { shelvingSettingsSchema } from '../../functions/shelving/config';
import { WarmbootBuses } from '../../infra/buses';
import { ShelvingCapability } from '../../infra/capabilities/shelving';
import { WarmbootData } from '../../infra/data';
import { PROJECT_ROOT } from '../../infra/function';
import { cfnText, exampleSettings, resourcesOfType, synthesize } from './synth';

/**
 * Assertions over every IAM policy statement in the synthesized template: the second fence of
 * DESIGN.md's invariants ("warmboot only stops, terminates, modifies, attaches or detaches
 * resources it manages, and its IAM policies say so with conditions").
 */
const { stack, template } = synthesize();

interface Statement {
  readonly Sid?: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Action: string | string[];
  readonly NotAction?: unknown;
  readonly Resource: unknown;
  readonly Condition?: Record<string, Record<string, unknown>>;
}

interface FunctionStatement {
  readonly fn: FunctionId;
  readonly statement: Statement;
  readonly actions: string[];
  readonly resources: string[];
  readonly conditionKeys: string[];
}

const asArray = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

const roleOf = new Map(
  stack.warmboot.functions.map((fn) => [stack.getLogicalId(fn.role.node.defaultChild as never), fn.spec.id]),
);

/**
 * The one policy that is not a function's: the deploy-time custom resource that creates the
 * account-wide test-event registry when it is missing (infra/test-events.ts). It is checked on its
 * own below, and must grant nothing else.
 */
const isEnsureRegistryPolicy = (id: string): boolean => id.startsWith('WarmbootTestEventsEnsureRegistry');
const allPolicies = resourcesOfType(template, 'AWS::IAM::Policy');
const managedPolicies = resourcesOfType(template, 'AWS::IAM::ManagedPolicy');
/**
 * A role's statements are in its inline policy and, where CDK's estimate of that policy passes
 * IAM's size limit, in the managed policies CDK moves the rest to (`<Role>OverflowPolicy<n>`).
 */
const policies = [...allPolicies, ...managedPolicies].filter(([id]) => !isEnsureRegistryPolicy(id));
const statements: FunctionStatement[] = policies.flatMap(([id, policy]) => {
  const properties = policy.Properties as { PolicyDocument: { Statement: Statement[] }; Roles: unknown[] };
  const roles = properties.Roles.map((role) => cfnText(role).replace(/^\$\{|\}$/g, ''));
  const fn = roles.map((role) => roleOf.get(role)).find((candidate) => candidate !== undefined);
  if (!fn) throw new Error(`policy ${id} is attached to no warmboot function role`);
  return properties.PolicyDocument.Statement.map((statement) => ({
    fn,
    statement,
    actions: asArray(statement.Action),
    resources: asArray(statement.Resource).map(cfnText),
    conditionKeys: Object.values(statement.Condition ?? {}).flatMap((block) => Object.keys(block)),
  }));
});
const allows = statements.filter(({ statement }) => statement.Effect === 'Allow');
const granting = (action: string) => allows.filter(({ actions }) => actions.includes(action));
const label = ({ fn, statement }: FunctionStatement) =>
  `${fn} ${statement.Sid ?? JSON.stringify(statement.Action)}`;
/**
 * The CreateTags grants that can tag an existing volume (not one being created), with the tag keys
 * they allow (`allowList`) or refuse (`denyList`).
 */
const retaggingExistingVolumes = () =>
  granting('ec2:CreateTags')
    .filter(
      ({ resources, conditionKeys }) =>
        resources.some((r) => r.includes(':volume/')) && !conditionKeys.includes('ec2:CreateAction'),
    )
    .map((entry) => ({
      entry,
      allowList: entry.statement.Condition?.['ForAllValues:StringEquals']?.['aws:TagKeys'],
      denyList: entry.statement.Condition?.['ForAllValues:StringNotEquals']?.['aws:TagKeys'],
    }));

const DESTRUCTIVE_EC2 = [
  'ec2:StopInstances',
  'ec2:StartInstances',
  'ec2:TerminateInstances',
  'ec2:ModifyInstanceAttribute',
  'ec2:ModifyInstancePlacement',
  'ec2:AttachVolume',
  'ec2:DetachVolume',
  'ec2:DeleteVolume',
  'ec2:DeleteSnapshot',
  'ec2:DeleteTags',
];

/** Actions AWS authorizes only with Resource "*" (Service Authorization Reference). */
const NO_RESOURCE_LEVEL =
  /^(ec2:Describe[A-Za-z]+|xray:Put[A-Za-z]+|ssm:GetCommandInvocation|ssm:ListCommandInvocations|ssm:DescribeInstanceInformation)$/;

const hasManagementTagCondition = (keys: readonly string[]) =>
  keys.some((key) => /^(aws:ResourceTag|ssm:resourceTag)\/warmboot:/.test(key));

describe('least privilege', () => {
  it('finds the policy of every function, and no managed policy but the shelving role’s overflow', () => {
    expect(new Set(statements.map(({ fn }) => fn))).toEqual(new Set(Object.keys(FUNCTIONS)));
    // The shelving role's statements pass CDK's estimate of the inline limit (10,000 characters of
    // the template's JSON, intrinsics included): CDK moves the last ones to a managed policy.
    expect(managedPolicies.map(([id]) => id)).toEqual([
      expect.stringMatching(/^WarmbootShelvingRoleOverflowPolicy1/),
    ]);
    for (const [, role] of resourcesOfType(template, 'AWS::IAM::Role')) {
      expect(role.Properties?.ManagedPolicyArns).toBeUndefined();
    }
  });

  it('lets the deploy-time registry helper create that one registry and write its own logs, nothing else', () => {
    const helper = allPolicies
      .filter(([id]) => isEnsureRegistryPolicy(id))
      .flatMap(
        ([, policy]) =>
          (policy.Properties as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument.Statement,
      )
      .map((statement) => ({
        actions: asArray(statement.Action).sort(),
        resources: asArray(statement.Resource).map(cfnText),
        condition: statement.Condition,
      }))
      .sort((a, b) => a.actions[0]?.localeCompare(b.actions[0] ?? '') ?? 0);

    expect(helper).toEqual([
      {
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [expect.stringMatching(/EnsureRegistryLogs.*\.Arn/)],
        condition: undefined,
      },
      {
        actions: ['schemas:CreateRegistry'],
        resources: [expect.stringMatching(/:schemas:.*:registry\/lambda-testevent-schemas$/)],
        condition: undefined,
      },
    ]);
  });

  it('lets pools and claim read the image parameters a pool defined at run time may name (R11)', () => {
    for (const fn of ['pools', 'claim'] as const) {
      const resources = granting('ssm:GetParameter')
        .filter((statement) => statement.fn === fn)
        .flatMap((statement) => statement.resources);
      expect(resources, fn).toEqual(
        expect.arrayContaining([expect.stringMatching(/:parameter\/warmboot\/images\/\*$/)]),
      );
    }
  });

  it('grants no wildcard action and no NotAction', () => {
    for (const entry of allows) {
      expect(entry.statement.NotAction, label(entry)).toBeUndefined();
      for (const action of entry.actions) expect(action, label(entry)).not.toMatch(/\*/);
    }
  });

  it('uses Resource "*" only for actions that support no resource-level permissions', () => {
    for (const entry of allows.filter(({ resources }) => resources.includes('*'))) {
      for (const action of entry.actions) expect(action, label(entry)).toMatch(NO_RESOURCE_LEVEL);
    }
  });

  it('conditions every destructive EC2 action on a warmboot management tag of the resource', () => {
    for (const action of DESTRUCTIVE_EC2) {
      for (const entry of granting(action)) {
        expect(hasManagementTagCondition(entry.conditionKeys), `${label(entry)} ${action}`).toBe(true);
      }
    }
  });

  it('names in each role only its own capability’s opt-in tag, and never the retired warmboot:managed', () => {
    const own: Partial<Record<FunctionId, string>> = {
      shelving: OPT_IN_TAG.shelving,
      pools: OPT_IN_TAG.pools,
      claim: OPT_IN_TAG.pools,
      imageCache: OPT_IN_TAG.imageCache,
    };
    const optIns: string[] = Object.values(OPT_IN_TAG);
    // The tag keys a statement names: in condition keys (`…Tag/<key>`) and in aws:TagKeys values.
    const tagKeysOf = (statement: Statement): string[] =>
      Object.values(statement.Condition ?? {}).flatMap((block) =>
        Object.entries(block).flatMap(([key, value]) =>
          key === 'aws:TagKeys' ? asArray(value as string | string[]) : [key.replace(/^[^/]*\//, '')],
        ),
      );
    const named = (entry: FunctionStatement) =>
      tagKeysOf(entry.statement).filter((key) => optIns.includes(key));
    for (const entry of allows) {
      expect(tagKeysOf(entry.statement), label(entry)).not.toContain(RETIRED_MANAGED_TAG);
      const foreign = named(entry).filter((key) => key !== own[entry.fn]);
      if (foreign.length === 0) continue;
      // The one exception: shelving opts members of the pools that serve unshelve in to shelving,
      // writing that tag and nothing else (it reads the pools opt-in to find them).
      expect(label(entry)).toBe('shelving AdoptPoolMembers');
    }
    // Every destructive grant of a capability names its own opt-in (or a tag only it writes).
    for (const fn of ['shelving', 'pools', 'claim', 'imageCache'] as const) {
      const destructive = allows.filter(
        (entry) => entry.fn === fn && entry.actions.some((action) => DESTRUCTIVE_EC2.includes(action)),
      );
      expect(
        destructive.some((entry) => named(entry).includes(own[fn] ?? '')),
        fn,
      ).toBe(true);
    }
  });

  it('allows fast snapshot restore changes only to fastRestore, only on snapshots (documented exception)', () => {
    // Snapshots behind public or shared AMIs belong to other accounts and cannot carry warmboot tags;
    // FSR changes billing and volume initialization, never data (infra/capabilities/image-cache.ts).
    for (const action of ['ec2:EnableFastSnapshotRestores', 'ec2:DisableFastSnapshotRestores']) {
      const entries = granting(action);
      expect(
        entries.map(({ fn }) => fn),
        action,
      ).toEqual(['fastRestore']);
      for (const entry of entries) {
        for (const resource of entry.resources) expect(resource).toMatch(/:ec2:.*::snapshot\/\*$/);
        // Only snapshots this account owns or fastRestore.allowedSnapshotOwners (security review H4).
        expect(entry.conditionKeys, label(entry)).toContain('ec2:Owner');
      }
    }
  });

  it('lets the image cache create volumes only from snapshots of allowed owners tagged with an image (H2)', () => {
    const fromSnapshots = granting('ec2:CreateVolume').filter((entry) =>
      entry.resources.some((resource) => /::snapshot\//.test(resource)),
    );
    expect(fromSnapshots.map(({ fn }) => fn)).toEqual(['imageCache']);
    for (const entry of fromSnapshots) {
      expect(entry.conditionKeys, label(entry)).toEqual(
        expect.arrayContaining(['ec2:Owner', 'aws:ResourceTag/warmboot:image']),
      );
    }
  });

  it('lets the image cache detach and delete only volumes carrying warmboot:image (M4)', () => {
    for (const action of ['ec2:DetachVolume', 'ec2:DeleteVolume']) {
      const onVolumes = granting(action).filter(
        (entry) =>
          entry.fn === 'imageCache' && entry.resources.some((resource) => /:volume\//.test(resource)),
      );
      expect(onVolumes.length, action).toBeGreaterThan(0);
      for (const entry of onVolumes)
        expect(entry.conditionKeys, `${label(entry)} ${action}`).toContain('aws:ResourceTag/warmboot:image');
    }
  });

  it('lets CreateTags touch existing resources only when they are managed, or write only warmboot keys', () => {
    for (const entry of granting('ec2:CreateTags')) {
      const atCreation = entry.conditionKeys.includes('ec2:CreateAction');
      const onManaged = hasManagementTagCondition(entry.conditionKeys);
      const keys = asArray(
        entry.statement.Condition?.['ForAllValues:StringEquals']?.['aws:TagKeys'] as string[],
      );
      const onlyWarmbootKeys =
        keys.length > 0 &&
        keys.every((key) => key.startsWith('warmboot:')) &&
        !keys.includes('warmboot:replacement-root');
      expect(atCreation || onManaged || onlyWarmbootKeys, label(entry)).toBe(true);
    }
  });

  it('never lets anyone add the replacement-root tag to an existing volume', () => {
    for (const { entry, allowList, denyList } of retaggingExistingVolumes()) {
      const fenced =
        (allowList !== undefined && !asArray(allowList as string[]).includes('warmboot:replacement-root')) ||
        asArray(denyList as string[]).includes('warmboot:replacement-root');
      expect(fenced, label(entry)).toBe(true);
    }
  });

  it('never lets anyone move a volume to a shelve record once another record claimed it (H6)', () => {
    // IAM cannot limit a claim to the volumes of managed instances (no attachment condition key on
    // a volume, infra/capabilities/shelving.ts), but it can keep a claimed volume claimed: the
    // deletion fence (warmboot:shelved) can only be written on a volume that has none yet.
    for (const { entry, allowList, denyList } of retaggingExistingVolumes()) {
      const writesShelved =
        allowList !== undefined
          ? asArray(allowList as string[]).includes('warmboot:shelved')
          : !asArray(denyList as string[]).includes('warmboot:shelved');
      if (!writesShelved) continue;
      expect(entry.statement.Condition?.Null?.['aws:ResourceTag/warmboot:shelved'], label(entry)).toBe(
        'true',
      );
      expect(entry.statement.Condition?.StringLike?.['aws:RequestTag/warmboot:shelved'], label(entry)).toBe(
        'sh-*',
      );
    }
  });

  it('conditions every create on the tags of the request (or the create action for CreateTags)', () => {
    const created: Record<string, RegExp> = {
      'ec2:RunInstances': /:(instance|volume)\//,
      'ec2:CreateVolume': /:volume\//,
      'ec2:CreateSnapshot': /:snapshot\//,
      'ec2:CreateSnapshots': /:snapshot\//,
    };
    for (const [action, createdResource] of Object.entries(created)) {
      for (const entry of granting(action).filter(({ resources }) =>
        resources.some((r) => createdResource.test(r)),
      )) {
        expect(
          entry.conditionKeys.some((key) => key.startsWith('aws:RequestTag/warmboot:')),
          `${label(entry)} ${action}`,
        ).toBe(true);
      }
    }
  });

  it('associates Elastic IPs only with managed instances, and only shelving does (W2)', () => {
    const entries = granting('ec2:AssociateAddress');
    expect(new Set(entries.map(({ fn }) => fn))).toEqual(new Set(['shelving']));
    for (const entry of entries) {
      const onInstances = entry.resources.every((resource) => resource.includes(':instance/'));
      const onAddresses = entry.resources.every((resource) => resource.includes(':elastic-ip/'));
      expect(
        onAddresses || (onInstances && hasManagementTagCondition(entry.conditionKeys)),
        label(entry),
      ).toBe(true);
    }
    for (const entry of granting('ec2:DescribeInstanceAttribute').filter(({ fn }) => fn === 'shelving')) {
      expect(hasManagementTagCondition(entry.conditionKeys), label(entry)).toBe(true);
    }
  });

  it('never deletes a volume that holds a shelved instance’s data (IAM is the second fence)', () => {
    const deletes = granting('ec2:DeleteVolume');
    expect(deletes.length).toBeGreaterThan(0);
    for (const entry of deletes) {
      const condition = entry.statement.Condition ?? {};
      const onlyReplacementRoots =
        condition.StringEquals?.['aws:ResourceTag/warmboot:replacement-root'] === 'true';
      const neverShelved = condition.Null?.['aws:ResourceTag/warmboot:shelved'] === 'true';
      expect(onlyReplacementRoots || neverShelved, label(entry)).toBe(true);
    }
    expect(granting('ec2:DeleteSnapshot')).toEqual([]);
  });

  it('sends commands only with warmboot documents, and only to instances carrying management tags', () => {
    const documentArns = [...IMAGE_DOCUMENTS, ...POOL_DOCUMENTS].map(
      (document) => `:document/${deployedDocumentName(document)}`,
    );
    for (const entry of granting('ssm:SendCommand')) {
      for (const resource of entry.resources) {
        if (resource.includes(':document/')) {
          expect(
            documentArns.some((suffix) => resource.endsWith(suffix)),
            resource,
          ).toBe(true);
        } else {
          expect(resource, label(entry)).toMatch(/:ec2:.*:instance\/\*$/);
          expect(hasManagementTagCondition(entry.conditionKeys), label(entry)).toBe(true);
        }
      }
    }
  });

  it('names specific tables (and their GSIs) in every DynamoDB statement, read-only where the function only reads', () => {
    const expected: Record<FunctionId, Partial<Record<TableId, 'read' | 'readUpdate' | 'readWrite'>>> = {
      // Every function that calls EC2 reserves on the account budget (ec2Budget) with UpdateItem only; placement does not.
      popularity: { popularity: 'readWrite', ec2Budget: 'readUpdate', idempotency: 'readWrite' },
      imageCache: {
        imageCache: 'readWrite',
        popularity: 'read',
        ec2Budget: 'readUpdate',
        idempotency: 'readWrite',
      },
      fastRestore: {
        imageCache: 'readWrite',
        popularity: 'read',
        ec2Budget: 'readUpdate',
        idempotency: 'readWrite',
      },
      // Placement adds to its advised-weight counters: UpdateItem, never Put, Delete or BatchWrite.
      placement: { imageCache: 'readUpdate', idempotency: 'readWrite' },
      pools: { pools: 'readWrite', popularity: 'read', ec2Budget: 'readUpdate', idempotency: 'readWrite' },
      claim: {
        pools: 'readWrite',
        popularity: 'readWrite',
        ec2Budget: 'readUpdate',
        idempotency: 'readWrite',
      },
      shelving: { shelves: 'readWrite', ec2Budget: 'readUpdate', idempotency: 'readWrite' },
    };
    const tableIds = new Map(
      (Object.entries(stack.warmboot.data.tables) as [TableId, never][]).map(([id, table]) => [
        stack.getLogicalId((table as { node: { defaultChild: never } }).node.defaultChild),
        id,
      ]),
    );
    const observed: Record<string, Record<string, string>> = {};
    for (const entry of allows.filter(({ actions }) =>
      actions.some((action) => action.startsWith('dynamodb:')),
    )) {
      const tables = new Set<TableId>();
      for (const resource of entry.resources) {
        const match = /^\$\{([A-Za-z0-9]+)\.Arn\}(\/index\/gsi[12])?$/.exec(resource);
        expect(match, `${label(entry)} ${resource}`).not.toBeNull();
        const table = tableIds.get(match?.[1] ?? '');
        expect(table, resource).toBeDefined();
        if (table) tables.add(table);
      }
      const writes = entry.actions.filter((action) => /dynamodb:(Put|Update|Delete|BatchWrite)/.test(action));
      const access =
        writes.length === 0 ? 'read' : writes.join() === 'dynamodb:UpdateItem' ? 'readUpdate' : 'readWrite';
      for (const table of tables) {
        observed[entry.fn] = { ...observed[entry.fn], [table]: access };
      }
    }
    expect(observed).toEqual(expected);
  });

  it('publishes only on the facts bus, only as warmboot.fact, only the detail-types the catalog lists (C1, H3)', () => {
    const publishers = granting('events:PutEvents');
    // Every function publishes its facts (functions/shared/adapters/facts.ts), in one statement.
    expect(publishers.map(({ fn }) => fn).sort()).toEqual(Object.keys(FUNCTIONS).sort());
    for (const entry of publishers) {
      const set = entry.statement.Condition?.['ForAllValues:StringEquals'];
      expect(set?.['events:source'], label(entry)).toEqual(['warmboot.fact']);
      expect(set?.['events:detail-type'], label(entry)).toEqual(
        [...new Set([...FUNCTIONS[entry.fn].publishes, REQUEST_REJECTED])].sort(),
      );
      expect(entry.statement.Condition?.Null, label(entry)).toEqual({
        'events:source': 'false',
        'events:detail-type': 'false',
      });
      expect(entry.resources, label(entry)).toEqual([
        `arn:\${AWS::Partition}:events:\${AWS::Region}:\${AWS::AccountId}:event-bus/warmboot-facts`,
      ]);
    }
    // The review's example: the read-only placement role cannot emit a destructive request.
    const placement = publishers.find(({ fn }) => fn === 'placement');
    expect(
      placement?.statement.Condition?.['ForAllValues:StringEquals']?.['events:detail-type'],
    ).not.toContain('Delete Shelved Record');
  });

  it('passes roles only to EC2', () => {
    for (const entry of granting('iam:PassRole')) {
      expect(entry.statement.Condition?.StringEquals?.['iam:PassedToService'], label(entry)).toBe(
        'ec2.amazonaws.com',
      );
    }
  });

  it('lets pools and claim launch only AMIs of the allowed owners, and launch templates only of this account (C2)', () => {
    for (const fn of ['pools', 'claim'] as const) {
      const launches = granting('ec2:RunInstances').filter((entry) => entry.fn === fn);
      const onImages = launches.filter(({ resources }) => resources.some((r) => r.includes(':image/')));
      expect(
        onImages.map(({ statement }) => statement.Sid),
        fn,
      ).toEqual(['LaunchImagesOfAllowedOwners']);
      for (const entry of onImages) {
        expect(entry.resources, label(entry)).toEqual([
          `arn:\${AWS::Partition}:ec2:\${AWS::Region}::image/*`,
        ]);
        // The default poolPolicy: this account's AMIs and AWS's public ones.
        expect(Object.keys(entry.statement.Condition ?? {}), label(entry)).toEqual(['StringEquals']);
        expect(
          asArray(entry.statement.Condition?.StringEquals?.['ec2:Owner'] as unknown[]).map(cfnText),
          label(entry),
        ).toEqual([`\${AWS::AccountId}`, 'amazon']);
      }
      const templates = launches.flatMap(({ resources }) =>
        resources.filter((r) => r.includes('launch-template')),
      );
      expect(templates, fn).toEqual([
        `arn:\${AWS::Partition}:ec2:\${AWS::Region}:\${AWS::AccountId}:launch-template/*`,
      ]);
    }
  });

  it('lets pools and claim pass only the roles of the configured instance profiles, only to EC2 (C2)', () => {
    // examples/warmboot.json: two pools, profiles warmboot-builder and warmboot-desktop (role = profile name).
    for (const fn of ['pools', 'claim'] as const) {
      const passes = granting('iam:PassRole').filter((entry) => entry.fn === fn);
      expect(
        passes.map(({ statement }) => statement.Sid),
        fn,
      ).toEqual(['PassConfiguredInstanceRoles']);
      expect(passes.flatMap(({ resources }) => resources).sort(), fn).toEqual([
        `arn:\${AWS::Partition}:iam::\${AWS::AccountId}:role/warmboot-builder`,
        `arn:\${AWS::Partition}:iam::\${AWS::AccountId}:role/warmboot-desktop`,
      ]);
    }
  });

  it('follows poolPolicy: named owners in ec2:Owner, extra profiles’ roles in PassRole, and no PassRole without profiles', () => {
    const statementsOf = (synthesized: ReturnType<typeof synthesize>, fn: FunctionId) => {
      const roleIds = new Set(
        synthesized.stack.warmboot.functions
          .filter((candidate) => candidate.spec.id === fn)
          .map((candidate) => synthesized.stack.getLogicalId(candidate.role.node.defaultChild as never)),
      );
      return resourcesOfType(synthesized.template, 'AWS::IAM::Policy')
        .filter(([, policy]) =>
          (policy.Properties as { Roles: unknown[] }).Roles.some((role) =>
            roleIds.has(cfnText(role).replace(/^\$\{|\}$/g, '')),
          ),
        )
        .flatMap(
          ([, policy]) =>
            (policy.Properties as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument.Statement,
        );
    };
    const settings = exampleSettings() as { pools: Record<string, unknown>[] };
    const configured = synthesize({
      warmboot: {
        ...settings,
        pools: settings.pools.map((pool, index) =>
          index === 0 ? { ...pool, instanceRole: 'pools/builder-role' } : pool,
        ),
        poolPolicy: {
          allowedImageOwners: ['self', '123456789012', 'aws-marketplace'],
          instanceProfiles: [{ name: 'warmboot-extra', role: 'warmboot-extra-role' }],
        },
      },
    });
    // No pool and no poolPolicy profile: no profile is configured at all.
    const withoutProfiles = synthesize({ warmboot: { ...settings, pools: [] } });

    for (const fn of ['pools', 'claim'] as const) {
      const statements = statementsOf(configured, fn);
      expect(
        statements.find((statement) => statement.Sid === 'LaunchImagesOfAllowedOwners')?.Condition,
        fn,
      ).toEqual({
        StringEquals: { 'ec2:Owner': [{ Ref: 'AWS::AccountId' }, '123456789012', 'aws-marketplace'] },
      });
      const passed = asArray(
        statements.find((statement) => statement.Sid === 'PassConfiguredInstanceRoles')?.Resource,
      )
        .map(cfnText)
        .sort();
      expect(passed, fn).toEqual([
        `arn:\${AWS::Partition}:iam::\${AWS::AccountId}:role/pools/builder-role`,
        `arn:\${AWS::Partition}:iam::\${AWS::AccountId}:role/warmboot-desktop`,
        `arn:\${AWS::Partition}:iam::\${AWS::AccountId}:role/warmboot-extra-role`,
      ]);
      expect(
        statementsOf(withoutProfiles, fn).filter((statement) =>
          asArray(statement.Action).includes('iam:PassRole'),
        ),
        fn,
      ).toEqual([]);
    }
  });

  it('lets each role change only the instance attributes its capability changes (ModifyInstanceAttribute)', () => {
    const onInstances = granting('ec2:ModifyInstanceAttribute').filter(({ resources }) =>
      resources.some((resource) => resource.includes(':instance/')),
    );
    expect(onInstances.map(label).sort()).toEqual([
      'claim ResizePoolMembers',
      'pools ResizePoolMembers',
      'shelving RestoreInstanceAttributes',
    ]);
    for (const entry of onInstances) {
      // Alone in its statement: an action beside it would not be limited to the attributes.
      expect(entry.actions, label(entry)).toEqual(['ec2:ModifyInstanceAttribute']);
      expect(hasManagementTagCondition(entry.conditionKeys), label(entry)).toBe(true);
      const condition = entry.statement.Condition ?? {};
      if (entry.fn !== 'shelving') {
        // The instance type, which EC2 sets as ec2:Attribute/InstanceType, and nothing else.
        expect(condition.Null?.['ec2:Attribute/InstanceType'], label(entry)).toBe('false');
        continue;
      }
      // DeleteOnTermination, user data and protection: every other attribute that carries a value
      // (and the Attribute/Value form) absent, and a named attribute one of these four.
      expect(
        Object.entries(condition.Null ?? {})
          .filter(([key]) => key.startsWith('ec2:Attribute/'))
          .sort(),
        label(entry),
      ).toEqual(
        [
          'EbsOptimized',
          'EnaSupport',
          'InstanceInitiatedShutdownBehavior',
          'InstanceType',
          'Kernel',
          'Ramdisk',
          'SourceDestCheck',
          'SriovNetSupport',
          'Value',
        ].map((attribute) => [`ec2:Attribute/${attribute}`, 'true']),
      );
      expect(condition.StringEqualsIgnoreCaseIfExists?.['ec2:Attribute'], label(entry)).toEqual([
        'blockDeviceMapping',
        'disableApiStop',
        'disableApiTermination',
        'userData',
      ]);
    }
  });

  it('keeps EC2 mutations away from the functions that only read or advise', () => {
    const mutating = /^ec2:(?!Describe)|^ssm:SendCommand$|^iam:PassRole$/;
    for (const fn of ['popularity', 'placement'] as const) {
      const actions = allows.filter((entry) => entry.fn === fn).flatMap((entry) => entry.actions);
      expect(
        actions.filter((action) => mutating.test(action)),
        fn,
      ).toEqual([]);
    }
  });

  it('grants no KMS key to any role unless the deployment names EBS keys (ebsKmsKeyArns)', () => {
    expect(allows.filter(({ actions }) => actions.some((action) => action.startsWith('kms:')))).toEqual([]);
  });

  it('lets the roles that launch, start, attach or create volumes use only the named EBS keys, only through EC2 (R4)', () => {
    const key = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    // The example settings (a host group and two pools) with a key, as an operator deploys them.
    const keyed = synthesize({ warmboot: { ...exampleSettings(), ebsKmsKeyArns: [key] } });
    const roles = new Map(
      keyed.stack.warmboot.functions.map((fn) => [
        keyed.stack.getLogicalId(fn.role.node.defaultChild as never),
        fn.spec.id,
      ]),
    );
    // A role whose inline policy would pass IAM's size limit gets CDK's overflow managed policy.
    const keyStatements = [
      ...resourcesOfType(keyed.template, 'AWS::IAM::Policy'),
      ...resourcesOfType(keyed.template, 'AWS::IAM::ManagedPolicy'),
    ].flatMap(([, policy]) => {
      const properties = policy.Properties as {
        PolicyDocument: { Statement: Statement[] };
        Roles: unknown[];
      };
      const fn = properties.Roles.map((role) => roles.get(cfnText(role).replace(/^\$\{|\}$/g, ''))).find(
        (id) => id !== undefined,
      );
      return properties.PolicyDocument.Statement.filter((statement) =>
        asArray(statement.Action).some((action) => action.startsWith('kms:')),
      ).map((statement) => ({ fn, statement }));
    });

    expect([...new Set(keyStatements.map(({ fn }) => fn))].sort()).toEqual([
      'claim',
      'imageCache',
      'pools',
      'shelving',
    ]);
    for (const { fn, statement } of keyStatements) {
      const label = `${fn} ${statement.Sid}`;
      expect(asArray(statement.Resource as string[]), label).toEqual([key]);
      expect(asArray(statement.Action).sort(), label).toEqual([...EBS_KEY_ACTIONS].sort());
      expect(cfnText(statement.Condition?.StringEquals?.['kms:ViaService']), label).toMatch(
        /^ec2\.\$\{AWS::Region\}\.amazonaws\.com$/,
      );
      // KMS sets it on every CreateGrant (and on no other action), so IfExists binds the grant only.
      expect(statement.Condition?.BoolIfExists?.['kms:GrantIsForAWSResource'], label).toBe('true');
    }
    expect(new AwsSolutionsChecks().validateScope(keyed.app).violations.map((v) => v.ruleName)).toEqual([]);
  });

  it('deletes a shelved record’s data only when the operator opted in, and then only shelved resources', () => {
    const optedIn = policyStatements(shelvingTemplate({}, true));
    const deleting = optedIn.filter((statement) =>
      asArray(statement.Action).some(
        (action) => action === 'ec2:DeleteVolume' || action === 'ec2:DeleteSnapshot',
      ),
    );

    expect(deleting.map((statement) => statement.Sid).sort()).toEqual([
      'DeleteReplacementRoots',
      'DeleteShelvedData',
      'DeleteShelvedSnapshots',
    ]);
    for (const statement of deleting.filter((candidate) => candidate.Sid !== 'DeleteReplacementRoots')) {
      expect(statement.Condition?.Null?.['aws:ResourceTag/warmboot:shelved'], statement.Sid).toBe('false');
    }
    // A replacement's fresh root that became retained data keeps replacement-root=true: while it is
    // shelved, only the opted-in, confirmed deletion may delete it (H6).
    const replacementRoots = deleting.find((statement) => statement.Sid === 'DeleteReplacementRoots');
    expect(replacementRoots?.Condition?.StringEquals?.['aws:ResourceTag/warmboot:replacement-root']).toBe(
      'true',
    );
    expect(replacementRoots?.Condition?.Null?.['aws:ResourceTag/warmboot:shelved']).toBe('true');
  });
});

/** The shelving capability alone in a scratch stack, with these settings: its template. */
const shelvingTemplate = (shelving: Record<string, unknown>, allowShelvedDataDeletion = false): Template => {
  const scratch = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Scratch');
  new ShelvingCapability(scratch, 'Shelving', {
    data: new WarmbootData(scratch, 'Data'),
    buses: new WarmbootBuses(scratch, 'Buses', {
      operators: [],
      requestBus: { name: 'warmboot-requests', existing: false },
      factsBusName: 'warmboot-facts',
    }),
    shelving: shelvingSettingsSchema.parse(shelving),
    allowShelvedDataDeletion,
  });
  return Template.fromStack(scratch);
};

const policyStatements = (template: Template): Statement[] =>
  [
    ...Object.values(template.findResources('AWS::IAM::Policy')),
    ...Object.values(template.findResources('AWS::IAM::ManagedPolicy')),
  ].flatMap(
    (policy) =>
      (policy.Properties as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument.Statement,
  );

describe('shelving relaunches only what its settings allow (issue 15)', () => {
  const launchStatements = (shelving: Record<string, unknown>) => {
    const statements = policyStatements(shelvingTemplate(shelving));
    return {
      passRole: statements.filter((statement) => asArray(statement.Action).includes('iam:PassRole')),
      images: statements.filter(
        (statement) =>
          asArray(statement.Action).includes('ec2:RunInstances') &&
          asArray(statement.Resource).some((resource) => cfnText(resource).includes(':image/')),
      ),
    };
  };

  it('passes no role and launches only this account’s and AWS’s AMIs by default', () => {
    const { passRole, images } = launchStatements({});

    expect(passRole).toEqual([]);
    expect(images.map((statement) => statement.Sid)).toEqual(['LaunchImagesOfAllowedOwners']);
    expect(images[0]?.Condition).toEqual({
      StringEquals: { 'ec2:Owner': [{ Ref: 'AWS::AccountId' }, 'amazon'] },
    });
  });

  it('passes only the roles of shelving.instanceProfiles, only to EC2, and launches only allowedImageOwners’ AMIs', () => {
    const { passRole, images } = launchStatements({
      instanceProfiles: [{ name: 'web-server' }, { name: 'build', role: 'ci/build-role' }],
      allowedImageOwners: ['self', '123456789012'],
    });

    expect(passRole.map((statement) => statement.Sid)).toEqual(['PassConfiguredInstanceRoles']);
    expect(asArray(passRole[0]?.Resource).map(cfnText).sort()).toEqual([
      `arn:\${AWS::Partition}:iam::\${AWS::AccountId}:role/ci/build-role`,
      `arn:\${AWS::Partition}:iam::\${AWS::AccountId}:role/web-server`,
    ]);
    expect(passRole[0]?.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } });
    expect(images[0]?.Condition).toEqual({
      StringEquals: { 'ec2:Owner': [{ Ref: 'AWS::AccountId' }, '123456789012'] },
    });
  });
});

describe('pools serve unshelve only where the deployment says so', () => {
  const shelvingRole = (shelving: Record<string, unknown>) => {
    const template = shelvingTemplate(shelving);
    const statements = policyStatements(template);
    const [fn] = Object.values(template.findResources('AWS::Lambda::Function'));
    const properties = fn?.Properties as
      | { Environment?: { Variables?: Record<string, unknown> } }
      | undefined;
    const environment = properties?.Environment?.Variables;
    return { sids: statements.map((statement) => statement.Sid), environment };
  };

  it('grants the pools table and names it only when unshelveFromPools names pools', () => {
    const plain = shelvingRole({});
    expect(plain.sids).not.toContain('PoolsTableReadWrite');
    expect(plain.environment).not.toHaveProperty('POOLS_TABLE');

    const served = shelvingRole({ keepPrivateIp: false, unshelveFromPools: ['web-hot'] });
    expect(served.sids).toContain('PoolsTableReadWrite');
    expect(served.environment).toHaveProperty('POOLS_TABLE');
  });

  it('lets shelving adopt pool members only when pools serve unshelve, only theirs, only its opt-in', () => {
    const adopt = (unshelveFromPools: string[]) =>
      policyStatements(shelvingTemplate({ keepPrivateIp: false, unshelveFromPools })).find(
        (statement) => statement.Sid === 'AdoptPoolMembers',
      );
    expect(adopt([])).toBeUndefined();
    expect(adopt(['web-hot'])?.Action).toBe('ec2:CreateTags');
    expect(adopt(['web-hot'])?.Condition).toEqual({
      StringEquals: {
        [`aws:ResourceTag/${OPT_IN_TAG.pools}`]: 'true',
        'aws:ResourceTag/warmboot:pool': ['web-hot'],
      },
      'ForAllValues:StringEquals': { 'aws:TagKeys': [OPT_IN_TAG.shelving] },
    });
  });
});

/**
 * The other direction: a permission missing from a role only shows up in a real account, as an
 * AccessDenied in the middle of a saga. So every EC2/SSM command a function's code sends (found
 * in its source folders) must be granted to that function's role.
 */
describe('every EC2 and SSM call in a function’s code is granted to its role', () => {
  const SOURCE_FOLDERS: Record<FunctionId, readonly string[]> = {
    popularity: ['functions/popularity'],
    imageCache: ['functions/image-cache'],
    fastRestore: ['functions/fast-restore'],
    placement: ['functions/placement'],
    pools: ['functions/pools'],
    claim: ['functions/claim', 'functions/pools/adapters'],
    shelving: ['functions/shelving'],
  };
  const sources = (folder: string): string[] =>
    readdirSync(join(PROJECT_ROOT, folder), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts'))
      .map((file) => readFileSync(join(PROJECT_ROOT, folder, file), 'utf8'));
  const SDK_IMPORT = /import\s*\{([^}]*)\}\s*from\s*'@aws-sdk\/client-(ec2|ssm)'/g;
  const callsOf = (fn: FunctionId): string[] => {
    const calls = new Set<string>();
    for (const text of SOURCE_FOLDERS[fn].flatMap(sources)) {
      for (const [, names = '', service] of [...text.matchAll(SDK_IMPORT)]) {
        for (const name of names.split(',').map((entry) => entry.trim())) {
          if (/^[A-Z]\w+Command$/.test(name)) calls.add(`${service}:${name.replace(/Command$/, '')}`);
        }
      }
    }
    return [...calls].sort();
  };

  /** Granted only when the operator opts in with `allowShelvedDataDeletion` (tested above). */
  const OPT_IN: Partial<Record<FunctionId, readonly string[]>> = { shelving: ['ec2:DeleteSnapshot'] };

  it('finds the calls it checks', () => {
    expect(callsOf('claim')).toEqual(expect.arrayContaining(['ec2:RunInstances', 'ssm:SendCommand']));
    expect(callsOf('shelving')).toEqual(expect.arrayContaining(['ec2:AttachVolume', 'ec2:DetachVolume']));
  });

  for (const fn of Object.keys(FUNCTIONS) as FunctionId[]) {
    it(`${fn}`, () => {
      const granted = new Set(allows.filter((entry) => entry.fn === fn).flatMap(({ actions }) => actions));

      const missing = callsOf(fn).filter((action) => !granted.has(action) && !OPT_IN[fn]?.includes(action));

      expect(missing).toEqual([]);
    });
  }
});
