import type { Conditions } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { CHANGED_INSTANCE_ATTRIBUTES } from '../../functions/shared/instance-attributes';
import type { ShelvingSettings } from '../../functions/shelving/config';
import type { WarmbootFunction } from '../function';
import { createsOptedIn, ec2AccountlessArns, ec2Arns, optedIn, TAGS } from '../iam';
import {
  allowEbsKeys,
  allowLaunchReferences,
  allowPassConfiguredRoles,
  type CapabilityProps,
  changesOnlyAttributes,
  createFunction,
} from './common';

export interface ShelvingCapabilityProps extends CapabilityProps {
  /** Shelving settings (`SHELVING_SETTINGS`), already validated. */
  readonly shelving: ShelvingSettings;
  /**
   * Let the operator-confirmed `Delete Shelved Record` delete the record's retained volumes
   * (`warmboot:shelved`) and safety snapshots.
   * @default false - only fresh replacement roots can be deleted; a record's data is deleted by hand
   */
  readonly allowShelvedDataDeletion?: boolean;
}

/**
 * Shelve / offload / unshelve. Instances opt in with `warmboot:shelving=true`; every statement that
 * changes an instance or a volume names that tag (or a shelving tag), never another capability's.
 *
 * Data safety (DESIGN.md): warmboot never deletes a volume that holds a shelved instance's data.
 * The code checks the tags before every DeleteVolume; IAM is the second fence: the only volumes
 * this role may delete are fresh replacement roots (`warmboot:replacement-root=true`), a tag that
 * can only be set when RunInstances creates the volume, never added to an existing (retained)
 * volume. Retained volumes (`warmboot:shelved`) can be moved (detach/attach) but not deleted,
 * unless the operator opts in to `allowShelvedDataDeletion` for the confirmed `Delete Shelved Record`.
 */
export class ShelvingCapability extends Construct {
  readonly shelving: WarmbootFunction;

  constructor(scope: Construct, id: string, props: ShelvingCapabilityProps) {
    super(scope, id);
    const fn = createFunction(this, 'shelving', props, {
      settings: {
        SHELVING_SETTINGS: { ...props.shelving, allowDataDeletion: props.allowShelvedDataDeletion === true },
      },
      // Pools serve unshelve: the members of the pools it names are claimed and handed over here.
      tables: {
        shelves: 'readWrite',
        ...(props.shelving.unshelveFromPools.length > 0 ? { pools: 'readWrite' } : {}),
      },
      describe: [
        'ec2:DescribeInstances',
        'ec2:DescribeVolumes',
        'ec2:DescribeSnapshots',
        'ec2:DescribeHosts',
        // A slow-path unshelve into another AZ when the recorded one is unusable.
        'ec2:DescribeAvailabilityZones',
        'ec2:DescribeSubnets',
        // A replacement keeps the shelved instance's key pair only while it still exists (R12).
        'ec2:DescribeKeyPairs',
        // What a shelve records so the replacement comes back as it was (W2): the instance's Elastic
        // IP, CPU credit option and placement strategy.
        'ec2:DescribeAddresses',
        'ec2:DescribeInstanceCreditSpecifications',
        'ec2:DescribePlacementGroups',
        // Unshelve in place: the replace-root-volume task's progress (the SAR gives it no resource).
        'ec2:DescribeReplaceRootVolumeTasks',
        // Whether an AMI is of an allowed owner (shelving.allowedImageOwners), at Shelve and relaunch.
        'ec2:DescribeImages',
      ],
    });
    this.shelving = fn;

    const instances = ec2Arns(this, 'instance');
    const volumes = ec2Arns(this, 'volume');
    const snapshots = ec2AccountlessArns(this, 'snapshot');

    // One statement for every call on an opted-in instance (one inline policy holds the role's
    // statements, and the role is near IAM's 10,240-character limit for it):
    // - stop, start and terminate;
    // - DescribeInstanceAttribute: user data and protection are attributes DescribeInstances does
    //   not show, and the SAR gives it an instance resource;
    // - AssociateAddress: the replacement gets the shelved instance's Elastic IP back. warmboot does
    //   not tag addresses, so IAM limits the instance side; the code never takes an address from
    //   another resource (AllowReassociation false), which no IAM condition key can express;
    // - Attach/DetachVolume on the instance side (the volume side is below).
    fn.allow('ManagedInstances', 'instances that opted in with warmboot:shelving=true', {
      actions: [
        'ec2:StopInstances',
        'ec2:StartInstances',
        'ec2:TerminateInstances',
        'ec2:DescribeInstanceAttribute',
        'ec2:AssociateAddress',
        'ec2:AttachVolume',
        'ec2:DetachVolume',
      ],
      resources: instances,
      conditions: optedIn('shelving'),
    });
    // What a replacement gets back of the shelved instance with ModifyInstanceAttribute: the
    // DeleteOnTermination flags, user data and protection, nothing else (CHANGED_INSTANCE_ATTRIBUTES).
    fn.allow('RestoreInstanceAttributes', 'opted-in instances; DeleteOnTermination, user data, protection', {
      actions: ['ec2:ModifyInstanceAttribute'],
      resources: instances,
      conditions: { ...optedIn('shelving'), ...changesOnlyAttributes(CHANGED_INSTANCE_ATTRIBUTES.shelving) },
    });
    fn.allow(
      'AssociateRecordedElasticIps',
      'the Elastic IP a shelve recorded, associated with its replacement',
      {
        actions: ['ec2:AssociateAddress'],
        resources: ec2Arns(this, 'elastic-ip'),
      },
    );
    fn.allow(
      'TagManagedResources',
      'opted-in instances and volumes; never a deletion tag (replacement-root, shelved)',
      {
        actions: ['ec2:CreateTags'],
        resources: [...instances, ...volumes],
        conditions: {
          ...optedIn('shelving'),
          'ForAllValues:StringNotEquals': { 'aws:TagKeys': [TAGS.replacementRoot, TAGS.shelved] },
        },
      },
    );
    // Shelve claims the volumes attached to an opted-in instance. IAM cannot limit the claim to
    // those volumes: CreateTags on a volume offers no condition key about its attachment or its
    // instance (Service Authorization Reference, Amazon EC2, resource type `volume`: tag, AZ,
    // encryption, parent snapshot/volume, id, size, type, IOPS, throughput keys only), and the
    // volumes carry no tag yet. So IAM restricts what and when: exactly a shelve-record id and
    // the shelving opt-in, and only on a volume no record claimed yet, so the role can never move a
    // volume from one record to another. What it claims is decided in code (the volumes
    // DescribeInstances shows on the opted-in instance), and a deletion deletes only the volumes a
    // record lists in a confirmed plan, each re-checked (domain/safety.ts).
    fn.allow(
      'ClaimRetainedVolumes',
      'writes only warmboot:shelved (a record id) and warmboot:shelving, on volumes no record claimed',
      {
        actions: ['ec2:CreateTags'],
        resources: volumes,
        conditions: {
          'ForAllValues:StringEquals': { 'aws:TagKeys': [TAGS.shelved, TAGS.shelving] },
          StringLike: { [`aws:RequestTag/${TAGS.shelved}`]: 'sh-*' },
          Null: { [`aws:ResourceTag/${TAGS.shelved}`]: 'true' },
        },
      },
    );
    fn.allow('UntagManagedResources', 'opted-in instances and volumes only', {
      actions: ['ec2:DeleteTags'],
      resources: [...instances, ...volumes],
      conditions: optedIn('shelving'),
    });
    // A pool member taken for an unshelve opts in to shelving when its pool hands it over; after
    // that the statements above cover it (the pool tags come off under UntagManagedResources).
    // Only members of the pools that serve unshelve, only that one tag.
    const servingPools = props.shelving.unshelveFromPools;
    if (servingPools.length > 0) {
      fn.allow(
        'AdoptPoolMembers',
        'members of unshelveFromPools pools and their volumes; the shelving opt-in only',
        {
          actions: ['ec2:CreateTags'],
          resources: [...instances, ...volumes],
          conditions: {
            StringEquals: {
              [`aws:ResourceTag/${TAGS.pools}`]: 'true',
              [`aws:ResourceTag/${TAGS.pool}`]: [...servingPools],
            },
            'ForAllValues:StringEquals': { 'aws:TagKeys': [TAGS.shelving] },
          },
        },
      );
    }

    // Unshelve restores DeleteOnTermination of the volumes it attached (AttachVolume leaves it
    // false) with ModifyInstanceAttribute, which also authorizes each volume it names (Service
    // Authorization Reference: ModifyInstanceAttribute takes instance* and volume).
    fn.allow('RestoreDeleteOnTermination', 'opted-in volumes only; changes DeleteOnTermination, never data', {
      actions: ['ec2:ModifyInstanceAttribute'],
      resources: volumes,
      conditions: optedIn('shelving'),
    });
    fn.allow('MoveRetainedVolumes', 'retained volumes (warmboot:shelved) move to their replacement', {
      actions: ['ec2:AttachVolume', 'ec2:DetachVolume'],
      resources: volumes,
      conditions: { Null: { [`aws:ResourceTag/${TAGS.shelved}`]: 'false' } },
    });
    // Unshelve in place (issue 19): CreateReplaceRootVolumeTask authorizes the instance, the
    // volume and the task (Service Authorization Reference, Amazon EC2). Only the instance offers
    // tag conditions: for this action the volume resource takes aws:RequestTag, aws:TagKeys,
    // ec2:VolumeID and ec2:VolumeInitializationRate only, so a tag condition on it would never
    // match on AWS. IAM therefore limits the call to warmboot's own replacements; the code
    // replaces a root only with the retained root volume its record names (provenance in DynamoDB),
    // and EC2 requires that volume to be available in the replacement's AZ.
    fn.allow('ReplaceRootOfReplacements', 'replacements only (warmboot:replacement-for), opted in', {
      actions: ['ec2:CreateReplaceRootVolumeTask'],
      resources: instances,
      conditions: { ...optedIn('shelving'), Null: { [`aws:ResourceTag/${TAGS.replacementFor}`]: 'false' } },
    });
    fn.allow(
      'ReplaceRootWithRetainedVolumes',
      'volume and task side of the call above; no tag condition exists',
      {
        actions: ['ec2:CreateReplaceRootVolumeTask'],
        resources: [...volumes, ...ec2Arns(this, 'replace-root-volume-task')],
      },
    );
    // A fresh root that later became user data and was shelved keeps replacement-root=true: the
    // shelved tag then rules it out (security review H6).
    fn.allow('DeleteReplacementRoots', 'the fresh root of a replacement, never a retained volume', {
      actions: ['ec2:DetachVolume', 'ec2:DeleteVolume'],
      resources: volumes,
      conditions: {
        StringEquals: { [`aws:ResourceTag/${TAGS.replacementRoot}`]: 'true' },
        Null: { [`aws:ResourceTag/${TAGS.shelved}`]: 'true' },
      },
    });

    if (props.allowShelvedDataDeletion) {
      // Opt-in: the operator deletes the record (with confirmation) and with it the data it owns.
      fn.allow(
        'DeleteShelvedData',
        'operator-confirmed Delete Shelved Record; shelved, opted-in volumes only',
        {
          actions: ['ec2:DeleteVolume'],
          resources: volumes,
          conditions: { ...optedIn('shelving'), Null: { [`aws:ResourceTag/${TAGS.shelved}`]: 'false' } },
        },
      );
      fn.allow(
        'DeleteShelvedSnapshots',
        'operator-confirmed Delete Shelved Record; its safety snapshots only',
        {
          actions: ['ec2:DeleteSnapshot'],
          resources: snapshots,
          conditions: { Null: { [`aws:ResourceTag/${TAGS.shelved}`]: 'false' } },
        },
      );
    }

    // CreateSnapshot(s) authorizes the instance, the volumes it reads and the snapshots it creates,
    // each under its own fence.
    const snapshotSides: [sid: string, reason: string, resources: string[], conditions?: Conditions][] = [
      ['SnapshotManagedInstances', 'safety snapshots of opted-in instances', instances, optedIn('shelving')],
      ['SnapshotSourceVolumes', 'volumes are read as the snapshot source, not modified', volumes],
      [
        'CreateSafetySnapshots',
        'snapshots are created tagged with their shelve record',
        snapshots,
        { Null: { [`aws:RequestTag/${TAGS.shelved}`]: 'false' } },
      ],
    ];
    for (const [sid, reason, resources, conditions] of snapshotSides) {
      fn.allow(sid, reason, {
        actions: ['ec2:CreateSnapshots', 'ec2:CreateSnapshot'],
        resources,
        conditions,
      });
    }
    fn.allow('TagSnapshotsAtCreation', 'tags applied by CreateSnapshot(s) to the snapshots it creates', {
      actions: ['ec2:CreateTags'],
      resources: snapshots,
      conditions: { StringEquals: { 'ec2:CreateAction': ['CreateSnapshots', 'CreateSnapshot'] } },
    });

    fn.allow('LaunchReplacements', 'replacements are launched tagged warmboot:shelving=true', {
      actions: ['ec2:RunInstances'],
      resources: [...instances, ...volumes],
      conditions: createsOptedIn('shelving'),
    });
    // Unshelve goes back to the same Dedicated Host / placement group where possible.
    allowLaunchReferences(fn, ['dedicated-host', 'placement-group'], props.shelving.allowedImageOwners);
    // A replacement gets the shelved instance's profile back: only those shelving.instanceProfiles names.
    allowPassConfiguredRoles(
      fn,
      props.shelving.instanceProfiles.map((profile) => profile.role ?? profile.name),
    );
    // Launches, starts and attaches the volumes of shelved instances, encrypted as they were.
    allowEbsKeys(fn, props.ebsKmsKeyArns);
  }
}
