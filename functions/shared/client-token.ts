import { createHash } from 'node:crypto';

/**
 * EC2 client tokens (RunInstances, CreateVolume, AllocateHosts, ...): "a unique, case-sensitive
 * string of up to 64 ASCII characters" (ec2/latest/devguide/ec2-api-idempotency.html;
 * API_RunInstances, ClientToken: "Constraints: Maximum 64 ASCII characters"). A longer token is
 * refused, so the launch it guards never happens.
 */
export const CLIENT_TOKEN_MAX_LENGTH = 64;

const DIGEST_LENGTH = 32;
const PRINTABLE_ASCII = /^[\x21-\x7e]*$/;

/**
 * The ClientToken of the one launch `launch` names (everything that makes that launch distinct,
 * e.g. pool, time, index). It is `launch` itself when that fits, so tokens stay readable in
 * DescribeInstances; otherwise a readable head and a SHA-256 digest of the whole name, so a
 * retry of the same launch gets the same token and two different launches never share one.
 */
export const launchClientToken = (launch: string): string => {
  if (launch.length <= CLIENT_TOKEN_MAX_LENGTH && PRINTABLE_ASCII.test(launch)) return launch;
  const digest = createHash('sha256').update(launch).digest('hex').slice(0, DIGEST_LENGTH);
  const head = launch.replace(/[^\x21-\x7e]/g, '_').slice(0, CLIENT_TOKEN_MAX_LENGTH - DIGEST_LENGTH - 1);
  return `${head}-${digest}`;
};
