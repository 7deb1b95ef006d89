import { z } from 'zod';
import {
  availabilityZoneSchema,
  HOSTNAME_PATTERN,
  imageRefSchema,
  instanceTypeSchema,
  LINUX_USER_PATTERN,
  OWNER_TAG_KEY_PATTERN,
  OWNER_TAG_VALUE_PATTERN,
  POOL_DOCUMENT_NAME_PATTERN,
  poolNameSchema,
  regex,
  SAFE_PARAMETER_VALUE_PATTERN,
  SSH_PUBLIC_KEY_PATTERN,
} from '../pools/config';
import { documentNamed } from '../pools/documents';
import { parseOrThrow } from '../shared/event-registry';

export const requestIdSchema = z.string().regex(/^[A-Za-z0-9-]{1,64}$/);

export const personalizationSchema = z.object({
  hostname: z.string().regex(regex(HOSTNAME_PATTERN)).optional(),
  sshPublicKey: z.string().regex(regex(SSH_PUBLIC_KEY_PATTERN)).optional(),
  sshUser: z.string().regex(regex(LINUX_USER_PATTERN)).optional(),
  /**
   * A further warmboot-deployed pool document. Every value must be safe for any document
   * (SAFE_PARAMETER_VALUE_PATTERN: no metacharacters, no `..`) and, for a document warmboot
   * deploys, match that parameter's own allowedPattern — the pattern SSM checks again.
   */
  document: z
    .object({
      name: z.string().regex(regex(POOL_DOCUMENT_NAME_PATTERN)),
      parameters: z.record(
        z.string().regex(/^[A-Za-z0-9]{1,64}$/),
        z.array(z.string().regex(regex(SAFE_PARAMETER_VALUE_PATTERN))).max(20),
      ),
    })
    .superRefine(({ name, parameters }, context) => {
      const document = documentNamed(name);
      if (!document) return; // the claim refuses an unknown document by name, before any AWS call
      for (const [parameter, values] of Object.entries(parameters)) {
        const allowed = document.parameters[parameter]?.allowedPattern;
        if (allowed === undefined) {
          context.addIssue({
            code: 'custom',
            path: ['parameters', parameter],
            message: `unknown parameter for ${name}`,
          });
          continue;
        }
        for (const [index, value] of values.entries()) {
          if (!regex(allowed).test(value)) {
            context.addIssue({
              code: 'custom',
              path: ['parameters', parameter, index],
              message: `must match ${allowed}`,
            });
          }
        }
      }
    })
    .optional(),
});

/** `warmboot` / Request Server: a new request. */
export const serverRequestSchema = z
  .object({
    requestId: requestIdSchema.optional(),
    pool: poolNameSchema.optional(),
    image: imageRefSchema.optional(),
    instanceType: instanceTypeSchema.optional(),
    availabilityZone: availabilityZoneSchema.optional(),
    /** The only tags the server gets at hand-over: the requester names its owner, nobody else. */
    ownerTags: z
      .record(
        z.string().regex(regex(OWNER_TAG_KEY_PATTERN)),
        z.string().regex(regex(OWNER_TAG_VALUE_PATTERN)),
      )
      .refine((tags) => Object.keys(tags).length >= 1 && Object.keys(tags).length <= 40, {
        message: 'between 1 and 40 owner tags',
      }),
    personalization: personalizationSchema.optional(),
  })
  .refine((request) => request.pool !== undefined || request.image !== undefined, {
    message: 'give a pool or an image',
    path: ['pool'],
  });
export type ServerRequest = z.infer<typeof serverRequestSchema>;

/** Request Server with `resume`: the pools function (`warmboot.fact`) finished a claim's cold launch. */
export const resumeClaimSchema = z.object({ requestId: requestIdSchema, resume: z.literal(true) });

/** The route's envelope check; `parseRequestServer` then applies the schema that fits, naming fields. */
export const requestServerDetail = z.looseObject({ resume: z.literal(true).optional() });

export const parseRequestServer = (
  detail: unknown,
):
  | { readonly kind: 'resume'; readonly requestId: string }
  | { readonly kind: 'request'; readonly request: ServerRequest } => {
  const resume =
    typeof detail === 'object' && detail !== null && (detail as { resume?: unknown }).resume === true;
  if (resume)
    return { kind: 'resume', requestId: parseOrThrow(resumeClaimSchema, detail, 'detail').requestId };
  return { kind: 'request', request: parseOrThrow(serverRequestSchema, detail, 'detail') };
};
