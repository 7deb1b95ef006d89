import { WarmbootError } from '../../shared/errors';
import type { ItemError } from '../../shared/results';

/**
 * What a replacement may be launched with (security review C2, issue 15): the shelving role may
 * pass only the roles of the instance profiles the settings name, and launch only AMIs of the
 * allowed owners. IAM says the same (infra/capabilities/shelving.ts); this says it first, so a
 * Shelve is refused before anything is stopped instead of leaving a record no launch can serve,
 * and a relaunch is refused with a reason instead of an AccessDenied.
 */

interface LaunchPolicy {
  /** `shelving.instanceProfiles` (by name). */
  readonly instanceProfiles: readonly { readonly name: string }[];
  /** `shelving.allowedImageOwners`. */
  readonly allowedImageOwners: readonly string[];
}

/** An AMI the account can see, and whether one of `allowedImageOwners` owns it (DescribeImages `Owners`). */
export interface ImageOwnership {
  readonly imageId: string;
  readonly allowedOwner: boolean;
}

/** What a launch uses that the policy limits: the recorded configuration, or one RunInstances. */
interface LaunchIdentity {
  readonly imageId: string;
  readonly iamInstanceProfileArn?: string;
}

/** A launch the policy refuses: final for the record until the settings or the record change. */
export class LaunchNotAllowedError extends WarmbootError {
  constructor(refusal: ItemError) {
    super(refusal.code, refusal.message);
    this.name = 'LaunchNotAllowedError';
  }
}

/**
 * An instance profile's name from its ARN (`arn:aws:iam::<account>:instance-profile/<path><name>`):
 * the last segment, unique in the account whatever the path (IAM User Guide, "IAM identifiers").
 */
const instanceProfileName = (arn: string): string => arn.slice(arn.lastIndexOf('/') + 1);

/**
 * Why the policy refuses this launch, or undefined. `images` are the AMIs DescribeImages showed;
 * an AMI it did not show at all (deregistered) is left to RunInstances, which refuses it as not
 * found, as before.
 */
export const launchRefusal = (
  launch: LaunchIdentity,
  images: readonly ImageOwnership[],
  policy: LaunchPolicy,
): ItemError | undefined => {
  if (launch.iamInstanceProfileArn !== undefined) {
    const name = instanceProfileName(launch.iamInstanceProfileArn);
    if (!policy.instanceProfiles.some((profile) => profile.name === name)) {
      const named = policy.instanceProfiles.map((profile) => profile.name).join(', ') || 'none';
      return {
        code: 'InstanceProfileNotAllowed',
        message: `instance profile ${name} is not in shelving.instanceProfiles (${named}): warmboot may pass only the roles of the profiles named there, so it could not launch the replacement`,
      };
    }
  }
  if (images.some((image) => image.imageId === launch.imageId && !image.allowedOwner)) {
    return {
      code: 'ImageOwnerNotAllowed',
      message: `image ${launch.imageId} is not owned by one of shelving.allowedImageOwners (${policy.allowedImageOwners.join(', ')}): the replacement would be launched from it`,
    };
  }
  return undefined;
};
