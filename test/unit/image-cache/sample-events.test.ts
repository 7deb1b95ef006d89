import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ADMIN_REQUEST_TYPES, FUNCTIONS } from '../../../functions/catalog';
import { ImageCacheService } from '../../../functions/image-cache/application/image-cache';
import { createImageCacheRegistry } from '../../../functions/image-cache/handler';
import {
  pinImageDetail,
  planCacheDetail,
  registerImageDetail,
  unpinImageDetail,
} from '../../../functions/image-cache/schemas';
import { createPlacementRegistry } from '../../../functions/placement/handler';
import { advisePlacementDetail } from '../../../functions/placement/schemas';
import { matchesPattern } from '../../../functions/shared/event-pattern';
import { sampleEvent } from '../../support/events';

const read = (path: string) => sampleEvent(path.replace(/^events\//, ''));

const SAMPLES = {
  'events/image-cache/register-image.json': registerImageDetail,
  'events/image-cache/pin-image.json': pinImageDetail,
  'events/image-cache/unpin-image.json': unpinImageDetail,
  'events/image-cache/plan-cache.json': planCacheDetail,
  'events/placement/advise-placement.json': advisePlacementDetail,
} as const;

describe('sample console events', () => {
  it('has a sample for every file in events/image-cache and events/placement, and no more', () => {
    const onDisk = ['image-cache', 'placement'].flatMap((folder) =>
      readdirSync(new URL(`../../../events/${folder}`, import.meta.url)).map(
        (file) => `events/${folder}/${file}`,
      ),
    );
    expect(onDisk.sort()).toEqual(Object.keys(SAMPLES).sort());
  });

  it.each(Object.entries(SAMPLES))(
    '%s parses with its handler schema and matches the catalog rule',
    (path, schema) => {
      const event = read(path);
      expect(schema.safeParse(event.detail).error).toBeUndefined();
      const owner = path.includes('placement') ? FUNCTIONS.placement : FUNCTIONS.imageCache;
      // An administrative request is a direct invoke, never delivered by a rule.
      const delivered = owner.patterns.some(({ pattern }) => matchesPattern(event, pattern));
      expect(delivered).toBe(!ADMIN_REQUEST_TYPES.has(event['detail-type']));
    },
  );

  it('is routed (not ignored) by the registries', () => {
    const service = {} as ImageCacheService;
    const routed = createImageCacheRegistry(() => service).accepted.map((route) => route.detailType);
    expect(routed).toEqual(
      expect.arrayContaining(['Register Image', 'Pin Image', 'Unpin Image', 'Plan Cache']),
    );
    const placement = createPlacementRegistry({
      groups: [],
      store: {} as never,
      recentAdvice: {} as never,
      facts: {} as never,
      clock: {} as never,
    });
    expect(placement.accepted.map((route) => route.detailType)).toEqual(['Advise Placement']);
  });

  it('rejects a pin whose image id carries shell metacharacters, naming the field', () => {
    const event = read('events/image-cache/pin-image.json');
    const hostile = { ...(event.detail as object), imageId: 'sdxl;reboot' };
    expect(pinImageDetail.safeParse(hostile).error?.issues[0]?.path).toEqual(['imageId']);
  });
});
