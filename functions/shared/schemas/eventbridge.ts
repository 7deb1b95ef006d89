import * as z from 'zod';

/**
 * The EventBridge envelope, field for field the schema of Powertools parser
 * (`@aws-lambda-powertools/parser/schemas/eventbridge`), declared here because that module imports
 * `{ z }` from zod, which keeps all of zod (its locales included) in every bundle.
 */
export const eventBridgeEnvelopeSchema = z.object({
  version: z.string(),
  id: z.string(),
  source: z.string(),
  account: z.string(),
  time: z.iso.datetime(),
  region: z.string(),
  resources: z.array(z.string()),
  'detail-type': z.string(),
  detail: z.unknown(),
  'replay-name': z.string().optional(),
});
