/**
 * The actions EBS needs on a customer managed KMS key, used on the caller's behalf when it
 * launches, starts, attaches or creates an encrypted volume (EBS User Guide, "Requirements for
 * Amazon EBS encryption", "Permissions for users"). Defined once: the roles are granted exactly
 * these (infra/capabilities/common.ts), and the local cloud's IAM checks exactly these when EBS
 * uses a key for a caller (local/iam/evaluator.ts, local/kms/keys.ts).
 */
export const EBS_KEY_ACTIONS = [
  'kms:CreateGrant',
  'kms:Decrypt',
  'kms:DescribeKey',
  'kms:GenerateDataKeyWithoutPlaintext',
  // The guide's `kms:ReEncrypt` names the two ReEncrypt actions (`kms:ReEncrypt*` in its examples).
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
] as const;
