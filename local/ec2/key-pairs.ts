import type { DescribeKeyPairsRequest, DescribeKeyPairsResult } from '@aws-sdk/client-ec2';
import { ec2Error } from './errors';
import type { Ec2Context } from './state';

/**
 * Key pairs by name (ec2-key-pairs). A launch naming one that does not exist, for instance one
 * deleted since the instance it was recorded from was launched, is refused with
 * `InvalidKeyPair.NotFound` (EC2 API reference, "Error codes"); so is DescribeKeyPairs naming one.
 */
const notFound = (name: string) =>
  ec2Error('InvalidKeyPair.NotFound', `The key pair '${name}' does not exist`);

export const assertKeyPairExists = (ctx: Ec2Context, keyName: string | undefined): void => {
  if (keyName !== undefined && !ctx.keyPairs.has(keyName)) throw notFound(keyName);
};

export const describeKeyPairs = async (
  ctx: Ec2Context,
  input: DescribeKeyPairsRequest,
): Promise<DescribeKeyPairsResult> => {
  const names = input.KeyNames ?? [...ctx.keyPairs];
  for (const name of names) assertKeyPairExists(ctx, name);
  return { KeyPairs: names.map((KeyName) => ({ KeyName, KeyType: 'ed25519' })) };
};
