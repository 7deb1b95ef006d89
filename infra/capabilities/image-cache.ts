import { Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { FastRestoreSettings } from '../../functions/fast-restore/config';
import { FAST_RESTORE_SETTINGS_ENV } from '../../functions/fast-restore/config';
import { CACHE_VOLUME_IMAGE_TAG, type HostGroup } from '../../functions/image-cache/config';
import { DOCUMENTS as IMAGE_DOCUMENTS } from '../../functions/image-cache/documents';
import { POPULARITY_SETTINGS_ENV, type PopularitySettings } from '../../functions/popularity/config';
import type { WarmbootFunction } from '../function';
import { ec2AccountlessArns, ec2Arns, TAGS } from '../iam';
import {
  allowAgentStatus,
  allowEbsKeys,
  allowReadCommandResults,
  type CapabilityProps,
  CommandDocuments,
  createFunction,
} from './common';

export interface ImageCacheCapabilityProps extends CapabilityProps {
  /** Popularity settings (`POPULARITY_SETTINGS`), already validated. */
  readonly popularity: PopularitySettings;
  /**
   * Host groups (`HOST_GROUPS`). IAM lets the image cache touch only instances and volumes tagged
   * with one of these names. @default [] (nothing is warmed; popularity and fast restore still run)
   */
  readonly hostGroups?: readonly HostGroup[];
  /** Fast-restore budget (`FAST_RESTORE_SETTINGS`), already validated. */
  readonly fastRestore: FastRestoreSettings;
}

/**
 * Warm images: popularity, the per-host-group image cache (SSM documents included), fast
 * snapshot restore and placement advice.
 */
export class ImageCacheCapability extends Construct {
  readonly popularity: WarmbootFunction;
  readonly imageCache: WarmbootFunction;
  readonly fastRestore: WarmbootFunction;
  readonly placement: WarmbootFunction;
  readonly documents: CommandDocuments;

  constructor(scope: Construct, id: string, props: ImageCacheCapabilityProps) {
    super(scope, id);
    const hostGroups = props.hostGroups ?? [];
    const hostGroupNames = hostGroups.map((group) => group.name);
    this.documents = new CommandDocuments(this, 'Documents', IMAGE_DOCUMENTS);

    this.popularity = createFunction(this, 'popularity', props, {
      settings: { [POPULARITY_SETTINGS_ENV]: props.popularity },
      tables: { popularity: 'readWrite' },
      describe: ['ec2:DescribeInstances'],
    });

    this.imageCache = createFunction(this, 'imageCache', props, {
      settings: { HOST_GROUPS: hostGroups },
      tables: { imageCache: 'readWrite', popularity: 'read' },
      describe: [
        'ec2:DescribeInstances',
        'ec2:DescribeVolumes',
        'ec2:DescribeImages',
        'ec2:DescribeSnapshots',
        'ec2:DescribeFastSnapshotRestores',
      ],
    });
    if (hostGroupNames.length > 0) {
      this.allowHostGroupCache(this.imageCache, hostGroups);
      // Link volumes are created from image snapshots, encrypted like them, and attached to hosts.
      allowEbsKeys(this.imageCache, props.ebsKmsKeyArns);
    }

    this.fastRestore = createFunction(this, 'fastRestore', props, {
      settings: {
        [FAST_RESTORE_SETTINGS_ENV]: props.fastRestore,
        [POPULARITY_SETTINGS_ENV]: props.popularity,
      },
      tables: { imageCache: 'readWrite', popularity: 'read' },
      describe: [
        'ec2:DescribeImages',
        'ec2:DescribeSnapshots',
        'ec2:DescribeFastSnapshotRestores',
        'ec2:DescribeAvailabilityZones',
      ],
    });
    this.fastRestore.allow(
      'FastRestoreAmiSnapshots',
      'only snapshots of this account or of fastRestore.allowedSnapshotOwners (ec2:Owner, SAR: a condition ' +
        'key of the snapshot resource in Enable/DisableFastSnapshotRestores), so a popular public AMI never ' +
        'spends the budget; FSR changes billing and volume initialization only, never data; the function ' +
        'disables only pairs it recorded enabling, within maxPairs/maxUsdPerHour',
      {
        actions: ['ec2:EnableFastSnapshotRestores', 'ec2:DisableFastSnapshotRestores'],
        resources: ec2AccountlessArns(this, 'snapshot'),
        conditions: {
          StringEquals: {
            'ec2:Owner': [Stack.of(this).account, ...props.fastRestore.allowedSnapshotOwners],
          },
        },
      },
    );

    // Placement asks the cache to warm by publishing `Plan Cache`; it never touches a host itself.
    // It reads the group's state and adds to its own advised-weight counters (UpdateItem only).
    this.placement = createFunction(this, 'placement', props, {
      settings: { HOST_GROUPS: hostGroups },
      tables: { imageCache: 'readUpdate' },
    });
  }

  /**
   * Volume links and warm commands, fenced by the `warmboot:host-group` tag of a configured group
   * and the image-cache opt-in (`warmboot:image-cache=true`), never another capability's.
   * A volume that carries `warmboot:shelved` holds a shelved instance's data and is never detached
   * or deleted by the cache, even if it also carries a host-group tag.
   */
  private allowHostGroupCache(fn: WarmbootFunction, groups: readonly HostGroup[]): void {
    const names = groups.map((group) => group.name);
    const account = Stack.of(this).account;
    const snapshotOwners = [
      ...new Set(
        groups.flatMap((group) =>
          group.allowedSnapshotOwners.map((owner) => (owner === 'self' ? account : owner)),
        ),
      ),
    ];
    const inGroup = {
      [`aws:ResourceTag/${TAGS.hostGroup}`]: [...names],
      [`aws:ResourceTag/${TAGS.imageCache}`]: 'true',
    };
    fn.allow('CreateLinkVolumes', 'link volumes are created tagged with a configured host group', {
      actions: ['ec2:CreateVolume'],
      resources: ec2Arns(this, 'volume'),
      conditions: {
        StringEquals: {
          [`aws:RequestTag/${TAGS.imageCache}`]: 'true',
          [`aws:RequestTag/${TAGS.hostGroup}`]: [...names],
        },
      },
    });
    fn.allow(
      'LinkVolumeSources',
      'only snapshots of the host groups’ allowedSnapshotOwners (ec2:Owner, SAR: a condition key of the ' +
        'snapshot resource in CreateVolume) tagged warmboot:image; only read as the volume source',
      {
        actions: ['ec2:CreateVolume'],
        resources: ec2AccountlessArns(this, 'snapshot'),
        conditions: {
          StringEquals: { 'ec2:Owner': snapshotOwners },
          Null: { [`aws:ResourceTag/${CACHE_VOLUME_IMAGE_TAG}`]: 'false' },
        },
      },
    );
    fn.allow('TagLinkVolumesAtCreation', 'tags applied by CreateVolume to the volume it creates', {
      actions: ['ec2:CreateTags'],
      resources: ec2Arns(this, 'volume'),
      conditions: { StringEquals: { 'ec2:CreateAction': 'CreateVolume' } },
    });
    fn.allow('AttachLinkVolumesToHosts', 'host-group hosts only', {
      actions: ['ec2:AttachVolume', 'ec2:DetachVolume'],
      resources: ec2Arns(this, 'instance'),
      conditions: { StringEquals: inGroup },
    });
    fn.allow(
      'ManageLinkVolumes',
      'the cache’s own link volumes only (host group, image-cache opt-in and warmboot:image tags); never a shelved volume',
      {
        actions: ['ec2:AttachVolume', 'ec2:DetachVolume', 'ec2:DeleteVolume'],
        resources: ec2Arns(this, 'volume'),
        conditions: {
          StringEquals: inGroup,
          Null: {
            [`aws:ResourceTag/${TAGS.shelved}`]: 'true',
            [`aws:ResourceTag/${CACHE_VOLUME_IMAGE_TAG}`]: 'false',
          },
        },
      },
    );
    fn.allow('PublishWarmList', 'only the warm-list tag, only on host-group hosts', {
      actions: ['ec2:CreateTags'],
      resources: ec2Arns(this, 'instance'),
      conditions: {
        StringEquals: inGroup,
        'ForAllValues:StringEquals': { 'aws:TagKeys': [TAGS.warmImages] },
      },
    });
    fn.allow('RunImageDocuments', 'warmboot image documents only', {
      actions: ['ssm:SendCommand'],
      resources: [...this.documents.arns],
    });
    fn.allow('RunImageDocumentsOnHosts', 'host-group hosts only', {
      actions: ['ssm:SendCommand'],
      resources: ec2Arns(this, 'instance'),
      conditions: {
        StringEquals: {
          [`ssm:resourceTag/${TAGS.hostGroup}`]: [...names],
          [`ssm:resourceTag/${TAGS.imageCache}`]: 'true',
        },
      },
    });
    allowReadCommandResults(fn);
    // A joining host is warmed only once its SSM agent is online.
    allowAgentStatus(fn);
  }
}
