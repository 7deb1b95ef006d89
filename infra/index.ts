/**
 * The reusable part of warmboot for other CDK apps: `new Warmboot(this, 'Warmboot', props)`.
 * The ready-made stack (`infra/stack.ts`) is just this construct configured from cdk.json.
 */
export { Warmboot, type WarmbootProps } from './warmboot';
