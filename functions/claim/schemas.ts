import * as z from 'zod';
import {
  availabilityZoneSchema,
  imageRefSchema,
  instanceTypeSchema,
  ownerTagKeySchema,
  plainRecord,
  poolNameSchema,
} from '../pools/config';
import { documentNamed, PERSONALIZE_DOCUMENT } from '../pools/documents';
import {
  HOSTNAME_PATTERN,
  LINUX_USER_PATTERN,
  MAX_SECRET_REFERENCES,
  OWNER_TAG_VALUE_PATTERN,
  POOL_DOCUMENT_NAME_PATTERN,
  SAFE_PARAMETER_VALUE_PATTERN,
  SECRET_REFERENCE_LIST_PATTERN,
  SSH_PUBLIC_KEY_PATTERN,
} from '../pools/patterns';
import { regex } from '../shared/aws-ids';
import type { Caller } from '../shared/caller';
import { ValidationError } from '../shared/errors';
import { parseOrThrow } from '../shared/event-registry';
import { invalidDocumentParameter } from '../shared/ssm-document';
import { foreignSecretReference, secretFileName, secretReferences } from './domain/secret-references';

export const requestIdSchema = z.string().regex(/^[A-Za-z0-9-]{1,64}$/);

/**
 * Users a requester may not put its key on: the superuser (root, or the Administrator account of a
 * Windows server), so a claimed server is never a root foothold (security review H5).
 */
export const PRIVILEGED_USERS: ReadonlySet<string> = new Set(['root', 'administrator']);

/** An RSA key of 16,384 bits is about 2.8 KB in OpenSSH form; anything near 16 KB is no key. */
export const SSH_PUBLIC_KEY_MAX_LENGTH = 16 * 1024;

/** A bound on one value: ten references to names of up to ~780 characters each. */
const SECRET_LIST_MAX_LENGTH = 8 * 1024;
const SAFE_OR_SECRET = `must match ${SAFE_PARAMETER_VALUE_PATTERN}, or be {{ssm-secure:…}} references (${SECRET_REFERENCE_LIST_PATTERN}): pass a secret as a reference to a SecureString parameter, never as a value`;
const isSafeOrSecretList = (value: string): boolean =>
  regex(SAFE_PARAMETER_VALUE_PATTERN).test(value) || regex(SECRET_REFERENCE_LIST_PATTERN).test(value);

export const personalizationSchema = z.object({
  hostname: z.string().max(253).regex(regex(HOSTNAME_PATTERN)).optional(),
  sshPublicKey: z.string().max(SSH_PUBLIC_KEY_MAX_LENGTH).regex(regex(SSH_PUBLIC_KEY_PATTERN)).optional(),
  sshUser: z
    .string()
    .regex(regex(LINUX_USER_PATTERN))
    .refine((user) => !PRIVILEGED_USERS.has(user.toLowerCase()), {
      message: 'must not be a superuser (root, Administrator): name an unprivileged user',
    })
    .optional(),
  /**
   * A further warmboot-deployed pool document. Every value must be safe for any document
   * (SAFE_PARAMETER_VALUE_PATTERN: no metacharacters, no `..`) or a list of secret references
   * (SECRET_REFERENCE_LIST_PATTERN: a secret is never a value, security review M6) and, for a
   * document warmboot deploys, match that parameter's own allowedPattern — the pattern SSM
   * checks again. Whose secrets a request may name is the caller's (checkNamedDocument).
   */
  document: z
    .object({
      name: z.string().regex(regex(POOL_DOCUMENT_NAME_PATTERN)),
      parameters: plainRecord(
        z.string().regex(/^[A-Za-z0-9]{1,64}$/),
        z.array(z.string().max(SECRET_LIST_MAX_LENGTH).refine(isSafeOrSecretList, SAFE_OR_SECRET)).max(20),
      ).refine((parameters) => Object.keys(parameters).length <= 20, {
        message: 'at most 20 parameters',
      }),
    })
    .superRefine(({ parameters }, context) => {
      const references = secretReferences(parameters);
      if (references.length > MAX_SECRET_REFERENCES) {
        context.addIssue({
          code: 'custom',
          path: ['parameters'],
          message: `at most ${MAX_SECRET_REFERENCES} secret references`,
        });
      }
      const files = new Set<string>();
      for (const { parameter, name } of references) {
        const file = secretFileName(name);
        if (files.has(file)) {
          context.addIssue({
            code: 'custom',
            path: ['parameters', parameter],
            message: `two secrets end in ${file}: the host would install both as the same file`,
          });
        }
        files.add(file);
      }
    })
    .superRefine(({ name, parameters }, context) => {
      const document = documentNamed(name);
      if (!document) return; // the claim refuses an unknown document by name, before any AWS call
      for (const [parameter, values] of Object.entries(parameters)) {
        const allowed = Object.hasOwn(document.parameters, parameter)
          ? document.parameters[parameter]?.allowedPattern
          : undefined;
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
    ownerTags: plainRecord(ownerTagKeySchema, z.string().regex(regex(OWNER_TAG_VALUE_PATTERN))).refine(
      (tags) => Object.keys(tags).length >= 1 && Object.keys(tags).length <= 40,
      {
        message: 'between 1 and 40 owner tags',
      },
    ),
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

/** The personalization document's parameters, validated with the document's own allowedPatterns. */
export const personalizeParameters = (request: ServerRequest, platform: string) => {
  const personalize = documentNamed(PERSONALIZE_DOCUMENT);
  const parameters: Record<string, string[]> = {
    platform: [platform],
    hostname: [request.personalization?.hostname ?? ''],
    sshPublicKey: [request.personalization?.sshPublicKey ?? ''],
    sshUser: [request.personalization?.sshUser ?? 'ec2-user'],
  };
  const invalid = personalize && invalidDocumentParameter(personalize, parameters);
  if (invalid) throw new ValidationError(`detail.personalization.${invalid.parameter}`, invalid.message);
  return parameters;
};

/**
 * A further named document must be one warmboot deploys (the schema checked its values against
 * that document's allowedPatterns already), and every secret it names must be under the prefix of
 * a tenant the caller acts for. Checked before any AWS call, like the schema.
 */
export const checkNamedDocument = (request: ServerRequest, caller: Caller | undefined): void => {
  const named = request.personalization?.document;
  if (!named) return;
  const document = documentNamed(named.name);
  if (!document)
    throw new ValidationError('detail.personalization.document.name', `unknown document ${named.name}`);
  const bad = invalidDocumentParameter(document, named.parameters);
  if (bad)
    throw new ValidationError(`detail.personalization.document.parameters.${bad.parameter}`, bad.message);
  const foreign = foreignSecretReference(secretReferences(named.parameters), caller);
  if (foreign)
    throw new ValidationError(
      `detail.personalization.document.parameters.${foreign.parameter}`,
      `${foreign.name} is a secret of tenant ${foreign.tenant}, which the caller does not act for`,
    );
};
