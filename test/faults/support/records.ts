import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { LocalCloud } from '../../../local/cloud';

/** Every item of one table (the fault suite's tables are small: one run, a few resources). */
export const scanTable = async (cloud: LocalCloud, tableName: string): Promise<Record<string, unknown>[]> => {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await cloud.run(() =>
      cloud.documents.send(
        new ScanCommand({ TableName: tableName, ...(startKey ? { ExclusiveStartKey: startKey } : {}) }),
      ),
    );
    items.push(...((page.Items ?? []) as Record<string, unknown>[]));
    startKey = page.LastEvaluatedKey as Record<string, unknown> | undefined;
  } while (startKey);
  return items;
};
