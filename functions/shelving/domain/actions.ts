import type { ItemError } from '../../shared/results';
import type { NotKept, ShelfRecord, Step, UnshelvePath } from './types';

/**
 * What the saga answers for a record: the actions it asks EC2 to take, the facts it publishes,
 * and the two together as one round's decision.
 */

/** What the saga asks EC2 to do. The planner groups these into as few calls as the API allows. */
export type Action =
  | {
      readonly kind: 'set-delete-on-termination';
      readonly instanceId: string;
      readonly devices: readonly { readonly deviceName: string; readonly deleteOnTermination: boolean }[];
    }
  | {
      readonly kind: 'tag';
      readonly resourceIds: readonly string[];
      readonly tags: Readonly<Record<string, string>>;
    }
  | { readonly kind: 'untag'; readonly resourceIds: readonly string[]; readonly keys: readonly string[] }
  | { readonly kind: 'stop'; readonly instanceId: string; readonly force: boolean }
  | { readonly kind: 'start'; readonly instanceId: string }
  | { readonly kind: 'terminate'; readonly instanceId: string }
  | { readonly kind: 'snapshot'; readonly instanceId: string; readonly recordId: string }
  | { readonly kind: 'launch'; readonly recordId: string }
  | { readonly kind: 'launch-from-snapshots'; readonly recordId: string }
  | { readonly kind: 'detach'; readonly volumeId: string; readonly instanceId: string }
  | {
      readonly kind: 'attach';
      readonly volumeId: string;
      readonly instanceId: string;
      readonly device: string;
    }
  | { readonly kind: 'delete-replacement-root'; readonly volumeId: string; readonly recordId: string }
  | {
      /** CreateReplaceRootVolumeTask with VolumeId; EC2 deletes the replaced (fresh) root itself. */
      readonly kind: 'replace-root';
      readonly recordId: string;
      readonly instanceId: string;
      readonly volumeId: string;
      /** Repeating the call with it after a crash returns the same task (idempotency). */
      readonly clientToken: string;
    }
  | { readonly kind: 'set-user-data'; readonly instanceId: string; readonly userData: string }
  | {
      readonly kind: 'set-protection';
      readonly instanceId: string;
      readonly attribute: 'disableApiTermination' | 'disableApiStop';
      readonly value: boolean;
    }
  | { readonly kind: 'associate-address'; readonly allocationId: string; readonly instanceId: string }
  | {
      /** The pool ends the member it gave this record: pool tags off, member record handed over. */
      readonly kind: 'hand-over-pool-member';
      readonly recordId: string;
      readonly pool: string;
      readonly instanceId: string;
      readonly claimId: string;
    };

/** A fact the saga publishes when a record reaches a milestone. */
export type ShelvingFact =
  | {
      readonly detailType: 'Instance Shelved';
      readonly detail: {
        recordId: string;
        instanceId: string;
        tenant: string;
        volumeIds: string[];
        shelvedVolumeGiB: number;
      };
    }
  | {
      readonly detailType: 'Instance Offloaded';
      readonly detail: { recordId: string; instanceId: string; tenant: string; volumeIds: string[] };
    }
  | {
      readonly detailType: 'Instance Unshelved';
      readonly detail: {
        recordId: string;
        instanceId: string;
        tenant: string;
        path: UnshelvePath;
        timeToReadySeconds: number;
        reason?: string;
        /** Set when the slow path restored into another AZ than the recorded one. */
        availabilityZone?: string;
        subnetId?: string;
        /** The pool whose running member stood in for the replacement launch. */
        pool?: string;
        /** The replacement's primary private IPv4 address. */
        privateIpAddress?: string;
        /** What it could not keep of the shelved instance (always its instance id). */
        notKept?: NotKept[];
      };
    }
  | {
      readonly detailType: 'Shelve Failed';
      readonly detail: {
        recordId: string;
        instanceId: string;
        tenant: string;
        step: Step;
        error: ItemError;
      };
    };

/** The saga's answer for one record in one round. */
export interface Decision {
  /** The step to move to (absent: stay). */
  readonly to?: Step;
  /** Record fields to change together with the step (written before any action runs). */
  readonly set?: Partial<Pick<ShelfRecord, 'volumes' | 'offloadAt' | 'offloadedAt' | 'unshelve' | 'error'>>;
  readonly actions: readonly Action[];
  /** When to look again if no event arrives first; null = only on request. */
  readonly recheckAt: number | null;
  /** What the record is doing or waiting for, for logs and per-item results. */
  readonly reason: string;
  readonly facts?: readonly ShelvingFact[];
}
