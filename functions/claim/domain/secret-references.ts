import { SECRET_PARAMETER_PREFIX } from '../../pools/patterns';
import { actsFor, type Caller } from '../../shared/caller';

/**
 * Secrets reach a claimed server only as references to SecureString parameters
 * (`{{ssm-secure:/warmboot/tenants/<tenant>/…}}`, functions/pools/patterns.ts): the command, the
 * claim record and the logs carry the name, the host fetches the value (security review M6).
 * These decisions read the references out of a named document's parameters.
 */

const REFERENCE = /\{\{ssm-secure:([^}]*)\}\}/g;

export interface SecretReference {
  /** The document parameter that carries it. */
  readonly parameter: string;
  /** The SecureString parameter's name. */
  readonly name: string;
}

/** Every reference in the parameters' values, in order. */
export const secretReferences = (
  parameters: Readonly<Record<string, readonly string[]>>,
): SecretReference[] =>
  Object.entries(parameters).flatMap(([parameter, values]) =>
    values.flatMap((value) =>
      [...value.matchAll(REFERENCE)].map((match) => ({ parameter, name: match[1] ?? '' })),
    ),
  );

/** The tenant whose prefix a secret's name is under (`/warmboot/tenants/<tenant>/…`). */
export const secretTenant = (name: string): string | undefined =>
  name.startsWith(SECRET_PARAMETER_PREFIX)
    ? name.slice(SECRET_PARAMETER_PREFIX.length).split('/')[0]
    : undefined;

/**
 * The first reference to a secret of a tenant the caller does not act for, or undefined. The
 * tenant is the caller's as the request bus bound it, never what the request says; a request
 * without a caller acts for nobody.
 */
export const foreignSecretReference = (
  references: readonly SecretReference[],
  caller: Caller | undefined,
): (SecretReference & { readonly tenant: string }) | undefined => {
  for (const reference of references) {
    const tenant = secretTenant(reference.name) ?? '';
    if (caller === undefined || !actsFor(caller, tenant)) return { ...reference, tenant };
  }
  return undefined;
};

/** The file a Linux host installs a secret as: the name's last segment. */
export const secretFileName = (name: string): string => name.slice(name.lastIndexOf('/') + 1);
