import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { DynamoImageCacheStore } from '../../functions/image-cache/adapters/store';
import type { HostGroupInput, ImageSpec } from '../../functions/image-cache/config';
import type { LocalCloud } from '../cloud';
import { ensureSsmManagedProfile } from '../iam/instance-profiles';

export interface ImageCacheScenarioOptions {
  /** Must be one of the groups in the cloud's HOST_GROUPS setting. */
  readonly hostGroup: HostGroupInput;
  /** Hosts per AZ; two AZs by default. */
  readonly hostsPerAz?: number;
  readonly availabilityZones?: readonly string[];
  /** Images warmboot may fetch; they are published on the simulated image source too. */
  readonly images: readonly ImageSpec[];
  readonly pins?: readonly string[];
  /** Virtual time to run (popularity is fed meanwhile by whoever replays launches). */
  readonly durationMs: number;
  /** How often the warm ratio is sampled. */
  readonly sampleEveryMs?: number;
}

export interface ImageCacheScenarioSummary {
  readonly hostGroup: string;
  readonly hosts: number;
  readonly samples: readonly {
    readonly atMs: number;
    readonly warmRatio: number;
    readonly cachedPairs: number;
  }[];
  readonly fetchCommands: number;
  readonly evictCommands: number;
  readonly failedFetches: number;
  readonly finalWarmImages: Readonly<Record<string, readonly string[]>>;
}

/**
 * The image cache on a simulated fleet, for the sandbox: a host group in two AZs, the given
 * images registered and pinned, schedules running, while popularity (fed by the popularity
 * scenario's trace replay) nudges the planner. Expects `imageCache` and `placement` deployed.
 */
export async function runImageCacheScenario(
  cloud: LocalCloud,
  options: ImageCacheScenarioOptions,
): Promise<ImageCacheScenarioSummary> {
  const group = options.hostGroup.name;
  const zones = options.availabilityZones ?? cloud.ec2.availabilityZones.slice(0, 2);
  const ec2 = cloud.runtime('imageCache').clients.ec2;
  for (const image of options.images)
    cloud.ssm.imageSource.add(image.source, {
      bytes: image.sizeBytes,
      digest: image.digest,
    });
  const hostImage = cloud.ec2.registerImage({ name: `${group}-host`, rootSizeGiB: 8 });
  // Without a role carrying AmazonSSMManagedInstanceCore the hosts' SSM agents never register.
  const profile = ensureSsmManagedProfile(cloud.instanceProfiles);
  for (const zone of zones)
    await cloud.run(() =>
      ec2.send(
        new RunInstancesCommand({
          ImageId: hostImage,
          InstanceType: 'g5.xlarge',
          MinCount: options.hostsPerAz ?? 2,
          MaxCount: options.hostsPerAz ?? 2,
          Placement: { AvailabilityZone: zone },
          IamInstanceProfile: { Name: profile },
          TagSpecifications: [
            {
              ResourceType: 'instance',
              Tags: [
                { Key: 'warmboot:host-group', Value: group },
                { Key: 'warmboot:image-cache', Value: 'true' },
              ],
            },
          ],
        }),
      ),
    );
  for (const image of options.images) await cloud.adminRequest('Register Image', { image });
  for (const imageId of options.pins ?? [])
    await cloud.putEvent({
      source: 'warmboot',
      detailType: 'Pin Image',
      detail: { hostGroup: group, imageId },
    });
  cloud.startSchedules();

  const store = new DynamoImageCacheStore(cloud.documents, cloud.tables.imageCache);
  const samples: { atMs: number; warmRatio: number; cachedPairs: number }[] = [];
  const step = options.sampleEveryMs ?? 5 * 60_000;
  const startedAt = cloud.clock.now();
  for (let elapsed = 0; elapsed < options.durationMs; elapsed += step) {
    await cloud.settleFor(step);
    const state = await cloud.run(() => store.loadGroup(group));
    const live = state.entries.filter((entry) => entry.state !== 'failed');
    const cached = live.filter((entry) => entry.state === 'cached').length;
    samples.push({
      atMs: cloud.clock.now() - startedAt,
      warmRatio: live.length === 0 ? 1 : cached / live.length,
      cachedPairs: cached,
    });
  }
  const state = await cloud.run(() => store.loadGroup(group));
  const invocations = cloud.ssm.invocations();
  return {
    hostGroup: group,
    hosts: state.hosts.length,
    samples,
    fetchCommands: invocations.filter((item) => item.documentName === 'Warmboot-ImageFetch').length,
    evictCommands: invocations.filter((item) => item.documentName === 'Warmboot-ImageRemove').length,
    failedFetches: invocations.filter(
      (item) => item.documentName === 'Warmboot-ImageFetch' && item.status !== 'Success',
    ).length,
    finalWarmImages: Object.fromEntries(
      state.hosts.map((host) => [
        host.instanceId,
        state.entries
          .filter((entry) => entry.instanceId === host.instanceId && entry.state === 'cached')
          .map((entry) => entry.imageId),
      ]),
    ),
  };
}
