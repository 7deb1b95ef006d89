/**
 * A scenario replays minutes of a real trace through every deployed function on the strict
 * cloud (IAM on every call, one execution environment per invocation): on a loaded 2-core machine
 * that took up to 113 s, close to the default limit, so it gets more room. A hang guard, not a
 * speed check.
 */
export const SCENARIO_TIMEOUT_MS = 600_000;
