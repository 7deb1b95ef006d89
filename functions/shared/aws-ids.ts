/**
 * Patterns of AWS resource ids and names, defined once. EC2 ids are a prefix and 8 (older
 * resources) or 17 lower-case hex digits (EC2 user guide, "Resource IDs"). Every pattern is
 * anchored, because SSM documents use the same strings as `allowedPattern` and SSM matches the
 * whole value.
 */
export const INSTANCE_ID_PATTERN = '^i-[0-9a-f]{8,17}$';
export const VOLUME_ID_PATTERN = '^vol-[0-9a-f]{8,17}$';
export const SNAPSHOT_ID_PATTERN = '^snap-[0-9a-f]{8,17}$';
export const AMI_ID_PATTERN = '^ami-[0-9a-f]{8,17}$';
export const SUBNET_ID_PATTERN = '^subnet-[0-9a-f]{8,17}$';
export const SECURITY_GROUP_ID_PATTERN = '^sg-[0-9a-f]{8,17}$';
export const LAUNCH_TEMPLATE_ID_PATTERN = '^lt-[0-9a-f]{8,17}$';
export const AVAILABILITY_ZONE_PATTERN = '^[a-z]{2}(-[a-z0-9]+)+-[0-9][a-z]$';
export const AWS_REGION_PATTERN = '^[a-z]{2}(?:-gov)?-[a-z]+-[0-9]$';

/** A pattern string as a RegExp, for zod's `.regex()` and for checks in code. */
export const regex = (pattern: string): RegExp => new RegExp(pattern);
