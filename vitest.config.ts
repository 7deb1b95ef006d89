import { defineConfig } from 'vitest/config';

const env = {
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  AWS_REGION: 'us-east-1',
  POWERTOOLS_DEV: 'false',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
  POWERTOOLS_TRACE_ENABLED: 'false',
};

export default defineConfig({
  test: {
    env,
    // Vitest's default on 2 cores is one worker; the integration and fault files mostly wait on
    // DynamoDB Local (another process), so two workers keep both cores busy.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          // 1,000 schedules of one capability take 10–30 minutes on 2 cores; the image cache's
          // 25-minute settle made it exceed an hour (748 runs) with four suites sharing them.
          testTimeout: 3 * 3_600_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'infra',
          // test/package: the construct packed, installed into a plain CDK app and synthesized.
          include: ['test/infra/**/*.test.ts', 'test/package/**/*.test.ts'],
          testTimeout: 300_000,
        },
      },
    ],
  },
});
