import type { Ec2Simulator } from '../ec2/simulator';
import type { Ec2ResourceState } from './request-context';

/** The EC2 simulator's current state, as the local IAM reads it at the moment of a call. */
export const ec2ResourceState = (ec2: Ec2Simulator): Ec2ResourceState => ({
  instance: (id) => ec2.instance(id),
  volume: (id) => ec2.volume(id),
  // Only CreateSnapshots and ModifyInstanceAttribute with block devices read this: a scan is fine.
  attachedVolumes: (instanceId) =>
    ec2
      .volumes()
      .flatMap((volume) =>
        volume.attachment?.instanceId === instanceId
          ? [{ volumeId: volume.volumeId, device: volume.attachment.device }]
          : [],
      ),
  snapshot: (id) => ec2.snapshot(id),
  image: (id) => ec2.image(id),
  host: (id) => ec2.host(id),
  subnet: (id) => ec2.subnet(id),
});
