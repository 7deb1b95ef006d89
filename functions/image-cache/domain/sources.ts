import { regex } from '../../shared/aws-ids';
import type { HostGroup, ImageSpec } from '../config';
import { OWN_REGISTRY } from '../config';
import { FORBIDDEN_REGISTRY_PATTERN } from '../patterns';

/**
 * Where a host group may fetch images from (security review H2, L4): the registries, buckets and
 * snapshot owners its deploy-time allowlists name. Pure: the account the function runs in is a
 * parameter (it is the one `self` stands for).
 */

/** Docker Hub, where a reference whose first component is not a host lives (`nginx`, `org/app`). */
export const DOCKER_HUB = 'docker.io';

/**
 * The registry host of a container reference, read as Docker reads it: the first path component
 * is a host when it contains `.` or `:` or is `localhost`; otherwise the image is on Docker Hub.
 */
export const registryOf = (reference: string): string => {
  const slash = reference.indexOf('/');
  if (slash < 0) return DOCKER_HUB;
  const first = reference.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : DOCKER_HUB;
};

/** The bucket of `s3://bucket/key`. */
export const bucketOf = (uri: string): string => uri.slice('s3://'.length).split('/', 1)[0] ?? '';

/** This account's private ECR registry in any Region (and the China partition's domain). */
const ownRegistry = (account: string) =>
  new RegExp(`^${account}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com(?:\\.cn)?$`);

/** Why `group` may not fetch `image`'s source, or undefined when it may. */
export const sourceRefusal = (image: ImageSpec, group: HostGroup, account: string): string | undefined => {
  if (image.kind === 's3') {
    const bucket = bucketOf(image.source);
    return group.allowedBuckets.includes(bucket)
      ? undefined
      : `bucket ${bucket} is not in host group ${group.name}'s allowedBuckets`;
  }
  const registry = registryOf(image.source);
  if (regex(FORBIDDEN_REGISTRY_PATTERN).test(registry))
    return `registry ${registry} is loopback, link-local, localhost or an IP literal: never allowed`;
  const allowed = group.allowedRegistries.some((entry) =>
    entry === OWN_REGISTRY ? ownRegistry(account).test(registry) : entry === registry,
  );
  return allowed ? undefined : `registry ${registry} is not in host group ${group.name}'s allowedRegistries`;
};

/** Whether `owner` (a snapshot's OwnerId) is one `group` allows. */
export const snapshotOwnerAllowed = (owner: string, group: HostGroup, account: string): boolean =>
  group.allowedSnapshotOwners.some((entry) => (entry === 'self' ? owner === account : entry === owner));
