import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { WARMBOOT } from '../../functions/catalog';
import { tenantSource } from '../../functions/shared/caller';
import type { Operator } from '../../infra/config';
import type { LocalCloud } from '../../local/cloud';
import type { ShelfFacts, Violation } from '../../local/invariants';
import { optedInInstanceTags } from '../support/instances';
import { startLocalCloud } from '../support/local-cloud';
import { SHELVING_REQUEST_TYPES, type ShelvingMove } from '../support/shelving';
import { assertOptions, expectNoViolations, FaultTally, RunLog, summarizeAfterAll } from './support/harness';
import { scanTable } from './support/records';

/**
 * What an attacker would try (issue 15 "Tests an attacker would write"), over random workloads and
 * random callers on the strict local cloud: operators bound to one tenant, an operator for every
 * tenant, and a stranger whose own IAM policy allows PutEvents on every bus (what application, CI
 * and power-user roles hold). Each caller sends random Shelve / Offload / Unshelve requests naming
 * random instances of both tenants, sometimes with a `detail.tenant` that is not its own, sometimes
 * with another tenant's source (a forged binding). The properties:
 *
 * - a PutEvents whose source the caller is not bound to, or by a principal that is not an
 *   operator, is refused by the bus (AccessDeniedException) and puts nothing;
 * - every record, stop, termination and unshelve of an instance of tenant T traces back to an
 *   accepted request that named it (or T) and whose caller acts for T.
 */

const MINUTE = 60_000;
const ACCOUNT = '123456789012';
const TENANTS = ['tenant-a', 'tenant-b'] as const;
type Tenant = (typeof TENANTS)[number];

const SHELVING_REQUESTS = ['Shelve Instances', 'Offload Instances', 'Unshelve Instances'];
const putEventsAnywhere = [
  {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow' as const, Action: 'events:PutEvents', Resource: '*' }],
  },
];

interface CallerSpec {
  readonly name: string;
  readonly principalArn: string;
  /** The tenants the deployment binds it to; undefined: not an operator at all. */
  readonly tenants?: readonly Tenant[] | '*';
}

const CALLERS: readonly CallerSpec[] = [
  { name: 'operator-a', principalArn: `arn:aws:iam::${ACCOUNT}:role/ops/tenant-a`, tenants: ['tenant-a'] },
  { name: 'operator-b', principalArn: `arn:aws:iam::${ACCOUNT}:role/ops/tenant-b`, tenants: ['tenant-b'] },
  { name: 'platform', principalArn: `arn:aws:iam::${ACCOUNT}:role/ops/platform`, tenants: '*' },
  { name: 'stranger', principalArn: `arn:aws:iam::${ACCOUNT}:role/ci-deployer` },
];

const OPERATORS: Operator[] = CALLERS.flatMap((caller) =>
  caller.tenants === undefined
    ? []
    : [
        {
          principal: caller.principalArn,
          requests: SHELVING_REQUESTS,
          tenants: caller.tenants === '*' ? ['*'] : [...caller.tenants],
        },
      ],
);

const actsFor = (caller: CallerSpec, tenant: string): boolean =>
  caller.tenants === '*' || (caller.tenants?.includes(tenant as Tenant) ?? false);

interface Attempt {
  readonly caller: number;
  readonly kind: ShelvingMove;
  /** The source it puts: its own binding, or another tenant's (forged). */
  readonly sourceTenant: Tenant | 'unbound' | 'own';
  readonly targets: readonly number[];
  /** A `detail.tenant` it names (Unshelve by tenant, or a Shelve's claim). */
  readonly detailTenant?: Tenant;
  readonly afterMs: number;
}

interface Workload {
  readonly seed: number;
  readonly tenants: readonly Tenant[];
  readonly attempts: readonly Attempt[];
}

const workloadArbitrary: fc.Arbitrary<Workload> = fc
  .array(fc.constantFrom(...TENANTS), { minLength: 1, maxLength: 4 })
  .chain((tenants) =>
    fc.record({
      seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      tenants: fc.constant(tenants),
      attempts: fc.array(
        fc.record(
          {
            caller: fc.integer({ min: 0, max: CALLERS.length - 1 }),
            kind: fc.constantFrom('shelve' as const, 'offload' as const, 'unshelve' as const),
            sourceTenant: fc.constantFrom('own' as const, 'own' as const, 'unbound' as const, ...TENANTS),
            targets: fc.uniqueArray(fc.integer({ min: 0, max: tenants.length - 1 }), {
              minLength: 0,
              maxLength: tenants.length,
            }),
            detailTenant: fc.constantFrom(...TENANTS),
            afterMs: fc.integer({ min: 0, max: 120 }).map((seconds) => seconds * 1000),
          },
          { requiredKeys: ['caller', 'kind', 'sourceTenant', 'targets', 'afterMs'] },
        ),
        { minLength: 1, maxLength: 8 },
      ),
    }),
  );

/** The source an attempt puts: what its caller may send, or a forged one. */
const sourceOf = (attempt: Attempt, caller: CallerSpec): string => {
  if (attempt.sourceTenant === 'unbound') return WARMBOOT;
  if (attempt.sourceTenant !== 'own') return tenantSource(attempt.sourceTenant);
  if (caller.tenants === '*' || caller.tenants === undefined) return WARMBOOT;
  return tenantSource(caller.tenants[0] as string);
};

/**
 * Whether the bus policy must admit this PutEvents (every caller here holds PutEvents on `*`). An
 * operator of every tenant may also put one tenant's source: it acts for that tenant anyway.
 */
const admitted = (source: string, caller: CallerSpec): boolean => {
  if (caller.tenants === undefined) return false;
  if (caller.tenants === '*') return true;
  return caller.tenants.some((tenant) => source === tenantSource(tenant));
};

const detailOf = (attempt: Attempt, instanceIds: readonly string[]): Record<string, unknown> => {
  const ids = attempt.targets.map((target) => instanceIds[target] ?? '');
  if (attempt.kind === 'shelve') {
    return {
      instanceIds: ids.length > 0 ? ids : [instanceIds[0]],
      offloadAfterSeconds: 0,
      ...(attempt.detailTenant !== undefined ? { tenant: attempt.detailTenant } : {}),
    };
  }
  if (attempt.kind === 'offload') return { instanceIds: ids.length > 0 ? ids : [instanceIds[0]] };
  return ids.length > 0 ? { instanceIds: ids } : { tenant: attempt.detailTenant ?? 'tenant-a' };
};

interface Accepted {
  readonly eventId: string;
  readonly caller: CallerSpec;
  readonly kind: Attempt['kind'];
  readonly instanceIds: readonly string[];
  readonly tenant?: string;
}

const tally = new FaultTally('authorization', ['onlyBoundCallers', 'tenantIsolated']);

const launch = async (cloud: LocalCloud, tenants: readonly Tenant[]): Promise<string[]> => {
  const imageId = cloud.ec2.registerImage({ name: 'al2023', rootSizeGiB: 8 });
  const ids: string[] = [];
  for (const tenant of tenants) {
    const answer = await cloud.run(() =>
      cloud.runtime('shelving').clients.ec2.send(
        new RunInstancesCommand({
          ImageId: imageId,
          InstanceType: 'm7i.large',
          MinCount: 1,
          MaxCount: 1,
          BlockDeviceMappings: [
            { DeviceName: '/dev/sdf', Ebs: { VolumeSize: 20, DeleteOnTermination: true } },
          ],
          TagSpecifications: optedInInstanceTags('shelving', { 'warmboot:tenant': tenant }),
        }),
      ),
    );
    ids.push(answer.Instances?.[0]?.InstanceId ?? '');
  }
  await cloud.settleFor(MINUTE);
  return ids;
};

const authorizationProperty = fc.asyncProperty(workloadArbitrary, async (workload) => {
  tally.runs += 1;
  const cloud = await startLocalCloud({
    latency: 'zero',
    seed: workload.seed,
    functions: ['shelving'],
    documents: [],
    behaviours: {},
    operators: OPERATORS,
    settings: {
      SHELVING_SETTINGS: JSON.stringify({
        offloadAfterSeconds: -1,
        hostWaitSeconds: 600,
      }),
    },
  });
  try {
    const log = new RunLog(cloud, ['shelving']);
    const instanceIds = await launch(cloud, workload.tenants);
    const tenantOf = new Map(instanceIds.map((id, index) => [id, workload.tenants[index] as string]));
    cloud.startSchedules();
    const accepted: Accepted[] = [];
    const wronglyAdmitted: string[] = [];
    const wronglyRefused: string[] = [];
    let refused = 0;
    for (const attempt of workload.attempts) {
      await cloud.settleFor(attempt.afterMs);
      const caller = CALLERS[attempt.caller] as CallerSpec;
      const source = sourceOf(attempt, caller);
      const detail = detailOf(attempt, instanceIds);
      const detailType = SHELVING_REQUEST_TYPES[attempt.kind];
      try {
        const event = await cloud.putEvent(
          { source, detailType, detail },
          { as: { principalArn: caller.principalArn, identityPolicies: putEventsAnywhere } },
        );
        if (!admitted(source, caller)) wronglyAdmitted.push(`${caller.name} put ${source}`);
        accepted.push({
          eventId: event.id,
          caller,
          kind: attempt.kind,
          instanceIds: (detail.instanceIds as string[] | undefined) ?? [],
          ...(typeof detail.tenant === 'string' ? { tenant: detail.tenant } : {}),
        });
      } catch (error) {
        refused += 1;
        if ((error as Error).name !== 'AccessDeniedException') throw error;
        if (admitted(source, caller)) wronglyRefused.push(`${caller.name} put ${source}`);
      }
    }
    await cloud.settleFor(15 * MINUTE);

    const records = (await scanTable(cloud, cloud.tables.shelves))
      .filter((item) => item.sk === 'RECORD')
      .map((item) => item.record as ShelfFacts);
    const authorizedFor = (instanceId: string, kinds: readonly Attempt['kind'][]): Accepted[] =>
      accepted.filter(
        (request) =>
          kinds.includes(request.kind) &&
          actsFor(request.caller, tenantOf.get(instanceId) ?? '') &&
          (request.instanceIds.includes(instanceId) ||
            (request.instanceIds.length === 0 && request.tenant === tenantOf.get(instanceId))),
      );
    const violations: Violation[] = [
      ...wronglyAdmitted.map(
        (what): Violation => ({
          invariant: 'onlyBoundCallers',
          subject: what,
          message: 'the bus admitted it',
        }),
      ),
      ...wronglyRefused.map(
        (what): Violation => ({
          invariant: 'onlyBoundCallers',
          subject: what,
          message: 'the bus refused a bound operator',
        }),
      ),
    ];
    for (const record of records) {
      const tenant = tenantOf.get(record.instanceId);
      if (tenant === undefined) continue;
      const shelvedBy = record.shelvedBy?.requestId;
      if (!authorizedFor(record.instanceId, ['shelve']).some((request) => request.eventId === shelvedBy)) {
        violations.push({
          invariant: 'tenantIsolated',
          subject: record.recordId,
          message: `(${tenant}) was shelved by ${shelvedBy}, not a request of a caller acting for ${tenant}`,
        });
      }
      const unshelvedBy = record.unshelve?.requestId;
      if (
        unshelvedBy !== undefined &&
        !authorizedFor(record.instanceId, ['unshelve']).some((request) => request.eventId === unshelvedBy)
      ) {
        violations.push({
          invariant: 'tenantIsolated',
          subject: record.recordId,
          message: `(${tenant}) was unshelved by ${unshelvedBy}, not a request of a caller acting for ${tenant}`,
        });
      }
    }
    for (const instance of cloud.ec2.instances()) {
      const tenant = tenantOf.get(instance.instanceId);
      if (tenant === undefined || instance.state === 'running' || instance.state === 'pending') continue;
      if (authorizedFor(instance.instanceId, ['shelve', 'offload']).length === 0) {
        violations.push({
          invariant: 'tenantIsolated',
          subject: instance.instanceId,
          message: `(${tenant}) is ${instance.state} but no caller acting for ${tenant} asked`,
        });
      }
    }
    tally.observe('requests admitted', accepted.length);
    tally.observe('requests refused by the bus', refused);
    tally.observe('records', records.length);
    expectNoViolations(tally, violations, log, [workload]);
  } finally {
    await cloud.stop();
  }
});

describe('authorization: a caller changes only what its tenants own', () => {
  summarizeAfterAll(tally);

  it('admits only bound callers, and every change to a tenant traces to a request of a caller acting for it', async () => {
    await fc.assert(authorizationProperty, assertOptions());
  });
});
