import * as fs from 'node:fs';
import * as path from 'node:path';
import type { App } from 'aws-cdk-lib';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { PROJECT_ROOT } from '../../infra/function';
import { createWarmbootApp, type WarmbootStack } from '../../infra/stack';

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Condition?: string;
  readonly DependsOn?: string | string[];
}

export interface CfnTemplate {
  readonly Resources: Record<string, CfnResource>;
}

export interface Synthesized {
  readonly app: App;
  readonly stack: WarmbootStack;
  readonly assembly: CloudAssembly;
  readonly template: CfnTemplate;
}

/** The context operators deploy with: cdk.json, feature flags included. */
export const cdkJsonContext = (): Record<string, unknown> =>
  (
    JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as {
      context: Record<string, unknown>;
    }
  ).context;

/**
 * The full example settings operators start from (examples/warmboot.json: a host group, a Linux
 * and a Windows pool). cdk.json itself deploys none of it, so `cdk deploy` as documented creates
 * no pool in subnets that do not exist.
 */
export const exampleSettings = (): Record<string, unknown> =>
  JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'examples', 'warmboot.json'), 'utf8')) as Record<
    string,
    unknown
  >;

/**
 * Synthesizes the app as `cdk synth` would (cdk.json context with the example settings, cdk-nag
 * plugin, validation), except
 * that asset bundling is skipped (`aws:cdk:bundling-stacks: []`): bundling is covered by
 * `npm run test:synth`, and the infra suite stays fast. Call it once per test file.
 */
export const synthesize = (overrides: Record<string, unknown> = {}): Synthesized => {
  const outdir = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), 'warmboot-cdk-'));
  const { app, stack } = createWarmbootApp({
    outdir,
    context: {
      ...cdkJsonContext(),
      warmboot: exampleSettings(),
      'aws:cdk:bundling-stacks': [],
      ...overrides,
    },
  });
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as CfnTemplate;
  return { app, stack, assembly, template };
};

export const resourcesOfType = (template: CfnTemplate, type: string): [string, CfnResource][] =>
  Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);

/**
 * A CloudFormation value as readable text: `{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, …]]}`
 * becomes `arn:${AWS::Partition}:…` and `{"Fn::GetAtt": ["Table", "Arn"]}` becomes `${Table.Arn}`.
 */
export const cfnText = (value: unknown): string => {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null) return String(value);
  const node = value as Record<string, unknown>;
  if (Array.isArray(node['Fn::Join'])) {
    const [delimiter, parts] = node['Fn::Join'] as [string, unknown[]];
    return parts.map(cfnText).join(delimiter);
  }
  if (node.Ref !== undefined) return `\${${String(node.Ref)}}`;
  if (Array.isArray(node['Fn::GetAtt'])) return `\${${(node['Fn::GetAtt'] as string[]).join('.')}}`;
  return JSON.stringify(value);
};
