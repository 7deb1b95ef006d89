import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { TABLES, type TableId, type TableSpec } from '../functions/shared/tables';

export interface WarmbootDataProps {
  /**
   * Turn on DynamoDB deletion protection for every table: a `cdk destroy` or a stray console
   * click cannot drop the shelve records that say which retained volumes hold whose data.
   * @default true
   */
  readonly deletionProtection?: boolean;
}

/**
 * The data layer: one DynamoDB table per entry of `TABLES` (functions/shared/tables.ts), which
 * the local cloud creates in DynamoDB Local too. On-demand capacity, point-in-time recovery, the
 * spec's TTL attribute and GSIs; tables are retained when the stack is deleted.
 */
export class WarmbootData extends Construct {
  readonly tables: Readonly<Record<TableId, dynamodb.Table>>;

  constructor(scope: Construct, id: string, props: WarmbootDataProps = {}) {
    super(scope, id);
    const deletionProtection = props.deletionProtection ?? true;
    const tables: Partial<Record<TableId, dynamodb.Table>> = {};
    for (const spec of Object.values(TABLES) as TableSpec[]) {
      tables[spec.id] = this.createTable(spec, deletionProtection);
    }
    this.tables = tables as Record<TableId, dynamodb.Table>;
  }

  table(id: TableId): dynamodb.Table {
    return this.tables[id];
  }

  private createTable(spec: TableSpec, deletionProtection: boolean): dynamodb.Table {
    const table = new dynamodb.Table(this, pascal(spec.id), {
      partitionKey: { name: spec.partitionKey, type: dynamodb.AttributeType.STRING },
      ...(spec.sortKey ? { sortKey: { name: spec.sortKey, type: dynamodb.AttributeType.STRING } } : {}),
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: spec.ttlAttribute,
      deletionProtection,
      // Shelve records name the retained volumes that hold instances' data: never drop a table
      // with the stack. Deleting the data is an operator decision.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of spec.indexes) {
      table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
        sortKey: { name: index.sortKey, type: dynamodb.AttributeType.STRING },
        projectionType: dynamodb.ProjectionType.ALL,
      });
    }
    return table;
  }
}

/** `imageCache` → `ImageCache`: construct ids are part of the contract (logical ids). */
export const pascal = (id: string): string => id.charAt(0).toUpperCase() + id.slice(1);
