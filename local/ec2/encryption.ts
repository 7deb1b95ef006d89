import type {
  DisableEbsEncryptionByDefaultRequest,
  DisableEbsEncryptionByDefaultResult,
  EnableEbsEncryptionByDefaultRequest,
  EnableEbsEncryptionByDefaultResult,
  GetEbsDefaultKmsKeyIdRequest,
  GetEbsDefaultKmsKeyIdResult,
  GetEbsEncryptionByDefaultRequest,
  GetEbsEncryptionByDefaultResult,
  ModifyEbsDefaultKmsKeyIdRequest,
  ModifyEbsDefaultKmsKeyIdResult,
  ResetEbsDefaultKmsKeyIdRequest,
  ResetEbsDefaultKmsKeyIdResult,
} from '@aws-sdk/client-ec2';
import { AWS_MANAGED_EBS_ALIAS, type EbsKeyRefusal } from '../kms/keys';
import { ec2Error, missingParameter } from './errors';
import type { Ec2Context } from './state';

/**
 * EBS encryption with KMS keys (EBS User Guide, "Amazon EBS encryption"):
 *
 * - Which key a new volume gets ("Encryption rules", "Encryption by default"): a volume restored
 *   from an encrypted snapshot is encrypted, with the snapshot's key unless the request names
 *   another; any other volume is encrypted when the request asks (`Encrypted`) or the account
 *   encrypts by default, with the requested key, else the account's default key, else the AWS
 *   managed key `alias/aws/ebs`. A `KmsKeyId` without `Encrypted: true` is refused
 *   (API_CreateVolume, API_EbsBlockDevice: "If KmsKeyId is specified, the encrypted state must be
 *   true"; the code is InvalidParameterDependency).
 * - When the key is checked: EBS "authenticates the KMS key asynchronously", so a call naming a
 *   key it cannot use "can appear to complete, but eventually fails" (API_CreateVolume, KmsKeyId).
 *   A launch, start, attach or create uses the key on the caller's behalf, and the caller needs
 *   kms:CreateGrant, Decrypt, DescribeKey, GenerateDataKeyWithoutPlaintext and ReEncrypt on it
 *   (ebs-encryption-requirements, "Permissions for users"); the AWS managed key needs none.
 *   A disabled key, or one pending deletion, fails every use (KMS "Key states"; ModifyEbsDefault-
 *   KmsKeyId: "If you delete or disable the customer managed KMS key that you specified for use
 *   with encryption by default, your instances will fail to launch").
 */

/** What one volume asks for: `Encrypted` and `KmsKeyId` of CreateVolume or an EBS block device. */
export interface RequestedEncryption {
  readonly encrypted?: boolean | undefined;
  readonly kmsKeyId?: string | undefined;
}

/**
 * The state reason of an instance that EC2 could not give an encrypted volume: a caller without
 * the KMS permissions sees `Client.InternalError` (re:Post knowledge center "kms-iam-ec2-permission"
 * and "encrypted-volumes-stops-immediately"); a key that is not Enabled or does not exist is
 * reported as `Client.InvalidKMSKey.InvalidState`, the code EC2 answers for it in practice (no AWS
 * page names it; the simulator's choice).
 */
export const keyStateReason = (refusal: EbsKeyRefusal): { code: string; message: string } =>
  refusal.kind === 'permission'
    ? { code: 'Client.InternalError', message: 'Client.InternalError: Client error on launch' }
    : {
        code: 'Client.InvalidKMSKey.InvalidState',
        message: 'Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state',
      };

export const checkRequestedEncryption = (requested: RequestedEncryption): void => {
  if (requested.kmsKeyId !== undefined && requested.encrypted !== true)
    throw ec2Error(
      'InvalidParameterDependency',
      'The parameter KmsKeyId requires the parameter Encrypted to be set.',
    );
};

/**
 * The KMS key ARN a new volume is encrypted with, or undefined when it is not encrypted. A key EBS
 * does not know is kept as named: the volume fails when the key is used, not when it is named.
 */
export const newVolumeKey = (
  ctx: Ec2Context,
  sourceSnapshotKey: string | undefined,
  requested: RequestedEncryption,
): string | undefined => {
  checkRequestedEncryption(requested);
  const encrypted =
    sourceSnapshotKey !== undefined || requested.encrypted === true || ctx.ebsEncryption.byDefault;
  if (!encrypted) return undefined;
  const named =
    requested.kmsKeyId ?? sourceSnapshotKey ?? ctx.ebsEncryption.defaultKmsKeyId ?? AWS_MANAGED_EBS_ALIAS;
  return ctx.kms.key(named)?.arn ?? named;
};

/**
 * Why EBS cannot use the keys of these volumes for the caller of `operation`, read on the virtual
 * clock's IO track (the caller's IAM is evaluated asynchronously, and virtual time must not jump
 * meanwhile). Undefined, without waiting at all, when no volume needs a check: unencrypted ones
 * and those under the AWS managed key need nothing from the caller.
 */
export const keyRefusal = (
  ctx: Ec2Context,
  operation: string,
  volumes: readonly { readonly kmsKeyId?: string | undefined }[],
): Promise<EbsKeyRefusal | undefined> | undefined => {
  const checked = volumes.filter(
    (volume) => volume.kmsKeyId !== undefined && ctx.kms.key(volume.kmsKeyId)?.keyManager !== 'AWS',
  );
  if (checked.length === 0) return undefined;
  const keyArns = checked.flatMap((volume) => (volume.kmsKeyId === undefined ? [] : [volume.kmsKeyId]));
  return ctx.clock.trackIo(() => ctx.kms.ebsUseRefusal(operation, keyArns));
};

// The account's encryption-by-default settings (API_EnableEbsEncryptionByDefault and siblings).

/** Enable- and DisableEbsEncryptionByDefault: each answers with the setting it leaves. */
const setEncryptionByDefault =
  (byDefault: boolean) =>
  async (
    ctx: Ec2Context,
    _input: EnableEbsEncryptionByDefaultRequest | DisableEbsEncryptionByDefaultRequest,
  ): Promise<EnableEbsEncryptionByDefaultResult & DisableEbsEncryptionByDefaultResult> => {
    ctx.ebsEncryption.byDefault = byDefault;
    return { EbsEncryptionByDefault: byDefault };
  };

export const enableEbsEncryptionByDefault = setEncryptionByDefault(true);

export const disableEbsEncryptionByDefault = setEncryptionByDefault(false);

export const getEbsEncryptionByDefault = async (
  ctx: Ec2Context,
  _input: GetEbsEncryptionByDefaultRequest,
): Promise<GetEbsEncryptionByDefaultResult> => ({ EbsEncryptionByDefault: ctx.ebsEncryption.byDefault });

/** Until ModifyEbsDefaultKmsKeyId names one, the default key is the AWS managed key. */
export const getEbsDefaultKmsKeyId = async (
  ctx: Ec2Context,
  _input: GetEbsDefaultKmsKeyIdRequest,
): Promise<GetEbsDefaultKmsKeyIdResult> => ({
  KmsKeyId: ctx.ebsEncryption.defaultKmsKeyId ?? AWS_MANAGED_EBS_ALIAS,
});

/** The key is not checked here: EBS authenticates it asynchronously, when a volume uses it. */
export const modifyEbsDefaultKmsKeyId = async (
  ctx: Ec2Context,
  input: ModifyEbsDefaultKmsKeyIdRequest,
): Promise<ModifyEbsDefaultKmsKeyIdResult> => {
  if (!input.KmsKeyId) throw missingParameter('KmsKeyId');
  ctx.ebsEncryption.defaultKmsKeyId = ctx.kms.key(input.KmsKeyId)?.arn ?? input.KmsKeyId;
  return { KmsKeyId: ctx.ebsEncryption.defaultKmsKeyId };
};

export const resetEbsDefaultKmsKeyId = async (
  ctx: Ec2Context,
  _input: ResetEbsDefaultKmsKeyIdRequest,
): Promise<ResetEbsDefaultKmsKeyIdResult> => {
  ctx.ebsEncryption.defaultKmsKeyId = undefined;
  return { KmsKeyId: ctx.kms.awsManagedEbsKey().arn };
};
