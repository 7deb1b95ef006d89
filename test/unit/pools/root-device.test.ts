import { DescribeSubnetsCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { sdkPoolEc2 } from '../../../functions/pools/adapters/ec2';
import { createCloud } from '../local/ec2-harness';
import { spec } from './fixtures';

/**
 * A pool member's root is sized by mapping the AMI's own root device name. Ubuntu and RHEL AMIs
 * use `/dev/sda1`: a mapping for `/dev/xvda` there would add a second, empty volume and leave the
 * root at the AMI's 8 GiB (finding R7).
 */
describe('pool launches size the root the AMI actually has and require IMDSv2', () => {
  it.each([
    ['ubuntu-22.04', '/dev/sda1', [], 1],
    ['amazon-linux-2023', '/dev/xvda', ['public.ecr.aws/nginx/nginx:1.27'], 2],
  ])(
    '%s (root %s): one volume, the root, at the pool size; containers %j: hop limit %i',
    async (name, rootDeviceName, containerImages, hopLimit) => {
      const cloud = await createCloud();
      const imageId = cloud.ec2.registerImage({ name, rootSizeGiB: 8, rootDeviceName });
      const subnets = await cloud.run(() => cloud.ec2Client.send(new DescribeSubnetsCommand({})));
      const subnetId = subnets.Subnets?.[0]?.SubnetId ?? '';

      const launched = await cloud.run(() =>
        sdkPoolEc2(cloud.ec2Client, ['self']).launch({
          spec: spec({
            image: imageId,
            volumeSizeGiB: 40,
            initialization: { platform: 'linux', packages: [], containerImages, timeoutMinutes: 30 },
          }),
          imageId,
          subnetId,
          clientToken: `root-device-${name}`,
          tags: { 'warmboot:pools': 'true', 'warmboot:pool': 'linux-web' },
        }),
      );
      await cloud.settle();

      const volumes = cloud.ec2
        .volumes()
        .filter((volume) => volume.attachment?.instanceId === launched.instanceId);
      expect(volumes.map((volume) => [volume.attachment?.device, volume.size])).toEqual([
        [rootDeviceName, 40],
      ]);
      // IMDSv2 only (security review M2); one hop, two when the member runs containers (a bridge
      // network is one hop further from IMDS).
      expect(cloud.ec2.instance(launched.instanceId)?.metadataOptions).toEqual({
        httpTokens: 'required',
        httpPutResponseHopLimit: hopLimit,
        httpEndpoint: 'enabled',
      });
    },
  );
});
