import { App, type AppProps, CfnOutput, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Construct } from 'constructs';
import { loadWarmbootContext, type WarmbootSettings } from './config';
import { addGuardrailOutputs } from './guardrails';
import { requestUrlOutputId } from './request-urls';
import { Warmboot } from './warmboot';

/** The CDK context key operators configure warmboot under (cdk.json or `-c warmboot=...`). */
export const CONTEXT_KEY = 'warmboot';

export interface WarmbootStackProps extends StackProps {
  /** Validated settings, normally `loadWarmbootContext(app.node.tryGetContext('warmboot'))`. */
  readonly settings: WarmbootSettings;
}

/**
 * The deployable stack: one `Warmboot` from configuration. Environment-agnostic (no account or
 * Region lookups), so synth never needs credentials.
 */
export class WarmbootStack extends Stack {
  readonly warmboot: Warmboot;

  constructor(scope: Construct, id: string, props: WarmbootStackProps) {
    super(scope, id, props);
    const { settings } = props;
    this.warmboot = new Warmboot(this, 'Warmboot', {
      deletionProtection: settings.deletionProtection,
      popularity: settings.popularity,
      hostGroups: settings.hostGroups,
      fastRestore: settings.fastRestore,
      pools: settings.pools,
      poolPolicy: settings.poolPolicy,
      ssmDefaultHostManagement: settings.ssmDefaultHostManagement,
      shelving: settings.shelving,
      allowShelvedDataDeletion: settings.allowShelvedDataDeletion,
      ebsKmsKeyArns: settings.ebsKmsKeyArns,
      logRetention: settings.logRetentionDays as RetentionDays,
      shareableTestEvents: settings.shareableTestEvents,
      reservedConcurrency: settings.reservedConcurrency,
      operators: settings.operators,
      admins: settings.admins,
      requestBus: settings.requestBus,
      factsBus: settings.factsBus,
      ...(settings.alarmEmail ? { alarmEmail: settings.alarmEmail } : {}),
    });
    // Where operators and admins send requests: `npx warmboot … --function-url` takes one of these.
    for (const fn of this.warmboot.functions) {
      if (!fn.requestUrl) continue;
      new CfnOutput(this, requestUrlOutputId(fn.spec.id), {
        description: `warmboot ${fn.spec.id}: IAM-authenticated URL for operator and admin requests`,
        value: fn.requestUrl.url,
      });
    }
    // The SCP and permissions boundary that keep warmboot:* tags to warmboot and its admins.
    addGuardrailOutputs(this, {
      warmbootRoleArns: this.warmboot.functions.map((fn) => fn.role.roleArn),
      adminArns: settings.admins,
    });
  }
}

/**
 * The app as `cdk synth` runs it: context validated (a bad value throws naming its key path),
 * stack `Warmboot`, and cdk-nag AwsSolutions checks on everything.
 */
export const createWarmbootApp = (props: AppProps = {}): { app: App; stack: WarmbootStack } => {
  const app = new App(props);
  const settings = loadWarmbootContext(app.node.tryGetContext(CONTEXT_KEY));
  const stack = new WarmbootStack(app, 'Warmboot', {
    settings,
    description: 'warmboot: EC2 instances ready fast (warm images, prestarted pools, fast unshelve)',
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
};
