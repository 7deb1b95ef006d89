import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  ListTablesCommand,
} from '@aws-sdk/client-dynamodb';
import { TABLES, type TableId, type TableSpec } from '../functions/shared/tables';

/** DynamoDB Local signs nothing it checks, but the SDK insists on credentials. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

export interface DynamoDbLocal {
  readonly endpoint: string;
  readonly port: number;
  /** Stops the JVM and waits until it has exited. Safe to call twice. */
  stop(): Promise<void>;
}

const STARTUP_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const OUTPUT_TAIL_CHARS = 4_000;

/**
 * The JVM's lifetime is tied to this shell's stdin: a watcher reads it (through fd 3, because a
 * non-interactive shell gives background jobs /dev/null as stdin) and kills java at end of file.
 * Node holds the other end of the pipe, so the JVM dies when we close it in `stop()`, when Node
 * exits, and even when Node is SIGKILLed — no orphan JVM in any of those cases. The shell exits
 * with java's status, so a JVM that fails on its own is seen too.
 */
const WATCHDOG = `
exec 3<&0
"$@" </dev/null &
java_pid=$!
( read -r _ <&3; kill "$java_pid" 2>/dev/null ) &
wait "$java_pid"
`;

const emulatorDirectory = (): string => {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('amplify-dynamodb-simulator/package.json')), 'emulator');
};

const assertJavaInstalled = (): void => {
  const probe = spawnSync('java', ['-version'], { stdio: 'ignore' });
  if ((probe.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new Error(
      'DynamoDB Local needs a Java runtime and `java` is not on PATH: install openjdk-17-jre-headless ' +
        '(apt-get install -y openjdk-17-jre-headless)',
    );
  }
};

const freePort = async (): Promise<number> => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('could not allocate a local port');
  return address.port;
};

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts DynamoDB Local (in memory, one shared database for every credential and region). */
export const startDynamoDbLocal = async (): Promise<DynamoDbLocal> => {
  assertJavaInstalled();
  const directory = emulatorDirectory();
  const port = await freePort();
  const java = [
    'java',
    `-Djava.library.path=${join(directory, 'DynamoDBLocal_lib')}`,
    '-jar',
    join(directory, 'DynamoDBLocal.jar'),
    '-inMemory',
    '-sharedDb',
    // 1.24+ phones home by default; the local cloud must never reach the network.
    '-disableTelemetry',
    '-port',
    String(port),
  ];
  // DynamoDB Local writes a metadata file into its working directory; keep it out of the repo.
  const workDirectory = mkdtempSync(join(tmpdir(), 'dynamodb-local-'));
  const child = spawn('/bin/sh', ['-c', WATCHDOG, 'dynamodb-local', ...java], {
    cwd: workDirectory,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  const keepTail = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', keepTail);
  child.stderr?.on('data', keepTail);
  // A forgotten stop() must not keep the process alive; the watchdog still ends the JVM on exit.
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as Socket).unref();

  const endpoint = `http://127.0.0.1:${port}`;
  const instance: DynamoDbLocal = {
    endpoint,
    port,
    stop: async () => {
      await stopChild(child);
      rmSync(workDirectory, { recursive: true, force: true });
    },
  };
  try {
    await waitUntilReady(endpoint, child, () => output);
  } catch (error) {
    await instance.stop();
    throw error;
  }
  return instance;
};

const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

const waitUntilReady = async (endpoint: string, child: ChildProcess, output: () => string): Promise<void> => {
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
  });
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  try {
    for (;;) {
      if (exited(child)) {
        throw new Error(`DynamoDB Local exited during startup (code ${child.exitCode}):\n${output()}`);
      }
      try {
        await client.send(new ListTablesCommand({}));
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new Error(
            `DynamoDB Local did not answer on ${endpoint} within ${STARTUP_TIMEOUT_MS} ms:\n${output()}`,
            {
              cause: error,
            },
          );
        }
        await delay(100);
      }
    }
  } finally {
    client.destroy();
  }
};

const stopChild = async (child: ChildProcess): Promise<void> => {
  if (exited(child)) return;
  const gone = once(child, 'exit');
  child.stdin?.end();
  const timeout = delay(STOP_TIMEOUT_MS).then(() => 'timeout' as const);
  if ((await Promise.race([gone, timeout])) === 'timeout' && child.pid !== undefined) {
    // The JVM ignored SIGTERM: kill the whole process group (shell, watcher and java).
    process.kill(-child.pid, 'SIGKILL');
    await gone;
  }
};

export type TableNames = Readonly<Record<TableId, string>>;

/**
 * Table names for one local cloud. The prefix keeps parallel test files apart on a shared
 * DynamoDB Local; it is short because DynamoDB limits names to 255 characters of [a-zA-Z0-9_.-].
 */
const tableNames = (prefix: string): TableNames =>
  Object.fromEntries(Object.keys(TABLES).map((id) => [id, `${prefix}-${id}`])) as Record<TableId, string>;

const createTableInput = (spec: TableSpec, name: string) => {
  const keyAttributes = new Set<string>([spec.partitionKey]);
  if (spec.sortKey) keyAttributes.add(spec.sortKey);
  for (const index of spec.indexes) {
    keyAttributes.add(index.partitionKey);
    keyAttributes.add(index.sortKey);
  }
  return {
    TableName: name,
    // Same as the CDK data construct: on-demand, so no throughput to guess.
    BillingMode: 'PAY_PER_REQUEST' as const,
    AttributeDefinitions: [...keyAttributes].map((attribute) => ({
      AttributeName: attribute,
      AttributeType: 'S' as const,
    })),
    KeySchema: [
      { AttributeName: spec.partitionKey, KeyType: 'HASH' as const },
      ...(spec.sortKey ? [{ AttributeName: spec.sortKey, KeyType: 'RANGE' as const }] : []),
    ],
    ...(spec.indexes.length > 0
      ? {
          GlobalSecondaryIndexes: spec.indexes.map((index) => ({
            IndexName: index.name,
            KeySchema: [
              { AttributeName: index.partitionKey, KeyType: 'HASH' as const },
              { AttributeName: index.sortKey, KeyType: 'RANGE' as const },
            ],
            Projection: { ProjectionType: 'ALL' as const },
          })),
        }
      : {}),
  };
};

/** Creates every table of functions/shared/tables.ts under `prefix` (TTL off, see below). */
export const createTables = async (client: DynamoDBClient, prefix: string): Promise<TableNames> => {
  const names = tableNames(prefix);
  await Promise.all(
    (Object.values(TABLES) as readonly TableSpec[]).map(async (spec) => {
      const name = names[spec.id];
      await client.send(new CreateTableCommand(createTableInput(spec, name)));
      // TTL stays off locally: DynamoDB Local's TTL sweeper compares `expiresAt` with the wall
      // clock, while every item here is written on the virtual clock (which starts in January
      // 2026), so it would delete live records at random. TTL is only cleanup in warmboot; no
      // behaviour may depend on it.
    }),
  );
  return names;
};

export const deleteTables = async (client: DynamoDBClient, names: TableNames): Promise<void> => {
  await Promise.all(
    Object.values(names).map((name) => client.send(new DeleteTableCommand({ TableName: name }))),
  );
};
