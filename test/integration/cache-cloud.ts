import { expect } from 'vitest';
import { DynamoImageCacheStore, type GroupState } from '../../functions/image-cache/adapters/store';
import type { PlacementAdvice } from '../../functions/placement/domain/advise';
import type { LocalCloud } from '../../local/cloud';
import { sampleEvent } from '../support/events';
import { localCloudPerTest, type TestCloudOptions } from '../support/local-cloud';

/** What the image-cache and placement suites share: one host group and the sample image. */

export const GiB = 1024 ** 3;
export const GROUP = 'gpu-inference';

export const register = sampleEvent('image-cache/register-image.json');
export const pin = sampleEvent('image-cache/pin-image.json');
export const advise = sampleEvent('placement/advise-placement.json');
export const image = register.detail.image as {
  id: string;
  source: string;
  digest: string;
  sizeBytes: number;
};

/**
 * Like localCloudPerTest (call it at the top of a test file): starts a cloud of the functions named
 * with one host group, GROUP (a 20 GiB cache, no minimum residency, and what `group` adds), and the
 * sample image at its source.
 */
export const cacheCloudPerTest = () => {
  const startCloud = localCloudPerTest();
  return async (
    group: Record<string, unknown>,
    functions: TestCloudOptions['functions'],
    settings: Record<string, string> = {},
  ): Promise<LocalCloud> => {
    const hostGroup = {
      name: GROUP,
      cacheBytes: 20 * GiB,
      cacheDirectory: '/var/cache/warmboot',
      minResidencyMs: 0,
      ...group,
    };
    const cloud = await startCloud({
      functions,
      settings: { HOST_GROUPS: JSON.stringify([hostGroup]), ...settings },
    });
    cloud.ssm.imageSource.add(image.source, { bytes: image.sizeBytes, digest: image.digest });
    return cloud;
  };
};

/** A synchronous invoke of the placement function with the sample event's envelope. */
export const advisePlacement = async (
  local: LocalCloud,
  detail: Record<string, unknown>,
): Promise<PlacementAdvice> => {
  const response = (await local.invoke('placement', {
    version: '0',
    id: `00000000-0000-4000-8000-${String(local.clock.now() % 1e12).padStart(12, '0')}`,
    source: 'warmboot',
    'detail-type': advise['detail-type'],
    account: '123456789012',
    time: new Date(local.clock.now()).toISOString(),
    region: 'us-east-1',
    resources: [],
    detail,
  })) as { status: string; result: PlacementAdvice };
  expect(response.status).toBe('handled');
  return response.result;
};

/** GROUP's cache state as the image-cache table holds it. */
export const groupState = (local: LocalCloud): Promise<GroupState> =>
  local.run(() => new DynamoImageCacheStore(local.documents, local.tables.imageCache).loadGroup(GROUP));
