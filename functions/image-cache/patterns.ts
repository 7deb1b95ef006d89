/**
 * The regular expressions that guard every value reaching a shell through the image-cache SSM
 * documents. Each one is used twice: as the document parameter's `allowedPattern` (SSM rejects
 * the command) and in the zod schemas of the operator events and the adapters (the function
 * rejects the value first). AWS resource id patterns (volume, snapshot, Region) and warmboot's
 * own names (image id, host group) are shared: functions/shared/aws-ids.ts, names.ts. All are anchored, contain no lookaround (SSM evaluates them as Java
 * regular expressions) and exclude every shell metacharacter: quotes, `$`, backtick, `;`, `&`,
 * `|`, `<`, `>`, parentheses, backslash, whitespace, `*`, `?`.
 */

/**
 * An absolute directory: `/`-separated segments that start with a letter, digit or `_`, so no
 * segment can be `.` or `..` (no traversal), no `//`, no trailing slash.
 */
export const CACHE_DIRECTORY_PATTERN = '^(?:/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}){1,16}$';

/** Content digest; container images and S3 objects are verified against it. */
export const DIGEST_PATTERN = '^sha256:[a-f0-9]{64}$';

/** Container image reference without digest (Docker reference grammar, lower-case repository). */
const CONTAINER_REF_BODY =
  '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?';
export const CONTAINER_REF_PATTERN = `^${CONTAINER_REF_BODY}$`;

/** An S3 bucket name (3-63 characters, lower case, starting and ending with a letter or digit). */
const BUCKET_BODY = '[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]';

/** `s3://bucket/key`; key segments separated by single `/`, no `..` segment possible. */
const S3_URI_BODY = `s3://${BUCKET_BODY}(?:/[A-Za-z0-9_=+-][A-Za-z0-9_.=+-]{0,254})+`;
export const S3_URI_PATTERN = `^${S3_URI_BODY}$`;

/** The fetch document's `Source`: either kind; the function checks the one matching `Kind`. */
export const IMAGE_SOURCE_PATTERN = `^(?:${CONTAINER_REF_BODY}|${S3_URI_BODY})$`;

/** Device names EC2 accepts for additional EBS volumes on Linux. */
export const DEVICE_PATTERN = '^/dev/(?:sd[f-p]|xvd[f-p])$';

/**
 * A container registry host as Docker reads it from a reference: the first path component when it
 * has a `.` or a `:`, or is `localhost`; any other reference is on Docker Hub (`docker.io`).
 */
export const REGISTRY_HOST_PATTERN = '^[a-z0-9]+(?:[.-]+[a-z0-9]+)*(?::[0-9]{1,5})?$';

/**
 * Registries no host may pull from, whatever an allowlist says (security review L4): loopback
 * (Docker treats 127.0.0.0/8 as an insecure registry and sends it plain HTTP), link-local
 * 169.254.0.0/16 (the instance metadata service), `localhost` and its subdomains, the
 * unspecified 0.0.0.0/8, and IP literals written in numeric or hex labels (`0x7f.1`,
 * `2130706433`), which resolvers read as addresses.
 */
export const FORBIDDEN_REGISTRY_PATTERN =
  '^(?:(?:[a-z0-9-]+\\.)*localhost|127(?:\\.[0-9]+)*|0(?:\\.[0-9]+)*|169\\.254(?:\\.[0-9]+)*|(?:0x[0-9a-f]+|[0-9]+)(?:\\.(?:0x[0-9a-f]+|[0-9]+))*)(?::[0-9]{1,5})?$';

/** An S3 bucket name as the S3 URI pattern admits it. */
export const BUCKET_PATTERN = `^${BUCKET_BODY}$`;

/** A 12-digit AWS account id, or `self` (the account warmboot runs in, as DescribeSnapshots reads it). */
export const SNAPSHOT_OWNER_PATTERN = '^(?:self|[0-9]{12})$';
