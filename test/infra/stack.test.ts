import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import {
  deployedPattern,
  FUNCTIONS,
  type FunctionId,
  patternBus,
  REQUEST_TYPES,
  RULE_DELIVERY_ALIAS,
  TENANT_SOURCE_PREFIX,
  WARMBOOT,
  WARMBOOT_FACT,
} from '../../functions/catalog';
import { DOCUMENTS as IMAGE_DOCUMENTS } from '../../functions/image-cache/documents';
import { DOCUMENTS as POOL_DOCUMENTS } from '../../functions/pools/documents';
import type { EventPattern } from '../../functions/shared/event-pattern';
import { REQUEST_CALLERS_ENV } from '../../functions/shared/function-url';
import { deployedDocumentName, documentContent } from '../../functions/shared/ssm-document';
import { TABLES, tableEnvVar } from '../../functions/shared/tables';
import { factsBusPolicy, requestBusPolicy } from '../../infra/bus-policies';
import { loadWarmbootContext } from '../../infra/config';
import { WarmbootData } from '../../infra/data';
import { PROJECT_ROOT } from '../../infra/function';
import { requestCallersOf, requestUrlOutputId, servesRequests } from '../../infra/request-urls';
import { readSampleEvents, samplesFor, TEST_EVENT_REGISTRY } from '../../infra/test-events';
import { Warmboot } from '../../infra/warmboot';
import { cfnText, exampleSettings, resourcesOfType, synthesize } from './synth';

const { app, stack, template: json } = synthesize();
const template = Template.fromJSON(json);
const settings = loadWarmbootContext(exampleSettings());
const functionIds = Object.keys(FUNCTIONS) as FunctionId[];
const warmbootFunctions = stack.warmboot.functions;

/** Logical id of the Lambda function of one catalog entry. */
const functionLogicalId = (id: FunctionId): string => {
  const fn = warmbootFunctions.find((candidate) => candidate.spec.id === id);
  if (!fn) throw new Error(`no function ${id}`);
  return stack.getLogicalId(fn.function.node.defaultChild as never);
};
/** CloudFormation properties of the Lambda function of one catalog entry. */
const functionProperties = <T = Record<string, unknown>>(id: FunctionId): T => {
  const resource = json.Resources[functionLogicalId(id)];
  if (!resource?.Properties) throw new Error(`no AWS::Lambda::Function for ${id}`);
  return resource.Properties as T;
};
/** Logical id of the rule alias of one catalog entry (what every rule targets). */
const aliasLogicalId = (id: FunctionId): string => {
  const fn = warmbootFunctions.find((candidate) => candidate.spec.id === id);
  if (!fn) throw new Error(`no function ${id}`);
  return stack.getLogicalId(fn.ruleAlias.node.defaultChild as never);
};
const targetsFunction = (target: Record<string, unknown>, id: FunctionId): boolean =>
  cfnText(target.Arn) === `\${${aliasLogicalId(id)}}`;
/** Logical id of the event queue of one catalog entry (what its batched patterns' rules target). */
const eventQueueLogicalId = (id: FunctionId): string | undefined => {
  const queue = warmbootFunctions.find((candidate) => candidate.spec.id === id)?.eventQueue;
  return queue ? stack.getLogicalId(queue.node.defaultChild as never) : undefined;
};
const targetsEventQueue = (target: Record<string, unknown>, id: FunctionId): boolean =>
  eventQueueLogicalId(id) !== undefined && cfnText(target.Arn) === `\${${eventQueueLogicalId(id)}.Arn}`;
/** The bus a synthesized rule sits on: the default bus when the rule names none. */
const busOfRule = (rule: Record<string, unknown>): string =>
  rule.EventBusName === undefined ? 'default' : cfnText(rule.EventBusName);
const busLogicalId = (bus: 'requestBus' | 'factsBus'): string =>
  stack.getLogicalId(stack.warmboot.buses[bus].node.defaultChild as never);
/** A catalog pattern as the template renders it: pinned to the stack's own account. */
const renderedPattern = (pattern: EventPattern): unknown =>
  JSON.parse(
    JSON.stringify(deployedPattern(pattern, '__ACCOUNT__')).replace(
      '"__ACCOUNT__"',
      '{"Ref":"AWS::AccountId"}',
    ),
  );

/** A bare stack to build a Warmboot construct in, without bundling (the construct is the subject). */
const scratchStack = (): Stack =>
  new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Scratch');

describe('Warmboot construct', () => {
  it('validates its props with the functions’ schemas, naming the prop path', () => {
    expect(
      () =>
        new Warmboot(scratchStack(), 'Warmboot', {
          hostGroups: [{ name: 'build-linux', cacheBytes: -1, cacheDirectory: '/cache' }],
        }),
    ).toThrow(/props\.hostGroups\[0\]\.cacheBytes/);
  });

  it('by default creates a request bus nobody may put events on, and a facts bus only its roles may write', () => {
    const stack = scratchStack();
    new Warmboot(stack, 'Warmboot');
    const buses = Template.fromStack(stack).findResources('AWS::Events::EventBus');
    const byName = new Map(
      Object.values(buses).map((bus) => [bus.Properties?.Name as string, bus.Properties?.Policy]),
    );

    expect([...byName.keys()].sort()).toEqual(['warmboot-facts', 'warmboot-requests']);
    // No operators: one statement, an unconditional Deny of every PutEvents.
    expect(byName.get('warmboot-requests')).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'OnlyOperators',
          Effect: 'Deny',
          Principal: '*',
          Action: 'events:PutEvents',
          Resource: expect.anything(),
        },
      ],
    });
    const facts = byName.get('warmboot-facts') as { Statement: Record<string, unknown>[] };
    expect(facts.Statement.map((statement) => [statement.Sid, statement.Effect])).toEqual([
      ['OnlyWarmbootRoles', 'Deny'],
      ['OnlyFacts', 'Deny'],
    ]);
  });

  it('adds its policy statements to an existing request bus, and rules only warmboot requests there', () => {
    const stack = scratchStack();
    const operators = [
      { principal: 'arn:aws:iam::123456789012:role/requester', requests: ['Request Server'], tenants: ['*'] },
      {
        principal: 'arn:aws:iam::123456789012:role/team-a',
        requests: ['Shelve Instances'],
        tenants: ['team-a'],
      },
    ];
    new Warmboot(stack, 'Warmboot', { requestBus: { name: 'team-requests', existing: true }, operators });
    const template = Template.fromStack(stack);
    const created = Object.values(template.findResources('AWS::Events::EventBus')).map(
      (bus) => bus.Properties?.Name,
    );
    const statements = Object.values(template.findResources('AWS::Events::EventBusPolicy')).map(
      (resource) =>
        resource.Properties as { EventBusName: string; Statement: { Sid: string; Condition?: unknown } },
    );
    const rules = Object.values(template.findResources('AWS::Events::Rule'))
      .map((resource) => resource.Properties as { EventBusName?: string; EventPattern?: EventPattern })
      .filter((rule) => rule.EventPattern !== undefined);

    expect(created).toEqual(['warmboot-facts']);
    expect(statements.map((statement) => statement.Statement.Sid).sort()).toEqual([
      'OnlyOperators',
      'Operator0OnlyItsRequests',
      'Operator0Requests',
      'Operator1OnlyItsRequests',
      'Operator1OnlyItsTenants',
      'Operator1Requests',
    ]);
    for (const statement of statements) expect(statement.EventBusName).toBe('team-requests');
    const statement = (sid: string) =>
      statements.find((candidate) => candidate.Statement.Sid === sid)?.Statement;
    // Scoped to warmboot's request sources: the bus's other publishers keep what their statements give.
    expect(statement('OnlyOperators')).toMatchObject({
      Effect: 'Deny',
      Condition: { 'ForAnyValue:StringLike': { 'events:source': ['warmboot', 'warmboot.tenant.*'] } },
    });
    // Each operator puts only the sources of its tenants (security review C3).
    expect(statement('Operator0Requests')).toMatchObject({
      Effect: 'Allow',
      Condition: { 'ForAllValues:StringEquals': { 'events:source': ['warmboot'] } },
    });
    expect(statement('Operator1Requests')).toMatchObject({
      Effect: 'Allow',
      Condition: { 'ForAllValues:StringEquals': { 'events:source': ['warmboot.tenant.team-a'] } },
    });
    expect(statement('Operator1OnlyItsTenants')).toMatchObject({
      Effect: 'Deny',
      Condition: {
        ArnEquals: { 'aws:PrincipalArn': 'arn:aws:iam::123456789012:role/team-a' },
        'ForAnyValue:StringNotEquals': { 'events:source': ['warmboot.tenant.team-a'] },
      },
    });
    const requestRules = rules.filter((rule) => rule.EventBusName === 'team-requests');
    const requestPatterns = Object.values(FUNCTIONS).flatMap((spec) =>
      spec.patterns.filter(({ pattern }) => patternBus(pattern) === 'requests'),
    );
    expect(requestRules).toHaveLength(requestPatterns.length);
    for (const rule of requestRules) {
      expect(rule.EventPattern?.source).toEqual(['warmboot', { prefix: 'warmboot.tenant.' }]);
    }
  });

  it('reserves concurrency only for the functions it is asked to', () => {
    const stack = scratchStack();
    new Warmboot(stack, 'Warmboot', { reservedConcurrency: { shelving: 1, claim: 20 } });
    const functions = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function'));
    const reserved = functions
      .map((resource) => resource.Properties?.ReservedConcurrentExecutions as number | undefined)
      .filter((value) => value !== undefined)
      .sort();

    expect(reserved).toEqual([1, 20]);
  });

  it('refuses settings that would not fit Lambda’s 4 KB environment, naming the function', () => {
    const { pools } = exampleSettings() as { pools: Record<string, unknown>[] };
    const many = Array.from({ length: 12 }, (_, index) => ({ ...pools[0], name: `pool-${index}` }));

    expect(() => new Warmboot(scratchStack(), 'Warmboot', { pools: many as never })).toThrow(
      /pools: environment is about \d+ bytes, over Lambda's 4 KB limit/,
    );
  });
});

describe('Warmboot stack', () => {
  it('passes cdk-nag AwsSolutions with no unacknowledged finding', () => {
    const report = new AwsSolutionsChecks().validateScope(app);

    expect(
      report.violations.map(
        (violation) =>
          `${violation.ruleName} ${violation.violatingResources.map((r) => r.constructPath).join(', ')}`,
      ),
    ).toEqual([]);
  });

  it('gives every nag acknowledgement a specific reason', () => {
    const reasons = app.node
      .findAll()
      .flatMap((node) => node.node.metadata.filter((entry) => entry.type === 'aws:cdk:acknowledged-rules'))
      .flatMap((entry) => Object.entries(entry.data as Record<string, string>));

    expect(reasons.length).toBeGreaterThan(0);
    for (const [id, reason] of reasons) {
      expect(reason.length, id).toBeGreaterThan(30);
    }
  });

  describe('tables', () => {
    it('creates one on-demand table per TABLES entry with PITR, TTL, GSIs and deletion protection', () => {
      for (const spec of Object.values(TABLES)) {
        template.hasResourceProperties('AWS::DynamoDB::Table', {
          BillingMode: 'PAY_PER_REQUEST',
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          TimeToLiveSpecification: { AttributeName: spec.ttlAttribute, Enabled: true },
          DeletionProtectionEnabled: true,
          KeySchema: [
            { AttributeName: spec.partitionKey, KeyType: 'HASH' },
            ...('sortKey' in spec ? [{ AttributeName: spec.sortKey, KeyType: 'RANGE' }] : []),
          ],
          ...(spec.indexes.length > 0
            ? {
                GlobalSecondaryIndexes: spec.indexes.map((index) =>
                  Match.objectLike({
                    IndexName: index.name,
                    KeySchema: [
                      { AttributeName: index.partitionKey, KeyType: 'HASH' },
                      { AttributeName: index.sortKey, KeyType: 'RANGE' },
                    ],
                  }),
                ),
              }
            : {}),
        });
      }
      template.resourceCountIs('AWS::DynamoDB::Table', Object.keys(TABLES).length);
    });

    it('retains tables when the stack is deleted', () => {
      for (const [, table] of resourcesOfType(json, 'AWS::DynamoDB::Table')) {
        expect(table).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
      }
    });

    it('turns deletion protection off only when asked', () => {
      const scratch = new Stack();
      new WarmbootData(scratch, 'Data', { deletionProtection: false });

      Template.fromStack(scratch).allResourcesProperties('AWS::DynamoDB::Table', {
        DeletionProtectionEnabled: false,
      });
    });
  });

  describe('functions', () => {
    it('deploys each catalog function from functions/<folder>/index.ts on Node.js 22 arm64 with tracing', () => {
      for (const fn of warmbootFunctions) {
        const properties = functionProperties(fn.spec.id);
        expect(properties).toMatchObject({
          Runtime: 'nodejs22.x',
          Architectures: ['arm64'],
          TracingConfig: { Mode: 'Active' },
          Handler: 'index.handler',
        });
        // Lambda keeps 100 unreserved: reserving by default would fail in a new account (quota 10–100).
        expect(properties.ReservedConcurrentExecutions).toBeUndefined();
      }
      // The seven functions and the custom resource that ensures the test-event registry.
      template.resourceCountIs('AWS::Lambda::Function', functionIds.length + 1);
    });

    it('sets exactly the environment the functions read', () => {
      // Every function that calls EC2 gets the account budget's setting (placement calls none).
      const budget = { ACCOUNT_BUDGET: settings.accountBudget };
      const settingsVariables: Record<FunctionId, Record<string, unknown>> = {
        popularity: { POPULARITY_SETTINGS: settings.popularity, ...budget },
        imageCache: { HOST_GROUPS: settings.hostGroups, ...budget },
        fastRestore: {
          FAST_RESTORE_SETTINGS: settings.fastRestore,
          POPULARITY_SETTINGS: settings.popularity,
          ...budget,
        },
        placement: { HOST_GROUPS: settings.hostGroups },
        pools: {
          POOLS: settings.pools,
          POOL_POLICY: settings.poolPolicy,
          POPULARITY_SETTINGS: settings.popularity,
          ...budget,
        },
        claim: {
          POOLS: settings.pools,
          POOL_POLICY: settings.poolPolicy,
          POPULARITY_SETTINGS: settings.popularity,
          ...budget,
        },
        shelving: { SHELVING_SETTINGS: settings.shelving, ...budget },
      };
      for (const id of functionIds) {
        const variables = functionProperties<{ Environment: { Variables: Record<string, unknown> } }>(id)
          .Environment.Variables;
        const expectedNames = [
          ...FUNCTIONS[id].tables.map(tableEnvVar),
          'IDEMPOTENCY_TABLE',
          'FACTS_BUS_NAME',
          ...Object.keys(settingsVariables[id]),
          // Who may call its request URL (functions/shared/lambda.ts reads it).
          ...(servesRequests(FUNCTIONS[id]) ? [REQUEST_CALLERS_ENV] : []),
        ];

        expect(Object.keys(variables).sort(), id).toEqual([...new Set(expectedNames)].sort());
        for (const [name, value] of Object.entries(settingsVariables[id])) {
          expect(JSON.parse(variables[name] as string), `${id} ${name}`).toEqual(value);
        }
        expect(cfnText(variables.FACTS_BUS_NAME)).toBe(`\${${busLogicalId('factsBus')}}`);
      }
    });

    it('gives each function its own log group with retention', () => {
      for (const id of functionIds) {
        const properties = functionProperties<{ LoggingConfig: { LogGroup: unknown } }>(id);
        const logGroupId = cfnText(properties.LoggingConfig.LogGroup).replace(/^\$\{|\}$/g, '');
        expect(json.Resources[logGroupId]).toMatchObject({
          Type: 'AWS::Logs::LogGroup',
          Properties: { RetentionInDays: settings.logRetentionDays },
        });
      }
    });

    it('sends failed async invocations to the function’s encrypted, TLS-only dead-letter queue after retries', () => {
      for (const id of functionIds) {
        const properties = functionProperties<{ DeadLetterConfig: { TargetArn: unknown } }>(id);
        const queueId = cfnText(properties.DeadLetterConfig.TargetArn).replace(/^\$\{|\.Arn\}$/g, '');
        expect(json.Resources[queueId]).toMatchObject({
          Type: 'AWS::SQS::Queue',
          Properties: { SqsManagedSseEnabled: true },
        });
        template.hasResourceProperties('AWS::SQS::QueuePolicy', {
          Queues: [{ Ref: queueId }],
          PolicyDocument: {
            Statement: Match.arrayWith([
              Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
            ]),
          },
        });
        // Async invoke config is per qualifier: the unqualified function and the rule alias (whose
        // name CDK takes from the alias's ARN).
        const configs = resourcesOfType(json, 'AWS::Lambda::EventInvokeConfig')
          .map(([, config]) => config.Properties ?? {})
          .filter((config) => cfnText(config.FunctionName) === `\${${functionLogicalId(id)}}`);
        expect(
          configs.map((config) => [
            JSON.stringify(config.Qualifier).includes(aliasLogicalId(id)) ? 'rule alias' : config.Qualifier,
            config.MaximumRetryAttempts,
            config.MaximumEventAgeInSeconds,
          ]),
          id,
        ).toEqual([
          ['$LATEST', 2, 3600],
          ['rule alias', 2, 3600],
        ]);
      }
    });
  });

  describe('EventBridge', () => {
    const rules = resourcesOfType(json, 'AWS::Events::Rule').map(([, rule]) => rule.Properties ?? {});
    const targetsOf = (rule: Record<string, unknown>) => rule.Targets as Record<string, unknown>[];

    it('has one rule per catalog pattern: the catalog’s pattern pinned to the own account, on its source’s bus', () => {
      const expectedBus = {
        default: 'default',
        requests: `\${${busLogicalId('requestBus')}}`,
        facts: `\${${busLogicalId('factsBus')}}`,
      };
      for (const id of functionIds) {
        for (const { pattern, batched } of FUNCTIONS[id].patterns) {
          // A batched pattern (every EC2 state change of the account) goes to the function's event queue.
          const delivers = batched ? targetsEventQueue : targetsFunction;
          const matching = rules.filter(
            (rule) =>
              JSON.stringify(rule.EventPattern) === JSON.stringify(renderedPattern(pattern)) &&
              targetsOf(rule).some((target) => delivers(target, id)),
          );
          expect(matching, `${id} ${JSON.stringify(pattern)}`).toHaveLength(1);
          expect(busOfRule(matching[0] ?? {}), `${id} ${JSON.stringify(pattern)}`).toBe(
            expectedBus[patternBus(pattern)],
          );
        }
      }
    });

    it('keeps AWS service rules on the default bus, operator rules on the request bus, fact rules on the facts bus (H3)', () => {
      const patterned = rules.filter((rule) => rule.EventPattern !== undefined);
      const sourcesOf = (rule: Record<string, unknown>) => (rule.EventPattern as { source: string[] }).source;
      const onBus = (bus: string) => patterned.filter((rule) => busOfRule(rule) === bus);

      const aws = onBus('default');
      const requests = onBus(`\${${busLogicalId('requestBus')}}`);
      const facts = onBus(`\${${busLogicalId('factsBus')}}`);
      expect(aws.length + requests.length + facts.length).toBe(patterned.length);
      expect(aws.flatMap(sourcesOf).every((source) => source.startsWith('aws.'))).toBe(true);
      // Operators of every tenant put `warmboot`; operators bound to tenants `warmboot.tenant.<t>`.
      for (const rule of requests) {
        expect(sourcesOf(rule)).toEqual([WARMBOOT, { prefix: TENANT_SOURCE_PREFIX }]);
      }
      expect(new Set(facts.flatMap(sourcesOf))).toEqual(new Set([WARMBOOT_FACT]));
      // Every operator request warmboot serves has a rule on the request bus.
      const requestTypes = requests.flatMap(
        (rule) => (rule.EventPattern as { 'detail-type': string[] })['detail-type'],
      );
      expect([...new Set(requestTypes)].sort()).toEqual([...REQUEST_TYPES]);
      // Every pattern matches only the stack's own account, wherever it sits.
      for (const rule of patterned) {
        expect((rule.EventPattern as { account?: unknown }).account).toEqual([{ Ref: 'AWS::AccountId' }]);
      }
    });

    it('puts on the request bus exactly the policy bus-policies.ts builds for the configured operators', () => {
      const bus = json.Resources[busLogicalId('requestBus')];
      const busArn = {
        'Fn::Join': [
          '',
          [
            'arn:',
            { Ref: 'AWS::Partition' },
            ':events:',
            { Ref: 'AWS::Region' },
            ':',
            { Ref: 'AWS::AccountId' },
            ':event-bus/warmboot-requests',
          ],
        ],
      };
      const expected = requestBusPolicy({ busArn: '__BUS__', operators: settings.operators, shared: false });

      expect(settings.operators.length).toBeGreaterThan(1);
      expect(bus?.Properties?.Policy).toEqual(
        JSON.parse(JSON.stringify(expected).replaceAll('"__BUS__"', JSON.stringify(busArn))),
      );
      // Each operator: allowed its own request types with its tenants' sources (`warmboot` for
      // every tenant, `warmboot.tenant.<t>` for each of its own), denied every other.
      const statements = expected.Statement;
      settings.operators.forEach((operator, index) => {
        const sources = operator.tenants.includes('*')
          ? [WARMBOOT]
          : operator.tenants.map((tenant) => `${TENANT_SOURCE_PREFIX}${tenant}`);
        expect(statements.find((statement) => statement.Sid === `Operator${index}Requests`)).toMatchObject({
          Effect: 'Allow',
          Principal: { AWS: operator.principal },
          Condition: { 'ForAllValues:StringEquals': { 'events:source': sources } },
        });
        expect(
          statements.find((statement) => statement.Sid === `Operator${index}OnlyItsRequests`),
        ).toMatchObject({
          Effect: 'Deny',
          Condition: { ArnEquals: { 'aws:PrincipalArn': operator.principal } },
        });
        const onlyItsTenants = statements.find(
          (statement) => statement.Sid === `Operator${index}OnlyItsTenants`,
        );
        if (operator.tenants.includes('*')) expect(onlyItsTenants).toBeUndefined();
        else
          expect(onlyItsTenants).toMatchObject({
            Effect: 'Deny',
            Condition: {
              ArnEquals: { 'aws:PrincipalArn': operator.principal },
              'ForAnyValue:StringNotEquals': { 'events:source': sources },
            },
          });
      });
      expect(settings.operators.some((operator) => !operator.tenants.includes('*'))).toBe(true);
      expect(statements.find((statement) => statement.Sid === 'OnlyOperators')).toMatchObject({
        Effect: 'Deny',
        Principal: '*',
        Condition: {
          ArnNotEquals: { 'aws:PrincipalArn': settings.operators.map((operator) => operator.principal) },
        },
      });
    });

    it('lets only the seven function roles write to the facts bus', () => {
      const bus = json.Resources[busLogicalId('factsBus')];
      const roleArns = warmbootFunctions.map((fn) => ({
        'Fn::GetAtt': [stack.getLogicalId(fn.role.node.defaultChild as never), 'Arn'],
      }));
      const policy = bus?.Properties?.Policy as { Statement: { Sid: string; Condition: unknown }[] };

      expect(policy.Statement.map((statement) => statement.Sid)).toEqual(
        factsBusPolicy({ busArn: '', writerRoleArns: [] }).Statement.map((statement) => statement.Sid),
      );
      expect(policy.Statement[0]).toMatchObject({
        Effect: 'Deny',
        Principal: '*',
        Action: 'events:PutEvents',
        Condition: { ArnNotEquals: { 'aws:PrincipalArn': roleArns } },
      });
      expect(policy.Statement[1]).toMatchObject({
        Effect: 'Deny',
        Condition: { 'ForAnyValue:StringNotEquals': { 'events:source': [WARMBOOT_FACT] } },
      });
    });

    it('targets every rule at the function’s rule alias, never the unqualified function', () => {
      for (const id of functionIds) {
        const alias = json.Resources[aliasLogicalId(id)];
        expect(alias?.Properties).toMatchObject({
          Name: RULE_DELIVERY_ALIAS,
          FunctionName: { Ref: functionLogicalId(id) },
        });
      }
      for (const rule of rules) {
        for (const target of targetsOf(rule)) {
          expect(
            functionIds.some((id) => targetsFunction(target, id) || targetsEventQueue(target, id)),
            JSON.stringify(target.Arn),
          ).toBe(true);
        }
      }
      // The event queues too are read only through the rule alias.
      for (const mapping of resourcesOfType(json, 'AWS::Lambda::EventSourceMapping')) {
        expect(cfnText((mapping[1].Properties as { FunctionName: unknown }).FunctionName)).toMatch(/:rules$/);
      }
    });

    it('batches the firehose: each batched function reads its event queue with the catalog batch settings', () => {
      const batchedFunctions = functionIds.filter((id) =>
        FUNCTIONS[id].patterns.some(({ batched }) => batched),
      );
      expect(batchedFunctions.sort()).toEqual(['imageCache', 'pools', 'popularity', 'shelving']);
      const mappings = resourcesOfType(json, 'AWS::Lambda::EventSourceMapping').map(
        ([, mapping]) => mapping.Properties as Record<string, unknown>,
      );
      expect(mappings).toHaveLength(batchedFunctions.length);
      for (const id of batchedFunctions) {
        const spec = FUNCTIONS[id];
        const queueId = eventQueueLogicalId(id) as string;
        const mapping = mappings.find(
          (candidate) => cfnText(candidate.EventSourceArn) === `\${${queueId}.Arn}`,
        );
        expect(mapping, id).toMatchObject({
          BatchSize: spec.batch?.size,
          MaximumBatchingWindowInSeconds: spec.batch?.windowSeconds,
          ScalingConfig: { MaximumConcurrency: spec.batch?.maxConcurrency },
          FunctionResponseTypes: ['ReportBatchItemFailures'],
        });
        const queue = json.Resources[queueId]?.Properties as Record<string, unknown>;
        const deadLetters = warmbootFunctions.find((candidate) => candidate.spec.id === id)?.deadLetterQueue;
        expect(queue, id).toMatchObject({
          // Six times the function timeout (Lambda developer guide, "Using Lambda with Amazon SQS").
          VisibilityTimeout: 6 * spec.timeoutSeconds,
          SqsManagedSseEnabled: true,
          RedrivePolicy: {
            maxReceiveCount: 5,
            deadLetterTargetArn: {
              'Fn::GetAtt': [stack.getLogicalId(deadLetters?.node.defaultChild as never), 'Arn'],
            },
          },
        });
      }
    });

    it('has one schedule per catalog schedule, on the default bus', () => {
      for (const id of functionIds) {
        const schedules = rules.filter(
          (rule) =>
            rule.ScheduleExpression !== undefined &&
            targetsOf(rule).some((target) => targetsFunction(target, id)),
        );
        expect(
          schedules.map((rule) => rule.ScheduleExpression),
          id,
        ).toEqual(FUNCTIONS[id].schedule ? [FUNCTIONS[id].schedule] : []);
      }
      const expectedRules = functionIds.reduce(
        (count, id) => count + FUNCTIONS[id].patterns.length + (FUNCTIONS[id].schedule ? 1 : 0),
        0,
      );
      expect(rules).toHaveLength(expectedRules);
    });

    it('gives every rule target a dead-letter queue and a retry policy', () => {
      for (const rule of rules) {
        for (const target of targetsOf(rule)) {
          expect(target).toMatchObject({
            DeadLetterConfig: { Arn: expect.anything() },
            RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 7200 },
          });
        }
      }
    });
  });

  it('deploys every SSM document with its allowedPatterns under its content-addressed name', () => {
    for (const document of [...IMAGE_DOCUMENTS, ...POOL_DOCUMENTS]) {
      template.hasResourceProperties('AWS::SSM::Document', {
        Name: deployedDocumentName(document),
        DocumentType: 'Command',
        Content: documentContent(document),
      });
    }
    template.resourceCountIs('AWS::SSM::Document', IMAGE_DOCUMENTS.length + POOL_DOCUMENTS.length);
  });

  describe('shareable test events', () => {
    const samples = readSampleEvents(path.join(PROJECT_ROOT, 'events'));
    const schemas = resourcesOfType(json, 'AWS::EventSchemas::Schema').map(
      ([, schema]) => schema.Properties ?? {},
    );

    it('registers each sample for every function that receives it, named _<function name>-schema', () => {
      for (const fn of warmbootFunctions) {
        const mine = samplesFor(fn, samples);
        const schema = schemas.find(
          (candidate) => cfnText(candidate.SchemaName) === `_\${${functionLogicalId(fn.spec.id)}}-schema`,
        );
        if (mine.length === 0) {
          expect(schema, fn.spec.id).toBeUndefined();
          continue;
        }
        expect(schema, fn.spec.id).toMatchObject({ Type: 'OpenApi3' });
        const content = JSON.parse(cfnText(schema?.Content)) as {
          openapi: string;
          components: { examples: Record<string, { value: unknown }> };
        };
        expect(content.openapi).toBe('3.0.0');
        // In the deployment's own account and Region, which the functions insist on.
        expect(Object.values(content.components.examples).map((example) => example.value)).toEqual(
          mine.map((sample) => ({
            ...sample.event,
            account: `\${AWS::AccountId}`,
            region: `\${AWS::Region}`,
          })),
        );
      }
    });

    it('never declares the account-wide registry: it creates it only when missing and never deletes it', () => {
      // A declared AWS::EventSchemas::Registry fails deploy wherever the console already made it.
      template.resourceCountIs('AWS::EventSchemas::Registry', 0);
      const [ensure] = resourcesOfType(json, 'Custom::AWS').filter(([, resource]) =>
        cfnText(resource.Properties?.Create).includes('CreateRegistry'),
      );
      expect(ensure).toBeDefined();
      const create = JSON.parse(cfnText(ensure?.[1].Properties?.Create)) as Record<string, unknown>;
      expect(create).toMatchObject({
        service: 'Schemas',
        action: 'CreateRegistry',
        parameters: { RegistryName: TEST_EVENT_REGISTRY },
        ignoreErrorCodesMatching: 'ConflictException',
      });
      expect(ensure?.[1].Properties?.Update).toBeUndefined();
      expect(ensure?.[1].Properties?.Delete).toBeUndefined();
      for (const [, schema] of resourcesOfType(json, 'AWS::EventSchemas::Schema')) {
        expect(schema.Properties?.RegistryName).toBe(TEST_EVENT_REGISTRY);
        expect(JSON.stringify(schema.DependsOn ?? [])).toMatch(/EnsureRegistry/);
      }
    });

    it('has a receiver for every sample event (a sample no rule delivers is misfiled)', () => {
      for (const sample of samples) {
        expect(
          warmbootFunctions.some((fn) => samplesFor(fn, [sample]).length > 0),
          sample.file,
        ).toBe(true);
      }
    });
  });

  describe('dashboard and alarms', () => {
    it('has one dashboard with the capability metrics in namespace Warmboot', () => {
      template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
      const body = cfnText(
        resourcesOfType(json, 'AWS::CloudWatch::Dashboard')[0]?.[1].Properties?.DashboardBody,
      );
      for (const metric of [
        'WarmRatio',
        'CacheBytesUsed',
        'CacheBudgetBytes',
        'PinnedImages',
        'FastRestorePairs',
        'FastRestoreUsdPerHour',
        'PoolReadyMembers',
        'PoolHitRatio',
        'TimeToReadySeconds',
        'ShelvedVolumeGiB',
        'Throttles',
        'CachePlanPendingActions',
      ]) {
        expect(body, metric).toContain(`"Warmboot","${metric}"`);
      }
    });

    it('alarms on dead letters and errors of every function, empty pools, cache convergence and FSR budget', () => {
      const alarms = resourcesOfType(json, 'AWS::CloudWatch::Alarm').map(
        ([, alarm]) => alarm.Properties ?? {},
      );
      const named = (metricName: string) => alarms.filter((alarm) => alarm.MetricName === metricName);

      expect(named('ApproximateNumberOfMessagesVisible')).toHaveLength(functionIds.length);
      expect(named('Errors')).toHaveLength(functionIds.length);
      expect(named('PoolReadyMembers')).toHaveLength(
        settings.pools.filter((pool) => pool.minSize > 0).length,
      );
      expect(named('CachePlanPendingActions')).toHaveLength(settings.hostGroups.length);
      expect(named('FastRestoreUsdPerHour')).toEqual([
        expect.objectContaining({ Threshold: settings.fastRestore.maxUsdPerHour }),
      ]);
    });

    it('notifies an encrypted, TLS-only topic with the alarm email', () => {
      template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
      template.hasResourceProperties('AWS::SNS::Subscription', {
        Protocol: 'email',
        Endpoint: settings.alarmEmail,
      });
      template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
      for (const [, alarm] of resourcesOfType(json, 'AWS::CloudWatch::Alarm')) {
        expect(alarm.Properties?.AlarmActions, JSON.stringify(alarm.Properties?.MetricName)).toHaveLength(1);
      }
    });
  });
});

describe('IAM-authenticated request URLs', () => {
  const account = '123456789012';
  const tenantOps = `arn:aws:iam::${account}:role/tenant-a-operators`;
  const admin = `arn:aws:iam::${account}:role/warmboot-admin`;
  const build = (props: ConstructorParameters<typeof Warmboot>[2] = {}) => {
    const stack = scratchStack();
    const warmboot = new Warmboot(stack, 'Warmboot', props);
    return { stack, warmboot, template: Template.fromStack(stack) };
  };
  const urlCallers = build({
    operators: [{ principal: tenantOps, requests: ['Shelve Instances'], tenants: ['tenant-a'] }],
    admins: [admin],
  });
  /** The permissions on a function's URL alias: principal, action and condition of each. */
  const permissionsOf = (id: FunctionId) => {
    const { stack, warmboot, template } = urlCallers;
    const fn = warmboot.functions.find((candidate) => candidate.spec.id === id);
    const alias = fn?.node.findChild('RequestAlias');
    const aliasId = stack.getLogicalId(alias?.node.defaultChild as never);
    return Object.values(template.findResources('AWS::Lambda::Permission'))
      .filter(
        (resource) => JSON.stringify(resource.Properties.FunctionName) === JSON.stringify({ Ref: aliasId }),
      )
      .map(({ Properties: { FunctionName: _alias, ...permission } }) => permission)
      .sort((a, b) => `${a.Principal}${a.Action}`.localeCompare(`${b.Principal}${b.Action}`));
  };

  it('gives every function that takes requests an AWS_IAM function URL on its requests alias, as a stack output', () => {
    for (const fn of warmbootFunctions) {
      expect(servesRequests(fn.spec), fn.spec.id).toBe(true);
      expect(
        cfnText(
          json.Resources[stack.getLogicalId(fn.requestUrl?.node.defaultChild as never)]?.Properties?.AuthType,
        ),
      ).toBe('AWS_IAM');
      expect(
        json.Resources[stack.getLogicalId(fn.requestUrl?.node.defaultChild as never)]?.Properties?.Qualifier,
      ).toBe('requests');
      const outputs = (json as unknown as { Outputs: Record<string, { Value: unknown }> }).Outputs;
      expect(cfnText(outputs[requestUrlOutputId(fn.spec.id)]?.Value), fn.spec.id).toBe(
        `\${${stack.getLogicalId(fn.requestUrl?.node.defaultChild as never)}.FunctionUrl}`,
      );
    }
  });

  it('admits to a URL exactly the operators that may send its function something, and the admins where it serves admin requests', () => {
    const both = (principal: string) => [
      { Action: 'lambda:InvokeFunction', InvokedViaFunctionUrl: true, Principal: principal },
      { Action: 'lambda:InvokeFunctionUrl', FunctionUrlAuthType: 'AWS_IAM', Principal: principal },
    ];

    expect(permissionsOf('shelving')).toEqual([...both(tenantOps), ...both(admin)]);
    expect(permissionsOf('pools')).toEqual(both(admin));
    // Popularity serves no admin request, and the operator sends it nothing: nobody is admitted.
    expect(permissionsOf('popularity')).toEqual([]);
  });

  it('tells each function who may call its URL, with what, for which tenants', () => {
    const { stack, warmboot, template } = urlCallers;
    const shelving = warmboot.functions.find((fn) => fn.spec.id === 'shelving');
    const properties = template.toJSON().Resources[
      stack.getLogicalId(shelving?.function.node.defaultChild as never)
    ].Properties as { Environment: { Variables: Record<string, string> } };

    expect(JSON.parse(properties.Environment.Variables.REQUEST_CALLERS ?? '')).toEqual({
      operators: [{ principal: tenantOps, requests: ['Shelve Instances'], tenants: ['tenant-a'] }],
      admins: [admin],
    });
    expect(requestCallersOf(FUNCTIONS.shelving, [], [admin])).toEqual({ operators: [], admins: [admin] });
  });

  it('refuses at synth a caller list that would push a function environment over 4 KB', () => {
    // One operator of many long-named tenants: still under the request bus policy's 10 KB.
    const tenants = Array.from({ length: 40 }, (_, index) => `tenant-${index}-${'x'.repeat(80)}`);
    const operators = [{ principal: tenantOps, requests: ['Shelve Instances'], tenants }];

    expect(() => build({ operators })).toThrow(/shelving: .*REQUEST_CALLERS.*over Lambda's 4 KB limit/);
  });

  it('takes admins only as role or user ARNs, naming the prop', () => {
    expect(() => build({ admins: [`arn:aws:iam::${account}:root`] })).toThrow(/props\.admins\[0\]/);
    expect(() => build({ admins: [`arn:aws:sts::${account}:assumed-role/admin/session`] })).toThrow(
      /props\.admins\[0\]/,
    );
  });
});
