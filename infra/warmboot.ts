import * as path from 'node:path';
import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { FunctionId } from '../functions/catalog';
import type { HostGroupInput } from '../functions/image-cache/config';
import type { PoolSpecInput } from '../functions/pools/config';
import { WarmbootBuses } from './buses';
import { ImageCacheCapability } from './capabilities/image-cache';
import { PoolsCapability } from './capabilities/pools';
import { ShelvingCapability } from './capabilities/shelving';
import {
  type Operator,
  parseWarmbootSettings,
  type ShareableTestEvents as TestEventsMode,
  type WarmbootSettingsInput,
} from './config';
import { WarmbootDashboard } from './dashboard';
import { WarmbootData } from './data';
import { PROJECT_ROOT, type WarmbootFunction } from './function';
import { requestCallersOf, servesRequests } from './request-urls';
import { ShareableTestEvents } from './test-events';

export interface WarmbootProps {
  /**
   * DynamoDB deletion protection on every table.
   * @default true
   */
  readonly deletionProtection?: boolean;
  /**
   * Popularity: decay half-life, write shards, top-K, change threshold (functions/popularity/config.ts).
   * @default - every field at its schema default
   */
  readonly popularity?: WarmbootSettingsInput['popularity'];
  /**
   * Host groups whose hosts warmboot keeps warm images on. Hosts join a group with the tags
   * `warmboot:host-group=<name>` and `warmboot:image-cache=true`.
   * @default - none: popularity, fast restore and placement still run
   */
  readonly hostGroups?: readonly HostGroupInput[];
  /**
   * Fast snapshot restore budget (functions/fast-restore/config.ts).
   * @default - every field at its schema default (5 pairs, 3.75 USD/hour)
   */
  readonly fastRestore?: WarmbootSettingsInput['fastRestore'];
  /**
   * Prestarted pools defined at deploy time (more can be defined at runtime with `Define Pool`).
   * @default - none
   */
  readonly pools?: readonly PoolSpecInput[];
  /**
   * What any pool may launch: AMI owners (`allowedImageOwners`), instance profiles a pool defined
   * at run time may use besides the deploy-time pools' own (`instanceProfiles`), and how many
   * requests one caller may make per pool and hour (`requestsPerCallerPerHour`).
   * @default - `{ allowedImageOwners: ['self', 'amazon'], instanceProfiles: [], requestsPerCallerPerHour: 300 }`
   */
  readonly poolPolicy?: WarmbootSettingsInput['poolPolicy'];
  /**
   * Systems Manager's Default Host Management Configuration is on in the target account and
   * Region (the stack does not turn it on): only then may a pool leave out `instanceProfile`.
   * @default false
   */
  readonly ssmDefaultHostManagement?: boolean;
  /**
   * Shelving timers and batch sizes (functions/shelving/config.ts).
   * @default - every field at its schema default
   */
  readonly shelving?: WarmbootSettingsInput['shelving'];
  /**
   * warmboot's share of every EC2 API throttling bucket of the account and Region, and functions
   * with a share of their own, e.g. `{ share: 0.1, functions: { shelving: 0.5 } }`
   * (docs/account-budget.md).
   * @default - `{ share: 0.1 }`: all functions together keep to 10 % of each bucket
   */
  readonly accountBudget?: WarmbootSettingsInput['accountBudget'];
  /**
   * Let the operator-confirmed `Delete Shelved Record` delete the record's retained volumes and
   * safety snapshots (IAM: `warmboot:shelved`-tagged ones only).
   * @default false - IAM lets warmboot delete only fresh replacement roots
   */
  readonly allowShelvedDataDeletion?: boolean;
  /**
   * Customer managed KMS keys (key ARNs) of the EBS volumes warmboot launches, starts, attaches or
   * creates; the roles may use only these, only through EC2.
   * @default - none: only unencrypted volumes and the AWS managed key `aws/ebs`
   */
  readonly ebsKmsKeyArns?: readonly string[];
  /**
   * Subscribe this address to an encrypted SNS topic that every alarm notifies.
   * @default - no topic; alarms are visible on the dashboard only
   */
  readonly alarmEmail?: string;
  /**
   * Log retention of every function's log group.
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Register `events/**\/*.json` as Lambda console shareable test events.
   * @default 'ensure-registry'
   */
  readonly shareableTestEvents?: TestEventsMode;
  /**
   * Reserved concurrency per function; none by default (RECOMMENDED_RESERVED_CONCURRENCY in
   * infra/function.ts has values for accounts whose Lambda concurrency quota leaves room).
   * @default - none
   */
  readonly reservedConcurrency?: Readonly<Partial<Record<FunctionId, number>>>;
  /**
   * Who may send which requests over the request bus: each principal (a role or user ARN, or an
   * account root) with the request detail-types it may send, or `['*']` for all.
   * @default - none: nobody can send requests over the bus (console test events still work)
   */
  readonly operators?: readonly Operator[];
  /**
   * Administrators: IAM role or user ARNs that may send the administrative requests (define or
   * drain a pool, register an image, delete shelved data) through the functions' IAM-authenticated
   * URLs, for every tenant. Operators reach the same URLs with their own request types.
   * @default - none (an administrator can still invoke a function directly)
   */
  readonly admins?: readonly string[];
  /**
   * The bus operators send requests to. `existing: true` uses a bus of that name that already
   * exists in the account and Region and adds warmboot's policy statements to it.
   * @default - a bus named `warmboot-requests`, created by the stack
   */
  readonly requestBus?: WarmbootSettingsInput['requestBus'];
  /**
   * The bus warmboot publishes its facts to, created by the stack; only warmboot's roles may write.
   * @default - `{ name: 'warmboot-facts' }`
   */
  readonly factsBus?: WarmbootSettingsInput['factsBus'];
  /**
   * Directory of sample events (full EventBridge envelopes) for the shareable test events.
   * @default - `events/` at the repository root
   */
  readonly eventsDirectory?: string;
}

/**
 * The whole of warmboot: tables, the seven functions grouped by capability with their rules,
 * schedules, dead-letter queues, SSM documents and least-privilege roles, the dashboard and
 * alarms, and the console test events. Props are validated with the same schemas the functions
 * use at cold start; a bad value fails synth naming its path (`props.hostGroups[0].cacheBytes`).
 *
 * One instance per account and Region: the SSM documents have fixed names (the catalog routes
 * command status events by name prefix) and both rules and IAM rely on those names.
 */
export class Warmboot extends Construct {
  readonly data: WarmbootData;
  readonly imageCache: ImageCacheCapability;
  readonly pools: PoolsCapability;
  readonly shelving: ShelvingCapability;
  readonly buses: WarmbootBuses;
  readonly functions: readonly WarmbootFunction[];
  readonly dashboard: WarmbootDashboard;
  readonly alarmTopic?: sns.Topic;

  constructor(scope: Construct, id: string, props: WarmbootProps = {}) {
    super(scope, id);
    // The props are the settings under their own names, but for logRetention (the settings' days)
    // and eventsDirectory (not a setting).
    const { eventsDirectory: _eventsDirectory, logRetention, ...settingProps } = props;
    const settings = parseWarmbootSettings({ ...settingProps, logRetentionDays: logRetention }, 'props');
    this.buses = new WarmbootBuses(this, 'Buses', {
      operators: settings.operators,
      requestBus: settings.requestBus,
      factsBusName: settings.factsBus.name,
    });

    this.data = new WarmbootData(this, 'Data', { deletionProtection: settings.deletionProtection });
    this.alarmTopic = settings.alarmEmail ? this.createAlarmTopic(settings.alarmEmail) : undefined;

    const common = {
      data: this.data,
      buses: this.buses,
      logRetention: settings.logRetentionDays as logs.RetentionDays,
      reservedConcurrency: settings.reservedConcurrency,
      ebsKmsKeyArns: settings.ebsKmsKeyArns,
      accountBudget: settings.accountBudget,
      ...(this.alarmTopic ? { alarmTopic: this.alarmTopic } : {}),
    };
    this.imageCache = new ImageCacheCapability(this, 'ImageCache', {
      ...common,
      popularity: settings.popularity,
      hostGroups: settings.hostGroups,
      fastRestore: settings.fastRestore,
    });
    this.pools = new PoolsCapability(this, 'Pools', {
      ...common,
      pools: settings.pools,
      poolPolicy: settings.poolPolicy,
      popularity: settings.popularity,
    });
    this.shelving = new ShelvingCapability(this, 'Shelving', {
      ...common,
      shelving: settings.shelving,
      allowShelvedDataDeletion: settings.allowShelvedDataDeletion,
    });
    this.functions = [
      this.imageCache.popularity,
      this.imageCache.imageCache,
      this.imageCache.fastRestore,
      this.imageCache.placement,
      this.pools.pools,
      this.pools.claim,
      this.shelving.shelving,
    ];
    this.buses.restrictFactsTo(this.functions.map((fn) => fn.role));
    // The IAM-authenticated entry point of operator and admin requests (functions/shared/function-url.ts).
    for (const fn of this.functions) {
      if (servesRequests(fn.spec)) {
        fn.serveRequestsByUrl(requestCallersOf(fn.spec, settings.operators, settings.admins));
      }
    }
    for (const fn of this.functions) {
      const missing = fn.missingTableGrants();
      if (missing.length > 0)
        throw new Error(`${fn.spec.id}: no grant for catalog tables ${missing.join(', ')}`);
    }

    this.dashboard = new WarmbootDashboard(this, 'Dashboard', {
      functions: this.functions,
      hostGroups: settings.hostGroups,
      pools: settings.pools,
      fastRestore: settings.fastRestore,
      ...(this.alarmTopic ? { alarmTopic: this.alarmTopic } : {}),
    });

    if (settings.shareableTestEvents !== 'none') {
      new ShareableTestEvents(this, 'TestEvents', {
        functions: this.functions,
        registry: settings.shareableTestEvents,
        eventsDirectory: props.eventsDirectory ?? path.join(PROJECT_ROOT, 'events'),
      });
    }
  }

  /**
   * CloudWatch can publish to an encrypted topic only with a customer managed key whose policy
   * lets cloudwatch.amazonaws.com use it (the AWS managed aws/sns key does not).
   */
  private createAlarmTopic(email: string): sns.Topic {
    const key = new kms.Key(this, 'AlarmKey', {
      description: 'warmboot alarm topic',
      enableKeyRotation: true,
    });
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    const topic = new sns.Topic(this, 'AlarmTopic', {
      displayName: 'warmboot alarms',
      masterKey: key,
      enforceSSL: true,
    });
    topic.addSubscription(new subscriptions.EmailSubscription(email));
    return topic;
  }
}
