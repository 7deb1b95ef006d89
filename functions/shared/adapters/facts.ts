import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { WARMBOOT_FACT } from '../../catalog';
import { callAws } from '../aws-errors';
import { ConfigError, DependencyError } from '../errors';

/** A fact warmboot publishes about itself (image warmed, server ready, instance unshelved…). */
export interface Fact {
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
  readonly resources?: readonly string[];
}

export interface FactPublisher {
  publish(facts: readonly Fact[]): Promise<void>;
}

/** The variable the stack sets to the facts bus's name (infra/function.ts). */
export const FACTS_BUS_ENV = 'FACTS_BUS_NAME';

/** PutEvents accepts at most 10 entries per call (EventBridge API reference, PutEvents). */
const PUT_EVENTS_MAX = 10;

/**
 * Publishes onto the facts bus, with source `warmboot.fact`. The bus's policy lets only
 * warmboot's roles put events there, and each role only the detail-types its catalog entry
 * publishes (infra/buses.ts, infra/function.ts), so a consumer of a fact knows warmboot sent it.
 */
const eventBridgeFacts = (client: EventBridgeClient, busName: string): FactPublisher => ({
  async publish(facts) {
    for (let start = 0; start < facts.length; start += PUT_EVENTS_MAX) {
      const batch = facts.slice(start, start + PUT_EVENTS_MAX);
      const output = await callAws('PutEvents', () =>
        client.send(
          new PutEventsCommand({
            Entries: batch.map((fact) => ({
              EventBusName: busName,
              Source: WARMBOOT_FACT,
              DetailType: fact.detailType,
              Detail: JSON.stringify(fact.detail),
              Resources: fact.resources ? [...fact.resources] : undefined,
            })),
          }),
        ),
      );
      if ((output.FailedEntryCount ?? 0) > 0) {
        const failed = (output.Entries ?? []).filter((entry) => entry.ErrorCode);
        throw new DependencyError(
          `PutEvents rejected ${failed.length} of ${batch.length} facts: ${failed.map((entry) => entry.ErrorCode).join(', ')}`,
        );
      }
    }
  },
});

/**
 * The function's fact publisher, on the bus named by FACTS_BUS_NAME. A function without it fails
 * at cold start naming the variable, instead of publishing to a bus nobody listens on.
 */
export const factPublisher = (runtime: {
  readonly clients: { readonly events: EventBridgeClient };
  readonly env: Readonly<Record<string, string | undefined>>;
}): FactPublisher => {
  const busName = runtime.env[FACTS_BUS_ENV];
  if (busName === undefined || busName.length === 0) {
    throw new ConfigError(FACTS_BUS_ENV, 'required: the name of the facts bus');
  }
  return eventBridgeFacts(runtime.clients.events, busName);
};
