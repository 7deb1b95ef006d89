import type { FunctionId } from '../functions/catalog';
import type { VirtualClock } from './clock';
import type { CallOutcome, Ec2Simulator } from './ec2/simulator';
import { invocationScope } from './faults';
import { commandInput, operationOf, type SdkClient } from './sdk-bridge';

/**
 * Who did what, as it happened: every destructive EC2 call the local cloud carried out, with the
 * function that made it and the resource's tags, state and attachments at that moment; the
 * resources each caller created; and the DynamoDB writes to the tables that say who manages what
 * (shelve records, pool members). The invariants of issue 14 are judged on this log
 * (local/provenance.ts builds the checkers' data from it, local/invariants.ts checks it): the
 * state a run ends in cannot show that an instance was terminated while a record ran as it.
 *
 * The caller is the function whose invocation made the call (the local bus and `invoke` set the
 * invocation scope, as the local IAM reads it); a call made outside any invocation (a test, the
 * sandbox or an operator playing the account's administrator) is `OUTSIDE`.
 */

export const OUTSIDE = 'outside';

export type ResourceKind = 'instance' | 'volume' | 'snapshot' | 'image' | 'host' | 'fast-restore-pair';

/** An attachment as either side shows it: the volume's device, and whether it goes with the instance. */
interface AttachmentAtCall {
  readonly device: string;
  readonly deleteOnTermination: boolean;
}

export interface AttachedVolumeAtCall extends AttachmentAtCall {
  readonly volumeId: string;
  readonly tags: Readonly<Record<string, string>>;
}

/** A resource as EC2 showed it when the call arrived, before the call changed anything. */
export interface ResourceAtCall {
  readonly kind: ResourceKind;
  /** For a fast snapshot restore pair: `snap-…@us-east-1a`. */
  readonly id: string;
  /** Absent: EC2 did not know the resource. */
  readonly state?: string;
  readonly tags: Readonly<Record<string, string>>;
  /** The function that created it through the API (or `OUTSIDE`); absent: seeded or unknown. */
  readonly createdBy?: string;
  /** An instance: the volumes attached to it. */
  readonly attachedVolumes?: readonly AttachedVolumeAtCall[];
  /** A volume: the instance it is attached to, and that instance's tags. */
  readonly attachment?: AttachmentAtCall & {
    readonly instanceId: string;
    readonly instanceTags: Readonly<Record<string, string>>;
  };
  /** A snapshot: the volume it was taken from. */
  readonly sourceVolumeId?: string;
  /** A snapshot being deleted: every volume that existed then (not `deleting`). */
  readonly liveVolumeIds?: readonly string[];
  /** A fast snapshot restore pair: the caller whose Enable turned it on. */
  readonly enabledBy?: string;
}

export interface JournalCall {
  /** Order of the call among every call and write of the run (one number per call). */
  readonly seq: number;
  /** Virtual time, ms. */
  readonly at: number;
  readonly caller: string;
  readonly operation: string;
  /** One entry per resource the call named (TerminateInstances of three ids: three entries). */
  readonly resource: ResourceAtCall;
}

/** A destructive call EC2 refused (validation: wrong state, not found, protection). */
export interface RefusedCall extends JournalCall {
  readonly code: string;
}

/** One item a DynamoDB write changed, once DynamoDB accepted the write. */
export interface ItemWrite {
  readonly seq: number;
  readonly at: number;
  readonly caller: string;
  readonly table: string;
  /** `update`: an UpdateItem; the item's new value is not known here. */
  readonly kind: 'put' | 'delete' | 'update';
  readonly pk: string;
  readonly sk: string;
  /** The whole item a put wrote (unmarshalled). */
  readonly item?: Readonly<Record<string, unknown>>;
}

type Input = Record<string, unknown>;
type Target = { readonly kind: ResourceKind; readonly id: string };

const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
const one = (kind: ResourceKind, value: unknown): Target[] =>
  typeof value === 'string' ? [{ kind, id: value }] : [];
const pairId = (snapshotId: string, availabilityZone: string): string => `${snapshotId}@${availabilityZone}`;
const pairsOf = (input: Input): Target[] =>
  strings(input.SourceSnapshotIds).flatMap((snapshotId) =>
    strings(input.AvailabilityZones).map((zone) => ({
      kind: 'fast-restore-pair' as const,
      id: pairId(snapshotId, zone),
    })),
  );

/**
 * The calls that stop, terminate, modify, attach, detach or delete (docs/invariants.md, "Touches
 * only what it manages") and the resources each names. Tagging is not among them.
 */
const DESTRUCTIVE: Readonly<Record<string, (input: Input) => Target[]>> = {
  TerminateInstances: (input) => strings(input.InstanceIds).map((id) => ({ kind: 'instance', id })),
  StopInstances: (input) => strings(input.InstanceIds).map((id) => ({ kind: 'instance', id })),
  ModifyInstanceAttribute: (input) => one('instance', input.InstanceId),
  ModifyInstancePlacement: (input) => one('instance', input.InstanceId),
  AttachVolume: (input) => one('volume', input.VolumeId),
  DetachVolume: (input) => one('volume', input.VolumeId),
  DeleteVolume: (input) => one('volume', input.VolumeId),
  ModifyVolume: (input) => one('volume', input.VolumeId),
  DeleteSnapshot: (input) => one('snapshot', input.SnapshotId),
  DeregisterImage: (input) => one('image', input.ImageId),
  ReleaseHosts: (input) => strings(input.HostIds).map((id) => ({ kind: 'host', id })),
  DisableFastSnapshotRestores: pairsOf,
};

const ON_STATES = new Set(['enabling', 'optimizing', 'enabled']);

/** A call on a resource already in the state it asks for changes nothing: not an effect. */
const noEffect = (operation: string, state: string | undefined): boolean => {
  switch (operation) {
    case 'TerminateInstances':
      return state === 'shutting-down' || state === 'terminated';
    case 'StopInstances':
      return (
        state === 'stopping' || state === 'stopped' || state === 'shutting-down' || state === 'terminated'
      );
    case 'DisableFastSnapshotRestores':
      return !ON_STATES.has(state ?? 'disabled');
    default:
      return false;
  }
};

/**
 * A resource as EC2 shows it at a call: its state, tags and what `details` reads of the kind; only
 * tags (none) when EC2 does not know it.
 */
const atCall = <R extends { readonly state: string; readonly tags: Readonly<Record<string, string>> }>(
  base: Pick<ResourceAtCall, 'kind' | 'id' | 'createdBy'>,
  resource: R | undefined,
  details: (resource: R) => Partial<ResourceAtCall> = () => ({}),
): ResourceAtCall =>
  resource
    ? { ...base, state: resource.state, tags: resource.tags, ...details(resource) }
    : { ...base, tags: {} };

/** An AttributeValue as DynamoDB receives it, as the plain value the DocumentClient was given. */
const fromAttribute = (value: unknown): unknown => {
  if (typeof value !== 'object' || value === null) return value;
  const attribute = value as Record<string, unknown>;
  if ('S' in attribute) return attribute.S;
  if ('N' in attribute) return Number(attribute.N);
  if ('BOOL' in attribute) return attribute.BOOL;
  if ('NULL' in attribute) return null;
  if ('M' in attribute) return fromItem(attribute.M);
  if ('L' in attribute) return (attribute.L as unknown[]).map(fromAttribute);
  if ('SS' in attribute) return [...(attribute.SS as string[])];
  if ('NS' in attribute) return (attribute.NS as string[]).map(Number);
  return attribute.B ?? attribute.BS;
};
const fromItem = (item: unknown): Record<string, unknown> =>
  Object.fromEntries(
    Object.entries((item ?? {}) as Record<string, unknown>).map(([key, value]) => [
      key,
      fromAttribute(value),
    ]),
  );

export class CallJournal {
  readonly #calls: JournalCall[] = [];
  readonly #refused: RefusedCall[] = [];
  readonly #writes: ItemWrite[] = [];
  readonly #createdBy = new Map<string, string>();
  readonly #enabledBy = new Map<string, string>();
  readonly #ec2: Ec2Simulator;
  readonly #clock: VirtualClock;
  readonly #tables: ReadonlySet<string>;
  #seq = 0;

  /** `tables`: the DynamoDB tables whose writes are kept (the ones that say who manages what). */
  constructor(options: { ec2: Ec2Simulator; clock: VirtualClock; tables: readonly string[] }) {
    this.#ec2 = options.ec2;
    this.#clock = options.clock;
    this.#tables = new Set(options.tables);
    options.ec2.observeCalls((operation, input) => this.#observe(operation, input));
  }

  /** Every destructive call that took effect, in order. */
  calls(): readonly JournalCall[] {
    return [...this.#calls];
  }

  /** Every destructive call EC2 refused, in order. */
  refused(): readonly RefusedCall[] {
    return [...this.#refused];
  }

  /** Every accepted write to the kept tables, in order with the calls. */
  writes(): readonly ItemWrite[] {
    return [...this.#writes];
  }

  /**
   * Journals the writes of one deployed function's DynamoDB client (the DocumentClient shares its
   * middleware stack). It sits before the SDK's retries and records a write once DynamoDB
   * accepted it: a refused condition, a cancelled transaction or a failed call changed nothing.
   */
  attachWrites<I extends object, O extends object>(client: SdkClient<I, O>, functionId: FunctionId): void {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        const caller = invocationScope.getStore() ? functionId : OUTSIDE;
        this.#recordWrites(
          caller,
          operationOf(context),
          commandInput(args),
          (result as { output?: Input }).output ?? {},
        );
        return result;
      },
      { step: 'build', priority: 'low', name: 'warmbootCallJournal' },
    );
  }

  #observe(operation: string, input: Input): ((outcome: CallOutcome) => void) | undefined {
    const targets = DESTRUCTIVE[operation]?.(input);
    if (targets === undefined) return this.#creation(operation, input);
    const caller = invocationScope.getStore()?.functionId ?? OUTSIDE;
    const at = this.#clock.now();
    const resources = targets.map((target) => this.#resource(operation, target));
    return (outcome) => {
      this.#seq += 1;
      const seq = this.#seq;
      if ('error' in outcome) {
        const code = outcome.error instanceof Error ? outcome.error.name : 'Error';
        for (const resource of resources) this.#refused.push({ seq, at, caller, operation, resource, code });
        return;
      }
      for (const resource of resources) {
        if (noEffect(operation, resource.state)) continue;
        this.#calls.push({ seq, at, caller, operation, resource });
      }
    };
  }

  /** Calls that create resources: who created each (a ClientToken replay creates nothing new). */
  #creation(operation: string, input: Input): ((outcome: CallOutcome) => void) | undefined {
    const caller = invocationScope.getStore()?.functionId ?? OUTSIDE;
    const created = (ids: readonly unknown[]): void => {
      for (const id of ids)
        if (typeof id === 'string' && !this.#createdBy.has(id)) this.#createdBy.set(id, caller);
    };
    switch (operation) {
      case 'RunInstances':
        return (outcome) => {
          if (!('output' in outcome)) return;
          const instanceIds = ((outcome.output.Instances ?? []) as { InstanceId?: string }[]).map(
            (instance) => instance.InstanceId,
          );
          const launched = new Set(instanceIds);
          created(instanceIds);
          created(
            this.#ec2
              .volumes()
              .filter((volume) => launched.has(volume.attachment?.instanceId))
              .map((volume) => volume.volumeId),
          );
        };
      case 'CreateVolume':
      case 'CreateSnapshot':
      case 'CreateImage':
      case 'RegisterImage':
      case 'CopyImage':
        return (outcome) => {
          if (!('output' in outcome)) return;
          created([outcome.output.VolumeId ?? outcome.output.SnapshotId ?? outcome.output.ImageId]);
        };
      case 'CreateSnapshots':
        return (outcome) => {
          if ('output' in outcome)
            created(
              ((outcome.output.Snapshots ?? []) as { SnapshotId?: string }[]).map(
                (snapshot) => snapshot.SnapshotId,
              ),
            );
        };
      case 'AllocateHosts':
        return (outcome) => {
          if ('output' in outcome) created((outcome.output.HostIds ?? []) as unknown[]);
        };
      case 'EnableFastSnapshotRestores': {
        // Only a pair this call turns on becomes the caller's; enabling one already on changes nothing.
        const off = pairsOf(input)
          .map((pair) => pair.id)
          .filter((id) => !ON_STATES.has(this.#pairState(id) ?? 'disabled'));
        return (outcome) => {
          if (!('output' in outcome)) return;
          const turnedOn = new Set(
            ((outcome.output.Successful ?? []) as { SnapshotId?: string; AvailabilityZone?: string }[]).map(
              (item) => pairId(item.SnapshotId ?? '', item.AvailabilityZone ?? ''),
            ),
          );
          for (const id of off) if (turnedOn.has(id)) this.#enabledBy.set(id, caller);
        };
      }
      default:
        return undefined;
    }
  }

  #pairState(id: string): string | undefined {
    return this.#ec2.fastRestores().find((pair) => pairId(pair.snapshotId, pair.availabilityZone) === id)
      ?.state;
  }

  /** The resource as EC2 shows it now, before the call changes it. */
  #resource(operation: string, target: Target): ResourceAtCall {
    const createdBy = this.#createdBy.get(target.id);
    const base = { kind: target.kind, id: target.id, ...(createdBy !== undefined ? { createdBy } : {}) };
    switch (target.kind) {
      case 'instance':
        return atCall(base, this.#ec2.instance(target.id), () => ({
          attachedVolumes: this.#ec2.volumes().flatMap((volume) =>
            volume.attachment?.instanceId === target.id
              ? [
                  {
                    volumeId: volume.volumeId,
                    device: volume.attachment.device,
                    deleteOnTermination: volume.attachment.deleteOnTermination,
                    tags: volume.tags,
                  },
                ]
              : [],
          ),
        }));
      case 'volume':
        return atCall(base, this.#ec2.volume(target.id), ({ attachment }) =>
          attachment
            ? {
                attachment: {
                  instanceId: attachment.instanceId,
                  device: attachment.device,
                  deleteOnTermination: attachment.deleteOnTermination,
                  instanceTags: this.#ec2.instance(attachment.instanceId)?.tags ?? {},
                },
              }
            : {},
        );
      case 'snapshot':
        return atCall(base, this.#ec2.snapshot(target.id), (snapshot) => ({
          sourceVolumeId: snapshot.volumeId,
          ...(operation === 'DeleteSnapshot'
            ? {
                liveVolumeIds: this.#ec2
                  .volumes()
                  .filter((volume) => volume.state !== 'deleting')
                  .map((volume) => volume.volumeId),
              }
            : {}),
        }));
      case 'image':
        return atCall(base, this.#ec2.image(target.id));
      case 'host':
        return atCall(base, this.#ec2.host(target.id));
      case 'fast-restore-pair': {
        const state = this.#pairState(target.id);
        const enabledBy = this.#enabledBy.get(target.id);
        return {
          ...base,
          ...(state !== undefined ? { state } : {}),
          tags: {},
          ...(enabledBy !== undefined ? { enabledBy } : {}),
        };
      }
    }
  }

  #recordWrites(caller: string, operation: string, input: Input, output: Input): void {
    const at = this.#clock.now();
    const changes: Omit<ItemWrite, 'seq' | 'at' | 'caller'>[] = [];
    const keep = (table: unknown, kind: ItemWrite['kind'], key: unknown, item?: Record<string, unknown>) => {
      if (typeof table !== 'string' || !this.#tables.has(table)) return;
      const plain = fromItem(key);
      changes.push({
        table,
        kind,
        pk: String(plain.pk ?? ''),
        sk: String(plain.sk ?? ''),
        ...(item ? { item } : {}),
      });
    };
    const put = (table: unknown, marshalled: unknown) => {
      const item = fromItem(marshalled);
      keep(table, 'put', marshalled, item);
    };
    switch (operation) {
      case 'PutItem':
        put(input.TableName, input.Item);
        break;
      case 'DeleteItem':
        keep(input.TableName, 'delete', input.Key);
        break;
      case 'UpdateItem':
        keep(input.TableName, 'update', input.Key);
        break;
      case 'TransactWriteItems':
        for (const request of (input.TransactItems ?? []) as Record<string, Input | undefined>[]) {
          if (request.Put) put(request.Put.TableName, request.Put.Item);
          if (request.Delete) keep(request.Delete.TableName, 'delete', request.Delete.Key);
          if (request.Update) keep(request.Update.TableName, 'update', request.Update.Key);
        }
        break;
      case 'BatchWriteItem': {
        const unprocessed = new Set(
          Object.values((output.UnprocessedItems ?? {}) as Record<string, unknown[]>)
            .flat()
            .map((request) => JSON.stringify(request)),
        );
        for (const [table, requests] of Object.entries(
          (input.RequestItems ?? {}) as Record<string, Input[]>,
        )) {
          for (const request of requests) {
            if (unprocessed.has(JSON.stringify(request))) continue;
            const putRequest = request.PutRequest as Input | undefined;
            const deleteRequest = request.DeleteRequest as Input | undefined;
            if (putRequest) put(table, putRequest.Item);
            if (deleteRequest) keep(table, 'delete', deleteRequest.Key);
          }
        }
        break;
      }
      default:
        return;
    }
    if (changes.length === 0) return;
    this.#seq += 1;
    const seq = this.#seq;
    for (const change of changes) this.#writes.push({ seq, at, caller, ...change });
  }
}
