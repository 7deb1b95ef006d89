import { createHash, createHmac, type Hash, type Hmac, randomUUID } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type {
  AwsCredentialIdentity,
  AwsCredentialIdentityProvider,
  Checksum,
  SourceData,
} from '@smithy/types';
import { ADMIN_REQUEST_TYPES, FUNCTIONS, type FunctionId, requestTypesOf } from '../functions/catalog';
import { REQUEST_ID_HEADER, REQUEST_ID_PATTERN } from '../functions/shared/function-url';
import { requestUrlOutputId } from '../infra/request-urls';

/**
 * `npx warmboot <request-type> --detail '<json>' (--stack <name> | --function-url <url>)`: sends
 * one operator or admin request to the function that serves it, through its IAM-authenticated
 * function URL (functions/shared/function-url.ts), signed with SigV4 by the caller's default
 * credential chain (environment, shared config and SSO profiles, container and instance roles),
 * and prints the answer. With `--stack` it reads that URL from the stack's outputs first
 * (CloudFormation DescribeStacks, the same credentials). Exit status 0 when warmboot handled the
 * request, 1 when it refused or rejected it, 2 on a usage error.
 */

const USAGE = `usage: warmboot <request-type> (--detail '<json>' | --detail-file <file.json>)
                (--stack <stack name> | --function-url <url>) [--region <region>]
                [--request-id <idempotency key>]

--stack reads the URL from the stack output <Function>RequestUrl of the function that serves the
request type (cloudformation:DescribeStacks on the stack); --function-url gives it directly:
  aws cloudformation describe-stacks --stack-name Warmboot \\
    --query "Stacks[0].Outputs[?OutputKey=='ShelvingRequestUrl'].OutputValue" --output text
Re-sending a request with the same --request-id is answered from the first one (no second run).`;

/** Which function serves a request type (operator or administrative), from the catalog. */
export const functionServing = (requestType: string): FunctionId | undefined =>
  (Object.keys(FUNCTIONS) as FunctionId[]).find(
    (id) =>
      requestTypesOf(FUNCTIONS[id]).includes(requestType) ||
      FUNCTIONS[id].adminRequests?.includes(requestType),
  );

const everyRequestType = (): string[] =>
  [...new Set([...Object.values(FUNCTIONS).flatMap(requestTypesOf), ...ADMIN_REQUEST_TYPES])].sort();

/** `https://<url-id>.lambda-url.<region>.on.aws/`: the Region is part of the host. */
const regionOfUrl = (url: URL): string | undefined =>
  /\.lambda-url\.([a-z0-9-]+)\.on\.aws$/.exec(url.hostname)?.[1];

/** SHA-256 (with a secret: HMAC-SHA-256) on node:crypto, as SignatureV4 needs it. */
class Sha256 implements Checksum {
  readonly #secret: SourceData | undefined;
  #hash: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.#secret = secret;
    this.#hash = this.#fresh();
  }
  #fresh(): Hash | Hmac {
    return this.#secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(this.#secret));
  }
  update(data: Uint8Array): void {
    this.#hash.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }
  reset(): void {
    this.#hash = this.#fresh();
  }
}

const toBuffer = (data: SourceData): Buffer =>
  typeof data === 'string'
    ? Buffer.from(data, 'utf8')
    : ArrayBuffer.isView(data)
      ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
      : Buffer.from(data);

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Default: the caller's default credential chain. */
  readonly credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Default: a CloudFormation client of the Region with `credentials`. */
  readonly cloudFormation?: (region: string) => CloudFormationClient;
}

class UsageError extends Error {}

/** Runs the command; returns the exit status. */
export const main = async (argv: readonly string[], io: CliIo): Promise<number> => {
  try {
    return await send(argv, io);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr(`warmboot: ${error.message}\n\n${USAGE}\n`);
    return 2;
  }
};

const send = async (argv: readonly string[], io: CliIo): Promise<number> => {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(argv);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const [requestType, ...extra] = positionals;
  if (values.help) {
    io.stdout(`${USAGE}\n`);
    return 0;
  }
  if (requestType === undefined || extra.length > 0) throw new UsageError('name exactly one request type');
  const functionId = functionServing(requestType);
  if (!functionId) {
    throw new UsageError(
      `"${requestType}" is not a warmboot request; one of: ${everyRequestType().join(', ')}`,
    );
  }
  if ((values.stack === undefined) === (values['function-url'] === undefined)) {
    throw new UsageError(
      `give one of --stack or --function-url (the stack output ${requestUrlOutputId(functionId)})`,
    );
  }
  const detail = detailOf(values.detail, values['detail-file']);
  const url = urlOf(
    values.stack === undefined
      ? (values['function-url'] as string)
      : await urlFromStack(values.stack, functionId, values.region ?? io.env?.AWS_REGION, io),
  );
  const region = values.region ?? regionOfUrl(url) ?? io.env?.AWS_REGION;
  if (region === undefined) throw new UsageError('--region is required: the URL does not name its Region');
  const requestId = values['request-id'] ?? randomUUID();
  if (!REQUEST_ID_PATTERN.test(requestId))
    throw new UsageError(`--request-id must match ${REQUEST_ID_PATTERN}`);

  const body = JSON.stringify({ 'detail-type': requestType, detail });
  const signer = new SignatureV4({
    service: 'lambda',
    region,
    credentials: io.credentials ?? defaultProvider(),
    sha256: Sha256,
  });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname,
    query: {},
    headers: {
      host: url.host,
      'content-type': 'application/json',
      [REQUEST_ID_HEADER]: requestId,
    },
    body,
  });
  const response = await fetch(url, { method: 'POST', headers: signed.headers, body });
  const text = await response.text();
  io.stdout(`${pretty(text)}\n`);
  if (!response.ok) {
    io.stderr(
      `warmboot: ${requestType} → ${functionId}: HTTP ${response.status} (request id ${requestId}; re-send with --request-id ${requestId} to retry it)\n`,
    );
  }
  return response.ok && statusOf(text) !== 'rejected' ? 0 : 1;
};

const urlOf = (text: string): URL => {
  try {
    return new URL(text);
  } catch {
    throw new UsageError(`--function-url ${text} is not a URL`);
  }
};

const statusOf = (text: string): unknown => {
  try {
    return (JSON.parse(text) as { status?: unknown }).status;
  } catch {
    return undefined;
  }
};

/**
 * The request URL of `functionId` from the stack's outputs (infra/stack.ts names them). An app that
 * uses the Warmboot construct in a stack of its own has only the outputs it defines.
 */
const urlFromStack = async (
  stack: string,
  functionId: FunctionId,
  region: string | undefined,
  io: CliIo,
): Promise<string> => {
  if (region === undefined) throw new UsageError('--region is required with --stack (or set AWS_REGION)');
  const client =
    io.cloudFormation?.(region) ??
    new CloudFormationClient({ region, credentials: io.credentials ?? defaultProvider() });
  const answer = await client.send(new DescribeStacksCommand({ StackName: stack }));
  const output = requestUrlOutputId(functionId);
  const value = answer.Stacks?.[0]?.Outputs?.find((candidate) => candidate.OutputKey === output)?.OutputValue;
  if (value === undefined) {
    throw new UsageError(
      `stack ${stack} has no output ${output}: not warmboot's stack, or an app of your own that does not output it (pass --function-url)`,
    );
  }
  return value;
};

const parseOptions = (argv: readonly string[]) =>
  parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      detail: { type: 'string' },
      'detail-file': { type: 'string' },
      'function-url': { type: 'string' },
      stack: { type: 'string' },
      region: { type: 'string' },
      'request-id': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });

const detailOf = (inline: string | undefined, file: string | undefined): Record<string, unknown> => {
  if ((inline === undefined) === (file === undefined))
    throw new UsageError('give one of --detail or --detail-file');
  const text = inline ?? readFileSync(file as string, 'utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`${inline === undefined ? file : '--detail'} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError('the detail must be a JSON object');
  }
  return value as Record<string, unknown>;
};

const pretty = (text: string): string => {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
};

// Run as a program, also through the symlink npm links a bin as (npx, node_modules/.bin).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
  }).then(
    (status) => {
      process.exitCode = status;
    },
    (error: unknown) => {
      process.stderr.write(`warmboot: ${(error as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
