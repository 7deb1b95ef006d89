/**
 * warmboot's own names, read by several functions: popularity counts image ids and host groups,
 * fast restore filters image ids, and the image-cache SSM documents use the same strings as
 * `allowedPattern`. Anchored, no lookaround (SSM evaluates them as Java regular expressions),
 * no shell metacharacter admitted.
 */

/** A host group name; also the `warmboot:host-group` tag value. */
export const HOST_GROUP_NAME_PATTERN = '^[a-z0-9][a-z0-9-]{0,62}$';

/**
 * warmboot's opaque image id (popularity key, table key, tag content). Separators `.` and `/`
 * must be followed by a name character, so `..`, `./` and `//` cannot occur.
 */
export const IMAGE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_:@+-]*(?:[./][A-Za-z0-9_:@+-]+)*$';
