import { DescribeImagesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { callAws } from '../../shared/aws-errors';
import { collectPagesInChunks } from '../../shared/pagination';
import type { ImageOwnership } from '../domain/launch-policy';
import type { ShelvingEc2 } from './ec2';
import { FILTER_VALUES_MAX } from './ec2-mapping';

/**
 * Which AMIs are of the allowed owners. DescribeImages `Owners` takes the words the settings use
 * (self, amazon, aws-marketplace, aws-backup-vault, account IDs) and describes an image of anyone
 * else as no image (EC2 API reference, DescribeImages), so EC2 resolves `self`. Only the images
 * it leaves out are described again without `Owners`, to tell an image of another owner from one
 * that no longer exists. By the `image-id` filter: an unknown id is absent, not an error.
 */
export const imageOwners = (client: EC2Client): Pick<ShelvingEc2, 'describeImageOwners'> => {
  const visible = (imageIds: readonly string[], owners?: readonly string[]) =>
    collectPagesInChunks(imageIds, FILTER_VALUES_MAX, async (part, token) => {
      const page = await callAws('DescribeImages', () =>
        client.send(
          new DescribeImagesCommand({
            Filters: [{ Name: 'image-id', Values: [...part] }],
            ...(owners ? { Owners: [...owners] } : {}),
            ...(token ? { NextToken: token } : {}),
          }),
        ),
      );
      return {
        items: (page.Images ?? []).flatMap((image) => (image.ImageId ? [image.ImageId] : [])),
        nextToken: page.NextToken,
      };
    });
  return {
    async describeImageOwners(imageIds, allowedOwners) {
      const wanted = [...new Set(imageIds)];
      if (wanted.length === 0) return [];
      const allowed = new Set(await visible(wanted, allowedOwners));
      const others = wanted.filter((imageId) => !allowed.has(imageId));
      const foreign = others.length === 0 ? [] : await visible(others);
      return [
        ...[...allowed].map((imageId): ImageOwnership => ({ imageId, allowedOwner: true })),
        ...foreign.map((imageId): ImageOwnership => ({ imageId, allowedOwner: false })),
      ];
    },
  };
};
