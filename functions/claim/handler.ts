import { WARMBOOT, WARMBOOT_FACT } from '../catalog';
import { sdkPoolEc2, sdkPoolSsm } from '../pools/adapters/ec2';
import { dynamoPoolStore } from '../pools/adapters/store';
import { claimConfigSchema } from '../pools/config';
import { factPublisher } from '../shared/adapters/facts';
import type { Caller } from '../shared/caller';
import { loadConfig } from '../shared/config';
import { InvocationDeadline } from '../shared/deadline';
import { EventRegistry, route } from '../shared/event-registry';
import { createLambdaHandler } from '../shared/lambda';
import type { Runtime } from '../shared/runtime';
import { parseRequestServer, requestServerDetail } from './schemas';
import { type ClaimDeps, claimServer, resumeClaim } from './service';

/**
 * The claim function ("Request Server"): synchronous invoke or event. Returns the outcome; a
 * request nobody can serve (unknown or draining pool, no capacity anywhere) is a clear `failed`
 * outcome and a `Server Request Failed` fact, so an asynchronous (PutEvents) requester learns too.
 */
export const createClaimHandler = (runtime: Runtime) => {
  const config = loadConfig(claimConfigSchema, runtime.env);
  // Waits for a start or a personalization end before the Lambda timeout (service.ts).
  const deadline = new InvocationDeadline(runtime.clock);
  const deps: ClaimDeps = {
    store: dynamoPoolStore(runtime.clients.documents, config.POOLS_TABLE),
    ec2: sdkPoolEc2(runtime.clients.ec2, config.POOL_POLICY.allowedImageOwners),
    ssm: sdkPoolSsm(runtime.clients.ssm),
    facts: factPublisher(runtime),
    clock: runtime.clock,
    metrics: runtime.metrics,
    policy: config.POOL_POLICY,
    deadline,
  };
  const serve = async ({ id, detail, caller }: { id: string; detail: unknown; caller?: Caller }) => {
    const parsed = parseRequestServer(detail);
    if (parsed.kind === 'resume') return resumeClaim(deps, parsed.requestId);
    return claimServer(deps, parsed.request.requestId ?? id, parsed.request, caller);
  };
  const registry = new EventRegistry([
    route(WARMBOOT, 'Request Server', requestServerDetail, serve),
    // The pools function resumes a claim whose saga was interrupted.
    route(WARMBOOT_FACT, 'Request Server', requestServerDetail, serve),
  ]);
  return createLambdaHandler(registry, runtime, { deadline });
};
