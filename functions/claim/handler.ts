import { WARMBOOT, WARMBOOT_FACT } from '../catalog';
import type { ClientsWith } from '../shared/aws-clients';
import type { Caller } from '../shared/caller';
import { EventRegistry, route } from '../shared/event-registry';
import { createLambdaHandler } from '../shared/lambda';
import type { Runtime } from '../shared/runtime';
import { claimServer, resumeClaim } from './application/requests';
import { loadClaimConfig } from './config';
import { type ClaimDependencies, claimDependencies } from './dependencies';
import { parseRequestServer, requestServerDetail } from './schemas';

/**
 * The claim function's routes ("Request Server"): synchronous invoke or event. Answers the
 * outcome; a request nobody can serve (unknown or draining pool, no capacity anywhere) is a clear
 * `failed` outcome and a `Server Request Failed` fact, so an asynchronous (PutEvents) requester
 * learns too.
 */
export const createClaimRegistry = (deps: ClaimDependencies) => {
  const serve = async ({ id, detail, caller }: { id: string; detail: unknown; caller?: Caller }) => {
    const parsed = parseRequestServer(detail);
    if (parsed.kind === 'resume') return resumeClaim(deps, parsed.requestId);
    return claimServer(deps, parsed.request.requestId ?? id, parsed.request, caller);
  };
  return new EventRegistry([
    route(WARMBOOT, 'Request Server', requestServerDetail, serve),
    // The pools function resumes a claim whose saga was interrupted.
    route(WARMBOOT_FACT, 'Request Server', requestServerDetail, serve),
  ]);
};

export const createClaimHandler = (runtime: Runtime<ClientsWith<'ec2' | 'ssm'>>) => {
  // Waits for a start or a personalization end before the Lambda timeout (deps.deadline).
  const deps = claimDependencies(runtime, loadClaimConfig(runtime.env));
  return createLambdaHandler(createClaimRegistry(deps), runtime, { deadline: deps.deadline });
};
