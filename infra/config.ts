import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { z } from 'zod';
import {
  DEFAULT_FACTS_BUS_NAME,
  DEFAULT_REQUEST_BUS_NAME,
  FUNCTION_IDS,
  REQUEST_TYPES,
} from '../functions/catalog';
import { fastRestoreSettingsSchema } from '../functions/fast-restore/config';
import { hostGroupSchema } from '../functions/image-cache/config';
import { poolPolicySchema, poolSpecSchema } from '../functions/pools/config';
import { DOCUMENTS as POOL_DOCUMENTS } from '../functions/pools/documents';
import { popularitySettingsSchema } from '../functions/popularity/config';
import { accountBudgetSchema } from '../functions/shared/account-budget';
import { shelvingSettingsSchema } from '../functions/shelving/config';
import { tenantSchema } from '../functions/shelving/schemas';
import { requestBusPolicy } from './bus-policies';

/** Log retention periods CloudWatch Logs accepts, in days (`RetentionDays.INFINITE` is 9999). */
export const LOG_RETENTION_DAYS = Object.values(RetentionDays).filter(
  (value): value is RetentionDays => typeof value === 'number',
);

export const SHAREABLE_TEST_EVENTS = ['ensure-registry', 'existing-registry', 'none'] as const;
export type ShareableTestEvents = (typeof SHAREABLE_TEST_EVENTS)[number];

/** A KMS key ARN (KMS Developer Guide, "Key identifiers"): IAM authorizes key use on key ARNs, not aliases. */
export const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/;

const uniqueNames = <T extends { name: string }>(items: readonly T[], ctx: z.RefinementCtx) => {
  const seen = new Set<string>();
  items.forEach((item, index) => {
    if (seen.has(item.name)) {
      ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `duplicate name "${item.name}"` });
    }
    seen.add(item.name);
  });
};

const poolDocumentNames = new Set(POOL_DOCUMENTS.map((document) => document.name));

/**
 * An IAM principal a bus policy can name: a role or user ARN, or an account's root (`…:root`,
 * meaning every principal of that account its own IAM policies allow). A role is named by its ARN
 * (`arn:aws:iam::<account>:role/<path><name>`), never a session (`sts::…:assumed-role/…`): the
 * policy matches `aws:PrincipalArn`, which for a session is its role's ARN (IAM User Guide,
 * "AWS global condition context keys", aws:PrincipalArn).
 */
export const OPERATOR_PRINCIPAL =
  /^arn:aws[a-z-]*:iam::\d{12}:(root|role\/[\w+=,.@/-]{1,512}|user\/[\w+=,.@/-]{1,512})$/;

/**
 * An administrator: a role or user named on its own, never a whole account (an account root would
 * make every principal of the account an administrator) and never a role session.
 */
export const ADMIN_PRINCIPAL = /^arn:aws[a-z-]*:iam::\d{12}:(role|user)\/[\w+=,.@/-]{1,512}$/;

/**
 * A custom event bus name (EventBridge API reference, CreateEventBus: `[/\.\-_A-Za-z0-9]+`, at most
 * 256 characters; a `/` names a partner event bus, which warmboot does not use).
 */
export const EVENT_BUS_NAME = /^[A-Za-z0-9._-]{1,256}$/;

const busName = (fallback: string) =>
  z
    .string()
    .regex(
      EVENT_BUS_NAME,
      'must be an event bus name: letters, digits, ".", "-", "_", at most 256 characters',
    )
    .refine((name) => name !== 'default', {
      message:
        'must not be the default bus: every principal allowed PutEvents on it could send requests, and facts would mix with AWS events',
    })
    .refine((name) => !name.startsWith('aws.'), { message: 'must not start with "aws." (reserved for AWS)' })
    .default(fallback);

/** "The permission policy on the event bus cannot exceed 10 KB in size" (AWS::Events::EventBusPolicy). */
export const EVENT_BUS_POLICY_MAX_BYTES = 10 * 1024;

/**
 * One principal allowed to send requests, which ones (`*`: every request warmboot serves) and for
 * which tenants (`["*"]`: every tenant). The request bus policy binds the tenants: an operator of
 * tenants T may put only events with source `warmboot.tenant.<T>`, and warmboot acts for the tenant
 * the source names (functions/shared/caller.ts); only an operator of every tenant puts `warmboot`.
 */
export const operatorSchema = z
  .object({
    principal: z
      .string()
      .regex(
        OPERATOR_PRINCIPAL,
        'must be an IAM role or user ARN, or an account root (arn:aws:iam::<account>:root); not a role session',
      ),
    requests: z
      .array(z.enum(['*', ...REQUEST_TYPES] as [string, ...string[]]))
      .min(1)
      .refine((requests) => new Set(requests).size === requests.length, { message: 'duplicate request' })
      .refine((requests) => !requests.includes('*') || requests.length === 1, {
        message: '"*" stands for every request; list it alone',
      }),
    tenants: z
      .array(
        z.string().refine((tenant) => tenant === '*' || tenantSchema.safeParse(tenant).success, {
          message: 'must be a tenant name (1-128 of A-Z a-z 0-9 . _ : @ + = -) or "*"',
        }),
        {
          error: (issue) =>
            issue.input === undefined
              ? 'required: the tenants this principal acts for, or ["*"] for every tenant'
              : undefined,
        },
      )
      .min(1, 'must name at least one tenant, or ["*"] for every tenant')
      .refine((tenants) => new Set(tenants).size === tenants.length, { message: 'duplicate tenant' })
      .refine((tenants) => !tenants.includes('*') || tenants.length === 1, {
        message: '"*" stands for every tenant; list it alone',
      }),
  })
  .strict();
export type Operator = z.output<typeof operatorSchema>;

/**
 * Everything an operator configures, composed from the capability teams' own schemas so the
 * CDK context, the construct props and the functions' cold-start validation agree on one rule.
 * Unknown keys are rejected: a typo such as `hostgroups` must fail synth, not silently deploy
 * the defaults.
 */
export const warmbootSettingsSchema = z
  .object({
    /** DynamoDB deletion protection on every table. */
    deletionProtection: z.boolean().default(true),
    popularity: popularitySettingsSchema.prefault({}),
    hostGroups: z.array(hostGroupSchema).superRefine(uniqueNames).default([]),
    fastRestore: fastRestoreSettingsSchema.prefault({}),
    pools: z
      .array(poolSpecSchema)
      .superRefine(uniqueNames)
      .superRefine((pools, ctx) => {
        // IAM lets the pool functions run only the documents warmboot deploys (infra/capabilities/pools.ts).
        pools.forEach((pool, index) => {
          if (!poolDocumentNames.has(pool.initialization.documentName)) {
            ctx.addIssue({
              code: 'custom',
              path: [index, 'initialization', 'documentName'],
              message: `must be one of the deployed pool documents: ${[...poolDocumentNames].join(', ')}`,
            });
          }
        });
      })
      .default([]),
    /**
     * What any pool may launch (AMI owners, instance profiles beyond the pools' own) and how many
     * requests one caller may make per pool and hour; IAM grants exactly that
     * (functions/pools/config.ts poolPolicySchema).
     */
    poolPolicy: poolPolicySchema.prefault({}),
    /**
     * Systems Manager's Default Host Management Configuration is on in the account and Region the
     * stack deploys to. A pool member's SSM agent registers only with it on, or with an instance
     * profile whose role carries AmazonSSMManagedInstanceCore; so a pool without `instanceProfile`
     * is refused at synth unless this says DHMC is on (docs/pools.md, finding W6). The stack does
     * not turn DHMC on: it is an account-wide setting.
     */
    ssmDefaultHostManagement: z.boolean().default(false),
    shelving: shelvingSettingsSchema.prefault({}),
    /**
     * warmboot's share of every EC2 API throttling bucket of the account and Region (`share`,
     * default 0.1 of each bucket's published refill rate and capacity), and functions with a share
     * of their own (`functions`, e.g. `{ shelving: 0.5 }` for large bulk unshelves), which then draw
     * on a budget of their own besides the one the others share (docs/account-budget.md).
     */
    accountBudget: accountBudgetSchema.prefault({}),
    /**
     * Let `Delete Shelved Record` (operator-confirmed) delete the record's retained volumes and
     * safety snapshots. Off: IAM allows deleting only fresh replacement roots, and deleting a
     * record's data stays a manual step.
     */
    allowShelvedDataDeletion: z.boolean().default(false),
    /**
     * Customer managed KMS keys (key ARNs) that encrypt EBS volumes warmboot launches, starts,
     * attaches or creates: the volumes of shelved instances, pool images, image snapshots, or the
     * account's default EBS key. The roles may use only these keys, only through EC2. None: a
     * volume under any other customer managed key fails (EncryptionKeyUnusable).
     */
    ebsKmsKeyArns: z
      .array(
        z
          .string()
          .regex(
            KMS_KEY_ARN,
            'must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key-id>), not an alias',
          ),
      )
      .refine((arns) => new Set(arns).size === arns.length, { message: 'duplicate key ARN' })
      .default([]),
    /** Subscribe this address to the alarm topic; no topic is created without it. */
    alarmEmail: z.email().optional(),
    logRetentionDays: z
      .number()
      .refine((days) => (LOG_RETENTION_DAYS as readonly number[]).includes(days), {
        message: `must be one of ${LOG_RETENTION_DAYS.join(', ')}`,
      })
      .default(90),
    shareableTestEvents: z.enum(SHAREABLE_TEST_EVENTS).default('ensure-registry'),
    reservedConcurrency: z.partialRecord(z.enum(FUNCTION_IDS), z.number().int().min(1).max(1000)).default({}),
    /**
     * Who may send which requests. The request bus's policy admits PutEvents only from these
     * principals, each only with source `warmboot` and the listed detail-types; none (the default)
     * means nobody can send a request over the bus (Lambda console test events still work: a
     * console invoke is an IAM-authenticated `lambda:Invoke`).
     */
    operators: z
      .array(operatorSchema)
      .superRefine((operators, ctx) => {
        const seen = new Set<string>();
        operators.forEach((operator, index) => {
          if (seen.has(operator.principal)) {
            ctx.addIssue({
              code: 'custom',
              path: [index, 'principal'],
              message: `duplicate principal "${operator.principal}": list its requests once`,
            });
          }
          seen.add(operator.principal);
        });
      })
      .default([]),
    /**
     * Administrators: IAM role or user ARNs that may send the administrative requests (define or
     * drain a pool, register an image, delete shelved data) through the functions' IAM-authenticated
     * URLs, for every tenant (functions/shared/function-url.ts). Default: nobody (an administrator
     * can still invoke a function directly: the console or `aws lambda invoke`).
     */
    admins: z
      .array(
        z
          .string()
          .regex(
            ADMIN_PRINCIPAL,
            'must be an IAM role or user ARN (arn:aws:iam::<account>:role/<name>); not an account root or a role session',
          ),
      )
      .refine((admins) => new Set(admins).size === admins.length, { message: 'duplicate admin' })
      .default([]),
    /**
     * The bus operators send requests to. Created by the stack unless `existing`: then a bus of that
     * name must already exist in the account and Region, and the stack adds its policy statements
     * to that bus's policy.
     */
    requestBus: z
      .object({ name: busName(DEFAULT_REQUEST_BUS_NAME), existing: z.boolean().default(false) })
      .strict()
      .prefault({}),
    /** The bus warmboot publishes its facts to; created by the stack, writable only by its roles. */
    factsBus: z
      .object({ name: busName(DEFAULT_FACTS_BUS_NAME) })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((settings, ctx) => {
    // The longest ARN the bus can have: the policy must fit in any Region and partition.
    const size = JSON.stringify(
      requestBusPolicy({
        busArn: `arn:aws-us-gov:events:us-gov-west-1:123456789012:event-bus/${settings.requestBus.name}`,
        operators: settings.operators,
        shared: settings.requestBus.existing,
      }),
    ).length;
    if (size > EVENT_BUS_POLICY_MAX_BYTES) {
      ctx.addIssue({
        code: 'custom',
        path: ['operators'],
        message: `the request bus policy would be about ${size} bytes, over EventBridge's 10 KB limit: name fewer principals or tenants (an account root covers a whole account)`,
      });
    }
    if (settings.requestBus.name === settings.factsBus.name) {
      ctx.addIssue({
        code: 'custom',
        path: ['factsBus', 'name'],
        message:
          'must differ from requestBus.name: operators may write to the request bus, only warmboot to the facts bus',
      });
    }
  })
  .superRefine((settings, ctx) => {
    if (settings.ssmDefaultHostManagement) return;
    settings.pools.forEach((pool, index) => {
      if (pool.instanceProfile !== undefined) return;
      ctx.addIssue({
        code: 'custom',
        path: ['pools', index, 'instanceProfile'],
        message:
          "required unless ssmDefaultHostManagement is true: the members' SSM agents register only with an " +
          'instance profile whose role carries AmazonSSMManagedInstanceCore, or with Default Host Management ' +
          'Configuration on; without either every member is retired as agent-never-registered',
      });
    });
  });

export type WarmbootSettings = z.output<typeof warmbootSettingsSchema>;
export type WarmbootSettingsInput = z.input<typeof warmbootSettingsSchema>;

/** A configuration value failed validation; the message names every offending key path. */
export class WarmbootConfigError extends Error {
  constructor(
    message: string,
    readonly issues: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'WarmbootConfigError';
  }
}

const formatPath = (root: string, path: readonly PropertyKey[]): string =>
  path.reduce<string>(
    (text, segment) => (typeof segment === 'number' ? `${text}[${segment}]` : `${text}.${String(segment)}`),
    root,
  );

const describeIssues = (root: string, issues: readonly z.core.$ZodIssue[]): string[] =>
  issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => `${formatPath(root, [...issue.path, key])}: unknown key`)
      : [`${formatPath(root, issue.path)}: ${issue.message}`],
  );

/**
 * Validates settings and fills every default. `root` is the name the operator knows the value by
 * (`warmboot` for CDK context, `props` for construct props) and prefixes every key path.
 */
export const parseWarmbootSettings = (raw: unknown, root: string): WarmbootSettings => {
  const parsed = warmbootSettingsSchema.safeParse(raw ?? {});
  if (parsed.success) return parsed.data;
  const issues = describeIssues(root, parsed.error.issues);
  throw new WarmbootConfigError(`Invalid warmboot configuration:\n  ${issues.join('\n  ')}`, issues);
};

/**
 * Reads the `warmboot` CDK context. `cdk synth -c warmboot='{"...":...}'` delivers a string,
 * cdk.json an object; both are accepted.
 */
export const loadWarmbootContext = (context: unknown): WarmbootSettings => {
  if (typeof context === 'string') {
    let value: unknown;
    try {
      value = JSON.parse(context);
    } catch (error) {
      throw new WarmbootConfigError('warmboot: context is not valid JSON', ['warmboot: not valid JSON'], {
        cause: error,
      });
    }
    return parseWarmbootSettings(value, 'warmboot');
  }
  return parseWarmbootSettings(context, 'warmboot');
};
