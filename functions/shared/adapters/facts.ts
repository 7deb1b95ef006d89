import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { callAws } from '../aws-errors';
import { DependencyError } from '../errors';

export const WARMBOOT_SOURCE = 'warmboot';

/** A fact warmboot publishes about itself (image warmed, server ready, instance unshelved…). */
export interface Fact {
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
  readonly resources?: readonly string[];
}

export interface FactPublisher {
  publish(facts: readonly Fact[]): Promise<void>;
}

/** PutEvents accepts at most 10 entries per call (EventBridge API reference, PutEvents). */
const PUT_EVENTS_MAX = 10;

export const eventBridgeFacts = (client: EventBridgeClient, busName = 'default'): FactPublisher => ({
  async publish(facts) {
    for (let start = 0; start < facts.length; start += PUT_EVENTS_MAX) {
      const batch = facts.slice(start, start + PUT_EVENTS_MAX);
      const output = await callAws('PutEvents', () =>
        client.send(
          new PutEventsCommand({
            Entries: batch.map((fact) => ({
              EventBusName: busName,
              Source: WARMBOOT_SOURCE,
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
