import { readFileSync } from 'node:fs';
import type { EventEnvelope } from '../../local/bus';

const readJson = (url: URL): unknown => JSON.parse(readFileSync(url, 'utf8'));

/**
 * A sample console test event of `events/` (a full EventBridge envelope, as an operator pastes it
 * into the console), by its path there: `sampleEvent('shelving/shelve.json')`. `T` is the part of
 * it a test reads, when that is narrower or wider than the envelope.
 */
export const sampleEvent = <T = EventEnvelope>(path: string): T =>
  readJson(new URL(`../../events/${path}`, import.meta.url)) as T;

/** An event as AWS publishes it, from AWS's own documentation (`test/fixtures/aws/README.md`). */
export const awsSampleEvent = <T = EventEnvelope>(file: string): T =>
  readJson(new URL(`../fixtures/aws/${file}`, import.meta.url)) as T;
