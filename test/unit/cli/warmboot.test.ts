import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliIo, functionServing, main } from '../../../cli/warmboot';
import { attachSimulator } from '../../../local/sdk-bridge';

/**
 * The CLI against a local HTTP server that checks AWS Signature Version 4 the way Lambda does for a
 * function URL with auth type AWS_IAM (service `lambda`): it recomputes the signature over the
 * headers the request says it signed, with the dummy secret it knows, and refuses a mismatch with
 * 403. Nothing leaves the machine; the credentials are dummies.
 */

const ACCESS_KEY = 'AKIDLOCALTESTONLY000';
const SECRET = 'local-test-secret-not-a-credential';
const REGION = 'us-east-1';

const hmac = (key: Buffer | string, text: string): Buffer => createHmac('sha256', key).update(text).digest();
const sha256 = (text: string | Buffer): string => createHash('sha256').update(text).digest('hex');

/** SigV4 as documented (IAM User Guide, "Create a signed AWS API request"), header-signed, no query. */
const expectedSignature = (request: IncomingMessage, body: Buffer, secret: string): string | undefined => {
  const authorization = request.headers.authorization ?? '';
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
      authorization,
    );
  if (!match) return undefined;
  const [, , date, region, service, signedHeaders] = match as unknown as string[];
  const names = (signedHeaders as string).split(';');
  const canonicalHeaders = names.map((name) => `${name}:${String(request.headers[name]).trim()}\n`).join('');
  const amzDate = String(request.headers['x-amz-date']);
  const canonicalRequest = [
    request.method,
    request.url,
    '',
    canonicalHeaders,
    signedHeaders,
    sha256(body),
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(
    hmac(hmac(hmac(`AWS4${secret}`, date as string), region as string), service as string),
    'aws4_request',
  );
  return createHmac('sha256', key).update(stringToSign).digest('hex');
};

interface Received {
  readonly headers: IncomingMessage['headers'];
  readonly body: unknown;
}

let server: Server;
let url: string;
/** The secret the server verifies with: the client's, or another one to prove a bad signature fails. */
let serverSecret = SECRET;
const received: Received[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      const signature = /Signature=([0-9a-f]{64})$/.exec(request.headers.authorization ?? '')?.[1];
      const signedWith = /Credential=([^/]+)\//.exec(request.headers.authorization ?? '')?.[1];
      const valid =
        signature !== undefined &&
        signedWith === ACCESS_KEY &&
        /\/lambda\/aws4_request/.test(request.headers.authorization ?? '') &&
        expectedSignature(request, body, serverSecret) === signature;
      if (!valid) {
        response.writeHead(403, {
          'content-type': 'application/json',
          'x-amzn-errortype': 'AccessDeniedException',
        });
        response.end(JSON.stringify({ Message: 'Forbidden' }));
        return;
      }
      received.push({ headers: request.headers, body: JSON.parse(body.toString('utf8')) });
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({ status: 'handled', detailType: 'Shelve Instances', result: { ok: true } }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const run = (argv: string[]) => runWith({}, argv);

const runWith = async (extra: Partial<CliIo>, argv: string[]) => {
  let stdout = '';
  let stderr = '';
  const status = await main(argv, {
    ...extra,
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET },
    env: {},
  });
  return { status, stdout, stderr };
};

const shelve = [
  'Shelve Instances',
  '--detail',
  '{"instanceIds":["i-0123456789abcdef0"],"tenant":"tenant-a"}',
];

describe('npx warmboot', () => {
  it('maps each request type to the function that serves it', () => {
    expect(functionServing('Shelve Instances')).toBe('shelving');
    expect(functionServing('Define Pool')).toBe('pools');
    expect(functionServing('Register Image')).toBe('imageCache');
    expect(functionServing('Request Server')).toBe('claim');
    expect(functionServing('Launch Everything')).toBeUndefined();
  });

  it('POSTs the request SigV4-signed for Lambda and prints the answer', async () => {
    received.length = 0;
    serverSecret = SECRET;

    const { status, stdout } = await run([
      ...shelve,
      '--function-url',
      url,
      '--region',
      REGION,
      '--request-id',
      'shelve-1',
    ]);

    expect(status).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      status: 'handled',
      detailType: 'Shelve Instances',
      result: { ok: true },
    });
    expect(received).toHaveLength(1);
    expect(received[0]?.body).toEqual({
      'detail-type': 'Shelve Instances',
      detail: { instanceIds: ['i-0123456789abcdef0'], tenant: 'tenant-a' },
    });
    expect(received[0]?.headers['x-warmboot-request-id']).toBe('shelve-1');
    expect(received[0]?.headers.authorization).toContain(`/${REGION}/lambda/aws4_request`);
    // The idempotency key is signed: a proxy cannot swap it.
    expect(received[0]?.headers.authorization).toMatch(/SignedHeaders=[^,]*x-warmboot-request-id/);
  });

  it('exits 1 with the refusal when the signature does not verify', async () => {
    received.length = 0;
    serverSecret = 'another-secret';

    const { status, stdout, stderr } = await run([...shelve, '--function-url', url, '--region', REGION]);

    expect(status).toBe(1);
    expect(JSON.parse(stdout)).toEqual({ Message: 'Forbidden' });
    expect(stderr).toContain('HTTP 403');
    expect(received).toHaveLength(0);
  });

  it('refuses an unknown request type, naming the known ones', async () => {
    const { status, stderr } = await run(['Launch Everything', '--detail', '{}', '--function-url', url]);

    expect(status).toBe(2);
    expect(stderr).toContain('"Launch Everything" is not a warmboot request');
    expect(stderr).toContain('Shelve Instances');
  });

  it('reads the request URL from the stack outputs with --stack, then sends the request there', async () => {
    received.length = 0;
    serverSecret = SECRET;
    const asked: Record<string, unknown>[] = [];
    const cloudFormation = (region: string) => {
      const client = new CloudFormationClient({
        region,
        credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET },
      });
      attachSimulator(client, async (operation, input) => {
        asked.push({ operation, region, ...input });
        return {
          Stacks: [
            {
              StackName: 'Warmboot',
              Outputs: [
                { OutputKey: 'PoolsRequestUrl', OutputValue: 'https://pools.lambda-url.us-east-1.on.aws/' },
                { OutputKey: 'ShelvingRequestUrl', OutputValue: url },
              ],
            },
          ],
        };
      });
      return client;
    };

    const { status } = await runWith({ cloudFormation }, [
      ...shelve,
      '--stack',
      'Warmboot',
      '--region',
      REGION,
    ]);

    expect(status).toBe(0);
    expect(asked).toEqual([{ operation: 'DescribeStacks', region: REGION, StackName: 'Warmboot' }]);
    expect(received).toHaveLength(1);
    expect(received[0]?.body).toMatchObject({ 'detail-type': 'Shelve Instances' });
  });

  it('names the missing stack output, and refuses --stack together with --function-url', async () => {
    const cloudFormation = (region: string) => {
      const client = new CloudFormationClient({ region });
      attachSimulator(client, async () => ({ Stacks: [{ StackName: 'Other', Outputs: [] }] }));
      return client;
    };

    const missing = await runWith({ cloudFormation }, [...shelve, '--stack', 'Other', '--region', REGION]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('stack Other has no output ShelvingRequestUrl');

    const both = await run([...shelve, '--stack', 'Warmboot', '--function-url', url]);
    expect(both.status).toBe(2);
    expect(both.stderr).toContain('give one of --stack or --function-url');
  });

  it('refuses a request given both --detail and --detail-file', async () => {
    const { status, stderr } = await run([...shelve, '--detail-file', 'x.json', '--function-url', url]);

    expect(status).toBe(2);
    expect(stderr).toContain('give one of --detail or --detail-file');
  });
});
