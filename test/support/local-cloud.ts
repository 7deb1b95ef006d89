import { afterEach, inject } from 'vitest';
import type { FunctionId } from '../../functions/catalog';
import type { EventEnvelope } from '../../local/bus';
import { LocalCloud, type LocalCloudOptions } from '../../local/cloud';

/** What a test chooses of its cloud: the DynamoDB Local is always the run's shared one. */
export type TestCloudOptions = Omit<LocalCloudOptions, 'dynamodbEndpoint'>;

/**
 * A local cloud on the DynamoDB Local the test run shares (test/integration/global-setup.ts), which
 * the caller stops.
 */
export const startLocalCloud = (options: TestCloudOptions): Promise<LocalCloud> =>
  LocalCloud.start({ dynamodbEndpoint: inject('dynamodbEndpoint'), ...options });

/**
 * One local cloud at a time per test: registers the `afterEach` that stops the test's cloud (even
 * when the test failed) and returns what starts it; starting another stops the one before. Call it
 * at the top of a test file.
 */
export const localCloudPerTest = (): ((options: TestCloudOptions) => Promise<LocalCloud>) => {
  let cloud: LocalCloud | undefined;
  afterEach(async () => {
    await cloud?.stop();
    cloud = undefined;
  });
  return async (options) => {
    await cloud?.stop();
    // Stopped: the afterEach must not stop it again if this start fails.
    cloud = undefined;
    cloud = await startLocalCloud(options);
    return cloud;
  };
};

/** An event's `time` as EventBridge writes it: to the second (`2026-01-05T08:00:00Z`). */
const eventTime = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * A console sample event sent as the operator sends it, by a direct invoke of the function: the
 * sample's envelope with its own `id`, the cloud clock's `time` and this detail.
 */
export const invokeSample = (
  local: LocalCloud,
  functionId: FunctionId,
  sample: EventEnvelope | Record<string, unknown>,
  event: { readonly id: string; readonly detail: Record<string, unknown> },
): Promise<unknown> =>
  local.invoke(functionId, {
    ...sample,
    id: event.id,
    time: eventTime(local.clock.now()),
    detail: event.detail,
  });

/** A warmboot request (a console sample, or one like it) put on the request bus, as an operator puts it. */
export const putRequest = (
  local: LocalCloud,
  event: { readonly 'detail-type': string; readonly detail: Record<string, unknown> },
): Promise<EventEnvelope> =>
  local.putEvent({ source: 'warmboot', detailType: event['detail-type'], detail: event.detail });
