import { type HostGroup, WARM_IMAGES_TAG } from '../config';
import type { ImageCacheDependencies } from '../dependencies';
import { warmImageIds } from '../domain/model';
import { formatWarmList } from '../domain/warm-list';
import { GroupRecords } from './host-records';

/** Keeps `warmboot:warm-images` current on hosts of groups that ask for it. */
export const publishWarmList = async (
  deps: ImageCacheDependencies,
  group: HostGroup,
  instanceId: string,
): Promise<void> => {
  if (group.publishWarmList !== 'tag') return;
  const state = await deps.store.loadGroup(group.name);
  const record = state.hosts.find((host) => host.instanceId === instanceId);
  const host = await deps.hosts.host(instanceId);
  if (!record || !host) return;
  const warm = warmImageIds(state.entries.filter((entry) => entry.instanceId === instanceId)).sort();
  const value = formatWarmList([
    ...state.pins.filter((pin) => warm.includes(pin)),
    ...warm.filter((id) => !state.pins.includes(id)),
  ]);
  if (record.warmList === value) return;
  await deps.hosts.tagHost(host, { [WARM_IMAGES_TAG]: value });
  const { version, ...written } = record;
  await new GroupRecords(deps, group).putHost({ ...written, warmList: value }, version);
};
