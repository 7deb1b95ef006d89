import { RULE_DELIVERY_ALIAS, WARMBOOT } from '../catalog';
import { isRequestSource } from './caller';
import { eventBridgeEnvelopeSchema } from './schemas/eventbridge';

/**
 * Which events a function accepts, decided on the envelope before anything else runs (security
 * review M5). EventBridge does not tell a function who put an event, and an event a rule delivers
 * looks exactly like one passed to `lambda:Invoke`; what a function can know for certain is how it
 * was invoked and where it runs:
 *
 * - `context.invokedFunctionArn` is the ARN the caller invoked, with its qualifier (Lambda
 *   developer guide, "Using the Lambda context object": "Indicates if the invoker specified a
 *   version number or alias"). Every rule and schedule targets the `rules` alias
 *   (infra/function.ts), so an invocation through that alias is a rule delivery, and any other
 *   (the unqualified function: console test events, `aws lambda invoke`) is a direct invoke. A
 *   direct invoke may carry only an operator request this function serves (source `warmboot`),
 *   never an `aws.*` event, a schedule or a fact: those come only through rules, from buses where
 *   only AWS, and warmboot's own roles, can put them. Invoking the alias needs `lambda:InvokeFunction`
 *   on `function:<name>:rules`, which a grant on the function's unqualified ARN does not give (Lambda
 *   developer guide, "Fine-tuning the Resources and Conditions sections of policies": a function,
 *   version or alias ARN each names its own resource); a grant on `function:<name>:*`, a wider
 *   pattern or `*` does, and whoever holds one can still pass the alias any event of this account
 *   and Region. That is what the check cannot see, and the README says so.
 * - The account and Region of that ARN are the function's own. An event of another account or
 *   Region (a forwarded event, or a forged envelope) is refused. The rules match only the own
 *   account too (functions/catalog.ts `deployedPattern`); this is the second fence.
 *
 * A refusal names the envelope field; the event is not handled, not remembered by idempotency and
 * not reported back as a fact (a caller that may not send it must not make warmboot publish).
 */

export interface Invocation {
  readonly account: string;
  readonly region: string;
  /** Invoked through the rule alias: an EventBridge rule (or schedule) delivered the event. */
  readonly ruleDelivery: boolean;
}

export interface EnvelopeRefusal {
  readonly status: 'rejected';
  readonly error: { readonly code: 'EnvelopeRefused'; readonly field: string; readonly message: string };
}

/** `arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]` */
const FUNCTION_ARN =
  /^arn:[a-z-]+:lambda:([a-z0-9-]+):(\d{12}):function:([A-Za-z0-9_-]+)(?::([A-Za-z0-9$_-]+))?$/;

/** Where and how the function was invoked, from the ARN Lambda puts in the context. */
export const invocationOf = (invokedFunctionArn: unknown): Invocation | undefined => {
  if (typeof invokedFunctionArn !== 'string') return undefined;
  const match = FUNCTION_ARN.exec(invokedFunctionArn);
  if (!match) return undefined;
  const [, region, account, , qualifier] = match;
  return {
    account: account as string,
    region: region as string,
    ruleDelivery: qualifier === RULE_DELIVERY_ALIAS,
  };
};

const refuse = (field: string, message: string): EnvelopeRefusal => ({
  status: 'rejected',
  error: { code: 'EnvelopeRefused', field, message },
});

/**
 * Undefined when the function may handle the event; otherwise the refusal, naming the field. An
 * event that is not an EventBridge envelope at all passes here and is rejected by the registry,
 * which names the missing field. `requestTypes`: the operator requests the function serves.
 */
export const checkEnvelope = (
  event: unknown,
  invokedFunctionArn: unknown,
  requestTypes: ReadonlySet<string>,
): EnvelopeRefusal | undefined => {
  const invocation = invocationOf(invokedFunctionArn);
  if (!invocation) {
    return refuse(
      'context.invokedFunctionArn',
      `not a Lambda function ARN (${String(invokedFunctionArn)}): the invocation cannot be placed`,
    );
  }
  if (!eventBridgeEnvelopeSchema.safeParse(event).success) return undefined;
  const envelope = event as Record<string, unknown>;
  if (envelope.account !== invocation.account) {
    return refuse(
      'account',
      `event of account ${envelope.account}; this function serves account ${invocation.account} only`,
    );
  }
  if (envelope.region !== invocation.region) {
    return refuse(
      'region',
      `event of Region ${envelope.region}; this function serves Region ${invocation.region} only`,
    );
  }
  if (invocation.ruleDelivery) return undefined;
  if (!isRequestSource(envelope.source)) {
    return refuse(
      'source',
      `a direct invoke may carry only operator requests (source ${WARMBOOT}), not ${String(envelope.source)}: ` +
        'AWS events, schedules and facts arrive only through EventBridge rules',
    );
  }
  const detailType = envelope['detail-type'];
  if (typeof detailType !== 'string' || !requestTypes.has(detailType)) {
    return refuse(
      'detail-type',
      `${String(detailType)} is not a request this function serves (${[...requestTypes].sort().join(', ')})`,
    );
  }
  return undefined;
};
