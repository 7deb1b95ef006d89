/**
 * The tags read across folders and by the IAM conditions in infra/, defined once here. Other
 * capability tags (`warmboot:pool`, `warmboot:shelved`, …) live with the capability that writes them.
 */

/**
 * The opt-in of each capability: one key per capability, value `true`. An operator tags an
 * instance `warmboot:shelving=true` to let shelving act on it, a host `warmboot:image-cache=true`
 * (with its `warmboot:host-group`) to let the image cache keep it; warmboot tags what it creates
 * with the key of the capability that created it. Each capability's code and IAM conditions check
 * only its own key, so opting a resource in to one capability never exposes it to another.
 *
 * One key per capability rather than one key whose value names the capability: a value is
 * overwritten by CreateTags, so a role allowed to write the key on a resource could move it out of
 * another capability's reach (or into its own); a key of its own is never written by another
 * capability's role (`aws:TagKeys` names it), and a resource may deliberately opt in to two.
 */
export const OPT_IN_TAG = {
  shelving: 'warmboot:shelving',
  imageCache: 'warmboot:image-cache',
  pools: 'warmboot:pools',
} as const;

/** The value of every opt-in tag. */
export const OPTED_IN = 'true';

/**
 * The opt-in every capability shared before the tags above. It grants nothing any more (neither in
 * code nor in IAM); it is named only so a refusal can tell an operator to re-tag.
 */
export const RETIRED_MANAGED_TAG = 'warmboot:managed';

/** On a host: the host group whose cache it keeps (popularity scope, cache membership). */
export const HOST_GROUP_TAG = 'warmboot:host-group';
