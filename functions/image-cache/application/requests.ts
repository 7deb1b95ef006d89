import { isDeepStrictEqual } from 'node:util';
import type { Caller } from '../../shared/caller';
import { NotFoundError } from '../../shared/errors';
import type { ImageSpec } from '../config';
import type { ImageCacheDependencies } from '../dependencies';
import { sourceRefusal } from '../domain/sources';
import { FieldRefusal, RegistryVersionConflictError, SourceNotAllowedError } from '../errors';
import { hostGroupNamed, type PlanSummary, plan } from './plan';

export interface RegisteredImageAnswer {
  readonly imageId: string;
  /** The registry entry's version now: send it as `expectedVersion` to change the image. */
  readonly version: number;
  /** False: the same spec was registered already; nothing was written. */
  readonly changed: boolean;
}

/**
 * Writes the registry entry (security review H2): a new image id only if it is not registered
 * yet; a change only with `expectedVersion` equal to the stored version, which it bumps. The
 * same spec again is answered with its version and changes nothing (a retried request). The
 * source must be one that at least one host group allows; the item records who wrote it, when.
 */
export const registerImage = async (
  deps: ImageCacheDependencies,
  image: ImageSpec,
  request: { readonly expectedVersion?: number; readonly caller?: Caller },
): Promise<RegisteredImageAnswer> => {
  const refusals = deps.groups.map((group) => sourceRefusal(image, group, deps.account));
  if (refusals.every((refusal) => refusal !== undefined))
    throw new SourceNotAllowedError(
      'detail.image.source',
      refusals.length === 0 ? 'no host group is configured' : refusals.join('; '),
    );
  const write = {
    at: deps.clock.now(),
    via: request.caller?.via ?? 'unknown',
    ...(request.caller?.principal ? { principal: request.caller.principal } : {}),
  };
  const current = await deps.store.getRegisteredImage(image.id);
  if (current && isDeepStrictEqual(current.spec, image))
    return { imageId: image.id, version: current.version, changed: false };
  const expected = request.expectedVersion ?? 'absent';
  const conflict = (stored: number | undefined) =>
    new RegistryVersionConflictError(
      stored === undefined
        ? `image ${image.id} is not registered: leave out expectedVersion to register it`
        : `image ${image.id} is at version ${stored}${expected === 'absent' ? ' already' : `, not ${expected}`}: send expectedVersion ${stored} to change it`,
    );
  if ((current?.version ?? 'absent') !== expected) throw conflict(current?.version);
  const version = await deps.store.putImage(image, write, expected);
  if (version === false) throw conflict((await deps.store.getRegisteredImage(image.id))?.version);
  deps.logger.info('image registered', { imageId: image.id, version, ...write });
  return { imageId: image.id, version, changed: true };
};

/**
 * Pins an image on a group. `image` registers it in the same request, as Register Image does
 * but only for an administrator (the registry is admin-only); anyone may pin a registered image
 * whose source the group allows.
 */
export const pin = async (
  deps: ImageCacheDependencies,
  request: { readonly hostGroup: string; readonly imageId: string; readonly image?: ImageSpec },
  caller?: Caller,
): Promise<PlanSummary> => {
  const group = hostGroupNamed(deps, request.hostGroup);
  const { image, imageId } = request;
  if (image) {
    if (!caller?.admin)
      throw new FieldRefusal(
        'AdminRequestOnly',
        'detail.image',
        'registering an image is an administrative request: send Register Image by an IAM-authenticated invoke, then pin it by id',
      );
    await registerImage(deps, image, { ...(caller ? { caller } : {}) });
  }
  const registered = (await deps.store.getImages([imageId])).get(imageId);
  if (!registered)
    throw new NotFoundError(`image ${imageId} is not registered: send Register Image or include "image"`);
  const refusal = sourceRefusal(registered, group, deps.account);
  if (refusal) throw new SourceNotAllowedError(image ? 'detail.image.source' : 'detail.imageId', refusal);
  await deps.store.putPin(group.name, imageId, deps.clock.now());
  return plan(deps, group.name);
};

export const unpin = async (
  deps: ImageCacheDependencies,
  request: { readonly hostGroup: string; readonly imageId: string },
): Promise<PlanSummary> => {
  const group = hostGroupNamed(deps, request.hostGroup);
  await deps.store.deletePin(group.name, request.imageId);
  return plan(deps, group.name);
};
