import { describe, expect, it } from 'vitest';
import { FACTS_RETRY_MS, writeDecision } from '../../../functions/shelving/application/decisions';
import { RoundRunner } from '../../../functions/shelving/application/rounds';
import type { Decision } from '../../../functions/shelving/domain/actions';
import { countingEc2, NOW, record, shelvingWith } from './fakes';

/**
 * A decision's facts are written with it and cleared once published: a writer that dies between
 * its write and its PutEvents (the fault suite's seed 20261211 found one: a record unshelved, no
 * `Instance Unshelved`) leaves them for the record's next round, which publishes them.
 */

const unshelvedFact = {
  detailType: 'Instance Unshelved',
  detail: { recordId: record().recordId, instanceId: record().instanceId, tenant: record().tenant },
} as unknown as NonNullable<Decision['facts']>[number];

const unshelving: Decision = {
  to: 'unshelved',
  actions: [],
  recheckAt: null,
  reason: 'unshelved',
  facts: [unshelvedFact],
};

describe('facts written with their decision', () => {
  it('publishes them and clears the outbox, restoring when the record comes due', async () => {
    const { deps, store, facts } = shelvingWith(countingEc2());
    const resting = record({ step: 'unshelve.finalize', nextDueAt: NOW });
    await store.create(resting);

    const written = await writeDecision(deps, resting, unshelving, NOW);

    expect(facts).toEqual([{ detailType: 'Instance Unshelved', detail: unshelvedFact.detail }]);
    expect(written).toMatchObject({ step: 'unshelved', nextDueAt: null, version: resting.version + 2 });
    expect(written?.outbox).toBeUndefined();
    expect((await store.get(resting.recordId))?.outbox).toBeUndefined();
  });

  it('leaves them for the next round when the writer dies before PutEvents', async () => {
    const { deps, store, facts } = shelvingWith(countingEc2());
    const resting = record({ step: 'unshelve.finalize', nextDueAt: NOW });
    await store.create(resting);
    const dying = {
      ...deps,
      facts: {
        publish: async () => {
          throw new Error('killed');
        },
      },
    };

    await expect(writeDecision(dying, resting, unshelving, NOW)).rejects.toThrow('killed');
    const left = await store.get(resting.recordId);
    expect(left).toMatchObject({ step: 'unshelved', nextDueAt: NOW + FACTS_RETRY_MS });
    expect(left?.outbox).toEqual({ facts: [unshelvedFact], nextDueAt: null });
    // The record is due for its facts although it rests.
    expect((await store.due(NOW + FACTS_RETRY_MS, 10)).map((due) => due.recordId)).toEqual([
      resting.recordId,
    ]);

    await new RoundRunner(deps).advance([left as NonNullable<typeof left>]);

    expect(facts).toEqual([{ detailType: 'Instance Unshelved', detail: unshelvedFact.detail }]);
    const after = await store.get(resting.recordId);
    expect(after?.outbox).toBeUndefined();
    expect(after?.nextDueAt).toBeNull();
    expect(await store.due(NOW + FACTS_RETRY_MS, 10)).toEqual([]);
  });
});
