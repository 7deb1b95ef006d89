import { DynamoDBClient, DescribeTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { startDynamoDbLocal, createTables, LOCAL_CREDENTIALS } from './local/dynamodb-local';
const ddb = await startDynamoDbLocal();
const client = new DynamoDBClient({ endpoint: ddb.endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
for (let i = 0; i < 3; i++) {
  const names = await createTables(client, `t${i}`);
  const t0 = Date.now();
  for (;;) {
    const r = await client.send(new DescribeTimeToLiveCommand({ TableName: names.shelves }));
    if (r.TimeToLiveDescription?.TimeToLiveStatus === 'ENABLED') break;
    await new Promise((res) => setTimeout(res, 20));
  }
  console.log('enabled after', Date.now() - t0);
}
client.destroy(); await ddb.stop();
