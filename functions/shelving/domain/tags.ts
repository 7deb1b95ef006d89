/**
 * The tags warmboot's shelving reads and writes (its opt-in `warmboot:shelving` is in
 * functions/shared/tags.ts). IAM conditions in infra/ use the same keys: DeleteVolume is allowed
 * only on `warmboot:replacement-root=true` (the fresh root of a replacement) and, for the
 * explicit 'Delete Shelved Record' action, on `warmboot:shelved`.
 */
export const TENANT_TAG = 'warmboot:tenant';
/** On every retained volume and safety snapshot: the shelve record that owns it. */
export const SHELVED_TAG = 'warmboot:shelved';
/** On a replacement instance and its fresh root: the record it is being unshelved for. */
export const REPLACEMENT_FOR_TAG = 'warmboot:replacement-for';
/** On the fresh root volume a replacement launched with: the only volume unshelve may delete. */
export const REPLACEMENT_ROOT_TAG = 'warmboot:replacement-root';
/** On every instance and volume of one grouped RunInstances call (its client token). */
export const REPLACEMENT_BATCH_TAG = 'warmboot:replacement-batch';

/** Tags warmboot sets itself; they are never copied from a recorded instance onto a replacement. */
export const isWarmbootOwnedTag = (key: string): boolean =>
  key === SHELVED_TAG ||
  key === REPLACEMENT_FOR_TAG ||
  key === REPLACEMENT_ROOT_TAG ||
  key === REPLACEMENT_BATCH_TAG;

/** AWS reserves the `aws:` prefix; such tags cannot be set by RunInstances or CreateTags. */
export const isAwsReservedTag = (key: string): boolean => key.toLowerCase().startsWith('aws:');
