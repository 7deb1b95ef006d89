import { Construct } from 'constructs';
import {
  allowedInstanceProfiles,
  isSsmParameterRef,
  POOL_POLICY_ENV,
  type PoolPolicy,
  type PoolSpec,
} from '../../functions/pools/config';
import { DOCUMENTS as POOL_DOCUMENTS } from '../../functions/pools/documents';
import { TAG as POOL_TAGS } from '../../functions/pools/domain/tags';
import { POPULARITY_SETTINGS_ENV, type PopularitySettings } from '../../functions/popularity/config';
import { CHANGED_INSTANCE_ATTRIBUTES } from '../../functions/shared/instance-attributes';
import type { WarmbootFunction } from '../function';
import { createsOptedIn, ec2Arns, TAGS } from '../iam';
import {
  allowEbsKeys,
  allowLaunchReferences,
  allowPassConfiguredRoles,
  allowReadCommandResults,
  allowResolveImageAliases,
  type CapabilityProps,
  CommandDocuments,
  changesOnlyAttributes,
  createFunction,
} from './common';

export interface PoolsCapabilityProps extends CapabilityProps {
  /** Pools defined at deploy time (`POOLS`), already validated. @default [] */
  readonly pools?: readonly PoolSpec[];
  /** What pools may launch and how many requests a caller may make (`POOL_POLICY`), already validated. */
  readonly poolPolicy: PoolPolicy;
  /** Popularity settings (`POPULARITY_SETTINGS`), already validated; pools size from demand. */
  readonly popularity: PopularitySettings;
}

const MEMBER_ACTIONS = [
  'ec2:StartInstances',
  'ec2:StopInstances',
  'ec2:TerminateInstances',
  'ec2:CreateTags',
  'ec2:DeleteTags',
];

/**
 * Prestarted pools: the pools function (fill, initialize, size, retire), the claim function
 * (hand a member out, or launch cold) and the pool SSM documents.
 */
export class PoolsCapability extends Construct {
  readonly pools: WarmbootFunction;
  readonly claim: WarmbootFunction;
  readonly documents: CommandDocuments;
  /** Owners whose AMIs the pool roles may launch (`ec2:Owner`). */
  private readonly imageOwners: readonly string[];
  /** The roles the pool roles may pass to EC2: those of the configured instance profiles. */
  private readonly instanceRoles: readonly string[];

  constructor(scope: Construct, id: string, props: PoolsCapabilityProps) {
    super(scope, id);
    const pools = props.pools ?? [];
    const imageParameters = pools.map((pool) => pool.image).filter(isSsmParameterRef);
    this.documents = new CommandDocuments(this, 'Documents', POOL_DOCUMENTS);
    const settings = {
      POOLS: pools,
      [POOL_POLICY_ENV]: props.poolPolicy,
      [POPULARITY_SETTINGS_ENV]: props.popularity,
    };
    this.imageOwners = props.poolPolicy.allowedImageOwners;
    this.instanceRoles = allowedInstanceProfiles(pools, props.poolPolicy).flatMap((profile) =>
      profile.role === undefined ? [] : [profile.role],
    );

    this.pools = createFunction(this, 'pools', props, {
      settings,
      tables: { pools: 'readWrite', popularity: 'read' },
      describe: ['ec2:DescribeInstances', 'ec2:DescribeImages', 'ec2:DescribeVolumes'],
    });
    this.allowLaunch(
      this.pools,
      'LaunchPoolMembers',
      POOL_TAGS.pool,
      'pool members are launched tagged with their pool',
    );
    this.allowManage(this.pools);
    this.allowDocuments(this.pools, 'pool members only');
    allowResolveImageAliases(this.pools, imageParameters);
    // Members launch and start with volumes encrypted by the image's or the account's EBS key.
    allowEbsKeys(this.pools, props.ebsKmsKeyArns);

    this.claim = createFunction(this, 'claim', props, {
      settings,
      // Claims are demand: the claim function records each request as a popularity launch.
      tables: { pools: 'readWrite', popularity: 'readWrite' },
      describe: ['ec2:DescribeInstances', 'ec2:DescribeImages', 'ec2:DescribeVolumes'],
    });
    this.allowManage(this.claim);
    this.allowUntagMemberVolumes(this.claim);
    // Cold fallback: when no member is ready, the claim launches one instance tagged with its pool
    // and the claim, so every statement on pool members covers it too.
    this.allowLaunch(this.claim, 'ColdLaunch', POOL_TAGS.claim, 'cold launches are tagged with their claim');
    this.allowDocuments(this.claim, 'pool members (cold launches carry the pool tag too) only');
    allowResolveImageAliases(this.claim, imageParameters);
    allowEbsKeys(this.claim, props.ebsKmsKeyArns);
  }

  /** RunInstances creating instances that carry `warmboot:pools=true` and the capability tag. */
  private allowLaunch(fn: WarmbootFunction, sid: string, capabilityTag: string, reason: string): void {
    fn.allow(sid, reason, {
      actions: ['ec2:RunInstances'],
      resources: ec2Arns(this, 'instance'),
      conditions: { ...createsOptedIn('pools'), Null: { [`aws:RequestTag/${capabilityTag}`]: 'false' } },
    });
    fn.allow(`${sid}Volumes`, 'launch volumes are tagged warmboot:pools=true', {
      actions: ['ec2:RunInstances'],
      resources: ec2Arns(this, 'volume'),
      conditions: createsOptedIn('pools'),
    });
    if (!fn.hasStatement('LaunchReferences')) {
      allowLaunchReferences(fn, [], this.imageOwners);
      allowPassConfiguredRoles(fn, this.instanceRoles);
    }
  }

  /** Start/stop/resize/retag/terminate pool members: `warmboot:pools=true` and a `warmboot:pool` tag. */
  private allowManage(fn: WarmbootFunction): void {
    fn.allow('ManagePoolMembers', 'pool members only', {
      actions: MEMBER_ACTIONS,
      resources: ec2Arns(this, 'instance'),
      conditions: {
        StringEquals: { [`aws:ResourceTag/${TAGS.pools}`]: 'true' },
        Null: { [`aws:ResourceTag/${POOL_TAGS.pool}`]: 'false' },
      },
    });
    // A stopped member is resized to the type a request asks for (claim; the pools function
    // shares the adapter): its instance type, nothing else (CHANGED_INSTANCE_ATTRIBUTES).
    const resize = changesOnlyAttributes(CHANGED_INSTANCE_ATTRIBUTES.pools);
    fn.allow('ResizePoolMembers', 'pool members only, their instance type only', {
      actions: ['ec2:ModifyInstanceAttribute'],
      resources: ec2Arns(this, 'instance'),
      conditions: {
        ...resize,
        StringEquals: { [`aws:ResourceTag/${TAGS.pools}`]: 'true' },
        Null: { [`aws:ResourceTag/${POOL_TAGS.pool}`]: 'false', ...resize.Null },
      },
    });
  }

  /** At hand-over the member's volumes lose their pool tags too; only those tags, only on pool volumes. */
  private allowUntagMemberVolumes(fn: WarmbootFunction): void {
    fn.allow('UntagPoolMemberVolumes', 'volumes of pool members, pool tags only', {
      actions: ['ec2:DeleteTags'],
      resources: ec2Arns(this, 'volume'),
      conditions: {
        StringEquals: { [`aws:ResourceTag/${TAGS.pools}`]: 'true' },
        Null: { [`aws:ResourceTag/${POOL_TAGS.pool}`]: 'false' },
        'ForAllValues:StringEquals': {
          'aws:TagKeys': [POOL_TAGS.pool, POOL_TAGS.memberState, TAGS.pools, POOL_TAGS.claim],
        },
      },
    });
  }

  /** SendCommand of the pool documents, on pool members only. */
  private allowDocuments(fn: WarmbootFunction, reason: string): void {
    fn.allow('RunPoolDocuments', 'warmboot pool documents only', {
      actions: ['ssm:SendCommand'],
      resources: [...this.documents.arns],
    });
    fn.allow('RunPoolDocumentsOnMembers', reason, {
      actions: ['ssm:SendCommand'],
      resources: ec2Arns(this, 'instance'),
      conditions: {
        StringEquals: { [`ssm:resourceTag/${TAGS.pools}`]: 'true' },
        StringLike: { [`ssm:resourceTag/${POOL_TAGS.pool}`]: '*' },
      },
    });
    allowReadCommandResults(fn);
  }
}
