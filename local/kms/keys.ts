import { IdGenerator, type Random, seededRandom } from '../ec2/ids';

/**
 * The KMS keys of the local account, as far as EBS encryption needs them.
 *
 * - A key has an ARN (`arn:aws:kms:<region>:<account>:key/<key-id>`) and a key state; only an
 *   `Enabled` key can be used in cryptographic operations ("Key states of AWS KMS keys", KMS
 *   Developer Guide: Disabled and PendingDeletion keys fail every cryptographic operation).
 * - A customer managed key gets the default key policy of a key created programmatically: one
 *   statement that gives the account (its root principal) `kms:*` on the key and so lets IAM
 *   policies decide ("Default key policy", KMS Developer Guide). Whether a caller may use the key
 *   is then exactly what its identity policy says; other key policies are not modelled.
 * - The AWS managed key for EBS (`alias/aws/ebs`) is used by EC2 on behalf of any principal of
 *   the account: it needs no permission of the caller (its key policy allows use through
 *   `ec2.<region>.amazonaws.com` for the whole account).
 *
 * EBS asks KMS for a key on the caller's behalf when it launches, starts, attaches or creates an
 * encrypted volume; `ebsUseRefusal` is that check (EBS User Guide, "Requirements for Amazon EBS
 * encryption", "Permissions for users"). Who the caller is and what its policies say is decided
 * by the authorizer the local cloud plugs in (its IAM); without one (the simulator on its own, a
 * test acting as the account's administrator) every enabled key can be used.
 */

export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';
export type KeyManager = 'CUSTOMER' | 'AWS';

export const AWS_MANAGED_EBS_ALIAS = 'alias/aws/ebs';
/**
 * The AWS managed key Parameter Store encrypts a SecureString with when PutParameter names no
 * `KeyId`. Its key policy lets every principal of the account that may use Parameter Store use it
 * through SSM (`kms:ViaService` ssm, `kms:CallerAccount`), so reading such a parameter needs
 * `ssm:GetParameter` only (SSM User Guide, "How AWS Systems Manager Parameter Store uses AWS KMS").
 */
export const AWS_MANAGED_SSM_ALIAS = 'alias/aws/ssm';

const AWS_MANAGED_DESCRIPTIONS: Readonly<Record<string, string>> = {
  [AWS_MANAGED_EBS_ALIAS]: 'Default key that protects my EBS volumes when no other key is defined',
  [AWS_MANAGED_SSM_ALIAS]: 'Default key that protects my SSM parameters when no other key is defined',
};

export interface KmsKeyView {
  readonly keyId: string;
  readonly arn: string;
  readonly state: KeyState;
  readonly keyManager: KeyManager;
  readonly aliases: readonly string[];
  readonly description: string;
  /** The key policy document (the default one for every key created here). */
  readonly policy: Readonly<Record<string, unknown>>;
}

interface KmsKeyRecord {
  readonly keyId: string;
  readonly arn: string;
  state: KeyState;
  readonly keyManager: KeyManager;
  readonly aliases: string[];
  readonly description: string;
}

/** Why EBS could not use a key for a call, and which key. */
export interface EbsKeyRefusal {
  /** `permission`: the caller may not use the key; `key-state`: not Enabled; `not-found`: no such key. */
  readonly kind: 'permission' | 'key-state' | 'not-found';
  readonly keyArn: string;
  readonly message: string;
}

/**
 * Decides, for the caller of the current call, whether it may use a customer managed key the way
 * EBS uses it; answers the denial's message, or undefined when allowed.
 */
export type EbsKeyAuthorizer = (operation: string, key: KmsKeyView) => Promise<string | undefined>;

const KEY_ARN = /^arn:[^:]+:kms:[^:]*:[^:]*:key\/(.+)$/;
const ALIAS_ARN = /^arn:[^:]+:kms:[^:]*:[^:]*:(alias\/.+)$/;

export class KmsKeys {
  readonly #region: string;
  readonly #accountId: string;
  readonly #ids: IdGenerator;
  readonly #keys = new Map<string, KmsKeyRecord>();
  #authorizer: EbsKeyAuthorizer | undefined;

  constructor(options: { region: string; accountId: string; random?: Random }) {
    this.#region = options.region;
    this.#accountId = options.accountId;
    this.#ids = new IdGenerator(options.random ?? seededRandom(7));
  }

  /** The authorizer that evaluates a caller's identity policy (the local cloud's IAM). */
  authorizeWith(authorizer: EbsKeyAuthorizer): void {
    this.#authorizer = authorizer;
  }

  arnOf(keyId: string): string {
    return `arn:aws:kms:${this.#region}:${this.#accountId}:key/${keyId}`;
  }

  /** Seeding (CreateKey): an enabled customer managed key with the default key policy. */
  createKey(options: { keyId?: string; alias?: string; description?: string } = {}): KmsKeyView {
    const keyId = options.keyId ?? this.#ids.uuid();
    if (this.#keys.has(keyId)) throw new Error(`KMS key ${keyId} already exists`);
    if (options.alias !== undefined && !options.alias.startsWith('alias/'))
      throw new Error(`an alias name begins with alias/: ${options.alias}`);
    if (options.alias?.startsWith('alias/aws/'))
      throw new Error('alias/aws/ is reserved for AWS managed keys');
    const record: KmsKeyRecord = {
      keyId,
      arn: this.arnOf(keyId),
      state: 'Enabled',
      keyManager: 'CUSTOMER',
      aliases: options.alias === undefined ? [] : [options.alias],
      description: options.description ?? '',
    };
    this.#keys.set(keyId, record);
    return this.#view(record);
  }

  /** The AWS managed key for EBS, which AWS creates in the account the first time EBS needs it. */
  awsManagedEbsKey(): KmsKeyView {
    return this.awsManagedKey(AWS_MANAGED_EBS_ALIAS);
  }

  /** An AWS managed key (`alias/aws/ebs`, `alias/aws/ssm`), created the first time its service needs it. */
  awsManagedKey(alias: keyof typeof AWS_MANAGED_DESCRIPTIONS): KmsKeyView {
    const existing = [...this.#keys.values()].find((key) => key.aliases.includes(alias));
    if (existing) return this.#view(existing);
    const keyId = this.#ids.uuid();
    const record: KmsKeyRecord = {
      keyId,
      arn: this.arnOf(keyId),
      state: 'Enabled',
      keyManager: 'AWS',
      aliases: [alias],
      description: AWS_MANAGED_DESCRIPTIONS[alias] ?? '',
    };
    this.#keys.set(keyId, record);
    return this.#view(record);
  }

  /** DisableKey / EnableKey / ScheduleKeyDeletion of a customer managed key. */
  setKeyState(key: string, state: KeyState): void {
    const record = this.#record(key);
    if (!record) throw new Error(`no KMS key ${key}`);
    if (record.keyManager === 'AWS') throw new Error('the state of an AWS managed key cannot be changed');
    record.state = state;
  }

  /** A key by key id, key ARN, alias name or alias ARN (the forms EBS `KmsKeyId` accepts). */
  key(key: string): KmsKeyView | undefined {
    const record = this.#record(key);
    return record && this.#view(record);
  }

  keys(): KmsKeyView[] {
    return [...this.#keys.values()].map((record) => this.#view(record));
  }

  /**
   * Why EBS cannot use these keys for the current caller of `operation`, or undefined when it
   * can: the first key that does not exist, is not Enabled, or is a customer managed key the
   * caller's policies do not let it use for EBS.
   */
  async ebsUseRefusal(operation: string, keyArns: readonly string[]): Promise<EbsKeyRefusal | undefined> {
    for (const keyArn of new Set(keyArns)) {
      const record = this.#record(keyArn);
      if (!record) return { kind: 'not-found', keyArn, message: `KMS key ${keyArn} does not exist` };
      if (record.state !== 'Enabled') {
        return { kind: 'key-state', keyArn, message: `KMS key ${keyArn} is ${record.state}` };
      }
      if (record.keyManager === 'AWS' || !this.#authorizer) continue;
      const denied = await this.#authorizer(operation, this.#view(record));
      if (denied !== undefined) return { kind: 'permission', keyArn: record.arn, message: denied };
    }
    return undefined;
  }

  #record(key: string): KmsKeyRecord | undefined {
    const byArn = KEY_ARN.exec(key);
    if (byArn) {
      const record = this.#keys.get(byArn[1] ?? '');
      return record?.arn === key ? record : undefined;
    }
    const alias = ALIAS_ARN.exec(key)?.[1] ?? (key.startsWith('alias/') ? key : undefined);
    if (alias !== undefined) {
      if (Object.hasOwn(AWS_MANAGED_DESCRIPTIONS, alias)) return this.#record(this.awsManagedKey(alias).arn);
      return [...this.#keys.values()].find((record) => record.aliases.includes(alias));
    }
    return this.#keys.get(key);
  }

  #view(record: KmsKeyRecord): KmsKeyView {
    return {
      keyId: record.keyId,
      arn: record.arn,
      state: record.state,
      keyManager: record.keyManager,
      aliases: [...record.aliases],
      description: record.description,
      policy: defaultKeyPolicy(this.#accountId),
    };
  }
}

/**
 * The key policy KMS gives a key created without one: the account's root principal may do
 * everything with the key, which is what lets IAM policies grant its use ("Default key policy",
 * "Allows access to the AWS account and enables IAM policies").
 */
export const defaultKeyPolicy = (accountId: string): Readonly<Record<string, unknown>> => ({
  Version: '2012-10-17',
  Id: 'key-default-1',
  Statement: [
    {
      Sid: 'Enable IAM User Permissions',
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${accountId}:root` },
      Action: 'kms:*',
      Resource: '*',
    },
  ],
});
