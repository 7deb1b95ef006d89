/**
 * Every pool- or claim-specific regular expression that guards a value, defined once (AWS ids are
 * in shared/aws-ids.ts). The SSM documents in
 * documents.ts use them as `allowedPattern` and the zod schemas in config.ts and the claim
 * schemas use the very same strings, so a value that reaches a shell was checked twice with one
 * rule (DESIGN.md invariants). All patterns are anchored: SSM matches the whole value.
 */
export const POOL_NAME_PATTERN = '^[a-z0-9][a-z0-9-]{0,62}$';
/** An SSM parameter that resolves to an AMI id, e.g. /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64. */
export const SSM_PARAMETER_PATTERN = '^/[A-Za-z0-9_./-]+$';
/** AWS's public AMI alias parameters (`/aws/service/ami-amazon-linux-latest/…`). */
export const PUBLIC_IMAGE_PARAMETER_PREFIX = '/aws/service/';
/**
 * Where an operator keeps private image parameters that pools defined at run time may name. IAM
 * grants GetParameter only on what it knows at deploy time: the public aliases, the parameters
 * the deploy-time pools name, and this prefix (finding R11).
 */
export const OPERATOR_IMAGE_PARAMETER_PREFIX = '/warmboot/images/';
/** EC2 instance types: family (with generation and attributes), a dot, a size (m7i.large, c7gn.16xlarge, u-6tb1.metal). */
export const INSTANCE_TYPE_PATTERN = '^[a-z][a-z0-9-]{1,15}\\.[a-z0-9]{2,16}$';
export const LAUNCH_TEMPLATE_VERSION_PATTERN = '^(\\$Latest|\\$Default|[1-9][0-9]{0,8})$';
/** IAM instance profile names (IAM API reference, CreateInstanceProfile). */
export const INSTANCE_PROFILE_PATTERN = '^[A-Za-z0-9+=,.@_-]{1,128}$';
export const KEY_NAME_PATTERN = '^[A-Za-z0-9._-]{1,255}$';

/** RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, at most 253 characters. */
export const HOSTNAME_PATTERN =
  '^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$';
export const SSH_PUBLIC_KEY_PATTERN =
  '^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256) [A-Za-z0-9+/=]+( [A-Za-z0-9@._-]+)?$';
/** A POSIX user name (useradd's default NAME_REGEX, lower case only). */
export const LINUX_USER_PATTERN = '^[a-z_][a-z0-9_-]{0,31}$';
/** Packages the initialize step installs (dnf/apt/choco names). */
export const PACKAGE_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9.+_-]{0,127}$';
/** Container images the initialize step pulls: [registry/]repository[:tag][@sha256:digest]. */
export const CONTAINER_IMAGE_PATTERN =
  '^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(@sha256:[a-f0-9]{64})?$';
/**
 * A comma-separated list whose every item matches `itemPattern` (anchored), or the empty string.
 * The pool documents take their lists as String parameters in this form: SSM writes a StringList
 * embedded in a script line as JSON (`["git","docker"]`, amazon-ssm-agent parameters.go
 * ReplaceParameter), which no shell splits cleanly. Items cannot contain commas (their patterns
 * exclude them), so joining and splitting on commas is lossless.
 */
export const commaListPattern = (itemPattern: string): string => {
  const item = itemPattern.replace(/^\^/, '').replace(/\$$/, '');
  return `^$|^(?:${item})(?:,(?:${item}))*$`;
};
export const PACKAGE_LIST_PATTERN = commaListPattern(PACKAGE_NAME_PATTERN);
export const CONTAINER_IMAGE_LIST_PATTERN = commaListPattern(CONTAINER_IMAGE_PATTERN);
export const PLATFORM_PATTERN = '^(linux|windows)$';
export const BOOLEAN_PATTERN = '^(true|false)$';
/** Documents a pool may run: deployed by warmboot and routed to the pools function by name prefix. */
export const POOL_DOCUMENT_NAME_PATTERN = '^Warmboot-Pool[A-Za-z0-9_.-]{1,100}$';
/**
 * Free-form parameter values of a named personalization document: no shell metacharacters at all,
 * and no `..` (a value may be a path, never one that climbs out of where the document puts it).
 */
export const SAFE_PARAMETER_VALUE_PATTERN = '^(?!.*\\.\\.)[A-Za-z0-9 ._:/=+@,-]{0,256}$';
/**
 * Where a tenant keeps the SecureString parameters its requests may name:
 * `/warmboot/tenants/<tenant>/…`. The tenant segment must be one the caller acts for, so one
 * tenant cannot name another's secret (functions/shared/caller.ts). Not `/warmboot/<tenant>/`:
 * a tenant called `images` would then name the operator's image parameters.
 */
export const SECRET_PARAMETER_PREFIX = '/warmboot/tenants/';
/** At most this many secret references in one request (the SSM agent fetches 10 names per GetParameters). */
export const MAX_SECRET_REFERENCES = 10;
/**
 * A secret travels as a reference, never as its value: `{{ssm-secure:<name>}}`, the name under
 * SECRET_PARAMETER_PREFIX, then 1 to 13 segments (SSM allows 15 levels), no `..` anywhere.
 * Segments use the characters the SSM parameter name allows except `/` (API_PutParameter,
 * `Name`: `a-zA-Z0-9_.-`). The SSM service and agent pass `{{ssm-secure:…}}` through to an
 * aws:runShellScript step as text (amazon-ssm-agent resolves only `{{ssm:…}}` there, and refuses
 * SecureString ones); the document's script fetches the value on the host with the instance's
 * own credentials (functions/pools/documents.ts, Warmboot-PoolSecrets).
 */
const SECRET_REFERENCE_BODY =
  '\\{\\{ssm-secure:/warmboot/tenants/[A-Za-z0-9_.-]{1,128}(/[A-Za-z0-9_.-]{1,128}){1,13}\\}\\}';
export const SECRET_REFERENCE_PATTERN = `^(?!.*\\.\\.)${SECRET_REFERENCE_BODY}$`;
/** A comma-separated list of 1 to MAX_SECRET_REFERENCES references, or empty. */
export const SECRET_REFERENCE_LIST_PATTERN = `^$|^(?!.*\\.\\.)${SECRET_REFERENCE_BODY}(,${SECRET_REFERENCE_BODY}){0,${MAX_SECRET_REFERENCES - 1}}$`;
/**
 * Owner tag keys: the characters EC2 allows; the reserved namespaces are refused separately with
 * RESERVED_TAG_KEY_PREFIX, in any letter case.
 */
export const OWNER_TAG_KEY_PATTERN = '^[A-Za-z0-9 _.:/=+@-]{1,128}$';
/**
 * warmboot's and AWS's tag namespaces, in any letter case. IAM condition key names are not
 * case-sensitive (IAM User Guide, "IAM JSON policy elements: Condition"), so the key part of
 * `aws:ResourceTag/warmboot:pools` may match an owner tag `Warmboot:Pools` and a handed-over
 * server would satisfy warmboot's own IAM conditions again (security review L1). AWS reserves the
 * `aws:` prefix in any case (EC2 refuses such keys at CreateTags).
 */
export const RESERVED_TAG_KEY_PREFIX = /^(warmboot|aws):/i;
/**
 * Keys that name Object.prototype machinery: a record keyed by one is dropped or shadows a
 * prototype member when it is read back (security review L2), so such keys are refused by name.
 */
export const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
/** A 12-digit AWS account ID. */
export const ACCOUNT_ID_PATTERN = '^[0-9]{12}$';
/**
 * An IAM role as it follows `role/` in its ARN: an optional path without its leading slash, then
 * the name (`build-role`, `pools/build-role`). IAM API reference, CreateRole: `RoleName`
 * `[\\w+=,.@-]+`, at most 64 characters; `Path` segments of the same characters.
 */
export const ROLE_PATH_AND_NAME_PATTERN = '^([\\w+=,.@-]{1,64}/){0,16}[\\w+=,.@-]{1,64}$';
export const OWNER_TAG_VALUE_PATTERN = '^[A-Za-z0-9 _.:/=+@-]{0,256}$';
