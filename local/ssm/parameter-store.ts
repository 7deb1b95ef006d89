import { createHash } from 'node:crypto';
import type { InstanceProfiles } from '../iam/instance-profiles';
import { AWS_MANAGED_SSM_ALIAS, type KmsKeys } from '../kms/keys';
import { SimulatedAwsError } from '../sdk-bridge';

/**
 * A minimal Parameter Store for the local cloud: what an operator seeds with PutParameter, and
 * what a script on a host reads back with `aws ssm get-parameter`, using the instance profile's
 * role (local/ssm/host-parameters.ts). Warmboot's functions never read these: a secret reaches a
 * claimed server as a reference the host resolves (functions/pools/documents.ts, Warmboot-PoolSecrets).
 *
 * Rules, each from the SSM API reference or User Guide:
 * - PutParameter (API_PutParameter): `Name` of `a-zA-Z0-9_.-` and `/`, at most 1,011 characters
 *   after the hierarchy (2,048 with the ARN prefix: the simulator takes 1,011 for the whole name,
 *   stricter), a hierarchy begins with `/`, at most 15 levels (HierarchyLevelLimitExceededException),
 *   never beginning with `aws` or `ssm` in any case (ValidationException); a standard parameter's
 *   value at most 4 KB; an existing name without `Overwrite` is ParameterAlreadyExists; `KeyId`
 *   only for a SecureString (ValidationException), a key that does not exist or is not enabled is
 *   InvalidKeyId; without `KeyId` a SecureString uses the AWS managed key `alias/aws/ssm`. A value
 *   may not contain `{{` ("Parameters can't be referenced or nested in the values of other
 *   parameters", Parameter Store reference, what-is-a-parameter): ValidationException.
 * - GetParameter (API_GetParameter): authorization comes first (`ssm:GetParameter` on
 *   `arn:aws:ssm:<region>:<account>:parameter<name>`), so a denied caller learns nothing about
 *   existence; then ParameterNotFound. `WithDecryption` on a SecureString decrypts with its key:
 *   a customer managed key needs `kms:Decrypt` in the role's policy (default key policy,
 *   "Default key policy" in the KMS Developer Guide), and KMS's AccessDeniedException is what
 *   GetParameter answers; the AWS managed key needs nothing more. A key that is no longer enabled
 *   fails decryption; the simulator answers InvalidKeyId (its choice: the code AWS uses is not
 *   documented for this case). Without `WithDecryption` a SecureString's value is its ciphertext.
 */

export type ParameterType = 'String' | 'StringList' | 'SecureString';

interface StoredParameter {
  readonly name: string;
  readonly type: ParameterType;
  readonly value: string;
  /** The encryption key of a SecureString. */
  readonly keyArn: string | undefined;
  readonly version: number;
}

export interface PutParameterInput {
  readonly Name: string;
  readonly Value: string;
  readonly Type?: ParameterType;
  readonly KeyId?: string;
  readonly Overwrite?: boolean;
}

/** What one GetParameter call answers a script on a host: the parameter, or the service's error. */
export type HostParameterAnswer =
  | { readonly ok: true; readonly type: ParameterType; readonly value: string }
  | { readonly ok: false; readonly code: string; readonly message: string };

/** Who calls from the host: the instance and its profile (the agent's and the CLI's credentials). */
export interface HostCaller {
  readonly instanceId: string;
  readonly profile: string | undefined;
}

const NAME = /^[A-Za-z0-9_.\-/]{1,1011}$/;
const MAX_LEVELS = 15;
const MAX_STANDARD_VALUE_BYTES = 4096;

const validation = (message: string): SimulatedAwsError =>
  new SimulatedAwsError('ValidationException', `1 validation error detected: ${message}`);

export class ParameterStore {
  readonly #region: string;
  readonly #accountId: string;
  readonly #kms: KmsKeys;
  readonly #profiles: InstanceProfiles;
  readonly #parameters = new Map<string, StoredParameter>();

  constructor(options: { region: string; accountId: string; kms: KmsKeys; profiles: InstanceProfiles }) {
    this.#region = options.region;
    this.#accountId = options.accountId;
    this.#kms = options.kms;
    this.#profiles = options.profiles;
  }

  arnOf(name: string): string {
    return `arn:aws:ssm:${this.#region}:${this.#accountId}:parameter${name.startsWith('/') ? '' : '/'}${name}`;
  }

  /** PutParameter, as an administrator of the account seeds it. */
  putParameter(input: PutParameterInput): { Version: number; Tier: 'Standard' } {
    const { Name: name, Value: value } = input;
    if (!NAME.test(name)) throw validation(`Value '${name}' at 'name' failed to satisfy constraint`);
    if (name.includes('/') && !name.startsWith('/'))
      throw validation('Parameter name must be a fully qualified name.');
    if (/^\/?(aws|ssm)/i.test(name))
      throw validation('Parameter name: can\'t be prefixed with "aws" or "ssm" (case-insensitive).');
    if (name.split('/').filter((level) => level !== '').length > MAX_LEVELS)
      throw new SimulatedAwsError(
        'HierarchyLevelLimitExceededException',
        `A hierarchy can have a maximum of ${MAX_LEVELS} levels.`,
      );
    if (Buffer.byteLength(value) > MAX_STANDARD_VALUE_BYTES)
      throw validation(
        `Standard tier parameters support a maximum parameter value of ${MAX_STANDARD_VALUE_BYTES} characters.`,
      );
    if (value.includes('{{'))
      throw validation('Parameter value can\'t nest another parameter. Do not use "{{}}" in the value.');
    const existing = this.#parameters.get(name);
    if (existing && input.Overwrite !== true)
      throw new SimulatedAwsError(
        'ParameterAlreadyExists',
        'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.',
      );
    const type = input.Type ?? existing?.type;
    if (type === undefined) throw validation('A parameter type is required when you create a parameter.');
    if (input.KeyId !== undefined && type !== 'SecureString')
      throw validation('KeyId is required for SecureString type parameter only.');
    let keyArn: string | undefined;
    if (type === 'SecureString') {
      const key = this.#kms.key(input.KeyId ?? AWS_MANAGED_SSM_ALIAS);
      if (key?.state !== 'Enabled') throw new SimulatedAwsError('InvalidKeyId', '');
      keyArn = key.arn;
    }
    const version = (existing?.version ?? 0) + 1;
    this.#parameters.set(name, { name, type, value, keyArn, version });
    return { Version: version, Tier: 'Standard' };
  }

  /**
   * GetParameter (or, for the agent, GetParameters: `action`) of one name, called on a host with
   * the instance profile's role.
   */
  getParameterAsHost(
    caller: HostCaller,
    name: string,
    withDecryption: boolean,
    action: 'ssm:GetParameter' | 'ssm:GetParameters' = 'ssm:GetParameter',
  ): HostParameterAnswer {
    const role = this.#profiles.roleName(caller.profile);
    if (role === undefined) {
      // The CLI finds no credentials: no instance profile, so IMDS has none to give.
      return { ok: false, code: 'NoCredentials', message: 'Unable to locate credentials.' };
    }
    const principal = `arn:aws:sts::${this.#accountId}:assumed-role/${role}/${caller.instanceId}`;
    const denied = (action: string, resource: string, service = ''): HostParameterAnswer => ({
      ok: false,
      code: 'AccessDeniedException',
      message: `User: ${principal} is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action${service}`,
    });
    const arn = this.arnOf(name);
    if (!this.#profiles.allowsOn(caller.profile, action, arn)) return denied(action, arn);
    const parameter = this.#parameters.get(name);
    if (!parameter) return { ok: false, code: 'ParameterNotFound', message: '' };
    if (parameter.type !== 'SecureString' || parameter.keyArn === undefined)
      return { ok: true, type: parameter.type, value: parameter.value };
    if (!withDecryption)
      return { ok: true, type: parameter.type, value: ciphertextOf(parameter.keyArn, parameter.value) };
    const key = this.#kms.key(parameter.keyArn);
    if (key?.state !== 'Enabled') return { ok: false, code: 'InvalidKeyId', message: '' };
    if (key.keyManager === 'CUSTOMER' && !this.#profiles.allowsOn(caller.profile, 'kms:Decrypt', key.arn))
      return denied(
        'kms:Decrypt',
        key.arn,
        ' (Service: AWSKMS; Status Code: 400; Error Code: AccessDeniedException)',
      );
    return { ok: true, type: parameter.type, value: parameter.value };
  }
}

/** What GetParameter shows of a SecureString without decryption: an opaque blob, never the value. */
const ciphertextOf = (keyArn: string, value: string): string =>
  Buffer.from(createHash('sha256').update(`${keyArn}\u0000${value}`).digest()).toString('base64');
