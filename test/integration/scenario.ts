import { it } from 'vitest';
import type { LocalCloud } from '../../local/cloud';
import { localCloudPerTest, type TestCloudOptions } from '../support/local-cloud';

/**
 * A scenario replays minutes of a real trace through every deployed function on the strict
 * cloud (IAM on every call, one execution environment per invocation): on a loaded 2-core machine
 * that took up to 113 s, close to the default limit, so it gets more room. A hang guard, not a
 * speed check.
 */
const SCENARIO_TIMEOUT_MS = 600_000;

/**
 * A sandbox scenario as a test: a fresh strict cloud started with `options` (stopped after the
 * test), on which `body` runs the scenario and checks its summary.
 */
export const scenarioTest = (
  name: string,
  options: TestCloudOptions,
  body: (cloud: LocalCloud) => Promise<void>,
): void => {
  const startCloud = localCloudPerTest();
  it(name, async () => body(await startCloud(options)), SCENARIO_TIMEOUT_MS);
};
