import type { PopularityScope } from '../../popularity/domain/scope';
import type { Caller } from '../../shared/caller';
import { type ItemResult, itemErrorOf } from '../../shared/results';
import type { ImageSpec } from '../config';
import type { ImageCacheDependencies } from '../dependencies';
import { onCommandStatus } from './command-results';
import { onHostState, prefetchHosts } from './membership';
import { type PlanSummary, plan } from './plan';
import { reconcile } from './reconcile';
import { pin, type RegisteredImageAnswer, registerImage, unpin } from './requests';

/** One group's answer in a request that plans or reconciles several groups. */
export type GroupResult = ItemResult<{ readonly plan: PlanSummary }>;

/** What Plan Cache asks: one group (with explicit warms, from placement) or every group. */
export interface PlanCacheRequest {
  readonly hostGroup?: string;
  readonly warm?: readonly { readonly imageId: string; readonly instanceIds: readonly string[] }[];
}

/**
 * The image cache's use cases over one account's dependencies: the one object the routes call
 * (each method is one use case of application/; this class only binds the dependencies).
 */
export class ImageCacheService {
  constructor(private readonly deps: ImageCacheDependencies) {}

  registerImage(
    image: ImageSpec,
    request: { readonly expectedVersion?: number; readonly caller?: Caller },
  ): Promise<RegisteredImageAnswer> {
    return registerImage(this.deps, image, request);
  }

  pin(hostGroup: string, imageId: string, image?: ImageSpec, caller?: Caller): Promise<PlanSummary> {
    return pin(this.deps, { hostGroup, imageId, ...(image ? { image } : {}) }, caller);
  }

  unpin(hostGroup: string, imageId: string): Promise<PlanSummary> {
    return unpin(this.deps, { hostGroup, imageId });
  }

  plan(
    hostGroup: string,
    requested: readonly { instanceId: string; imageId: string }[] = [],
  ): Promise<PlanSummary> {
    return plan(this.deps, hostGroup, requested);
  }

  /** Plan Cache: the named group with the requested warms, or every group. */
  planCache(request: PlanCacheRequest): Promise<PlanSummary | GroupResult[]> {
    if (!request.hostGroup) return this.#perGroup(this.#groupNames(), (group) => this.plan(group));
    const requested = (request.warm ?? []).flatMap((warm) =>
      warm.instanceIds.map((instanceId) => ({ instanceId, imageId: warm.imageId })),
    );
    return this.plan(request.hostGroup, requested);
  }

  /** Popularity changed in `scope`: the groups that read it are planned again. */
  planForPopularity(scope: PopularityScope): Promise<GroupResult[]> {
    const groups =
      scope.kind === 'hostGroup'
        ? this.#groupNames().filter((name) => name === scope.hostGroup)
        : this.#groupNames();
    return this.#perGroup(groups, (group) => this.plan(group));
  }

  reconcile(hostGroup: string): Promise<PlanSummary> {
    return reconcile(this.deps, hostGroup);
  }

  /** The scheduled reconcile of every group. */
  reconcileAll(): Promise<GroupResult[]> {
    return this.#perGroup(this.#groupNames(), (group) => this.reconcile(group));
  }

  onCommandStatus(detail: Parameters<typeof onCommandStatus>[1]) {
    return onCommandStatus(this.deps, detail);
  }

  onHostState(instanceId: string, state: string): Promise<{ outcome: string }> {
    return onHostState(this.deps, instanceId, state);
  }

  prefetchHosts(changes: readonly { readonly instanceId: string; readonly state: string }[]): Promise<void> {
    return prefetchHosts(this.deps, changes);
  }

  #groupNames(): string[] {
    return this.deps.groups.map((group) => group.name);
  }

  /** Runs `work` for each group; one failing group never stops the others. */
  async #perGroup(
    groups: readonly string[],
    work: (group: string) => Promise<PlanSummary>,
  ): Promise<GroupResult[]> {
    const results: GroupResult[] = [];
    for (const id of groups) {
      try {
        results.push({ id, ok: true, plan: await work(id) });
      } catch (error) {
        results.push({ id, ok: false, error: itemErrorOf(error) });
      }
    }
    return results;
  }
}
