import { expect } from 'vitest';
import { type CommandDocument, invalidDocumentParameter } from '../../functions/shared/ssm-document';
import { type RenderedStep, renderDocument, type StepPlatform, stepsFor } from '../../local/ssm/render';
import type { ScratchHost, Shell, ShellRun } from '../../local/ssm/shell';

/** The two shells `sh` is on the hosts warmboot runs documents on: dash (Debian/Ubuntu), bash (Amazon Linux). */
export const SHELLS: readonly Shell[] = ['dash', 'bash'];

/** Renders after the same validation SendCommand applies, and keeps the steps of `platform`. */
export const renderedSteps = (
  document: CommandDocument,
  parameters: Record<string, string[]>,
  platform: StepPlatform,
): RenderedStep[] => {
  expect(invalidDocumentParameter(document, parameters)).toBeUndefined();
  return stepsFor(renderDocument(document, parameters), platform);
};

/** The Linux step(s) of `document` that aws:runShellScript runs. */
export const linuxSteps = (document: CommandDocument, parameters: Record<string, string[]>): RenderedStep[] =>
  renderedSteps(document, parameters, 'Linux').filter((step) => step.action === 'aws:runShellScript');

/** Runs the one Linux step of `document` on `host` as aws:runShellScript runs it: `sh -c`, `sh` being `shell`. */
export const runLinuxStep = (
  host: ScratchHost,
  document: CommandDocument,
  parameters: Record<string, string[]>,
  shell: Shell,
): ShellRun => {
  const steps = linuxSteps(document, parameters);
  expect(steps).toHaveLength(1);
  const [step] = steps;
  if (!step) throw new Error(`${document.name} has no Linux step`);
  return host.run(step.script, shell);
};

/** A test document of one aws:runShellScript step `step` running `runCommand`. */
export const shellScriptDocument = (
  name: string,
  description: string,
  body: Pick<CommandDocument, 'parameters'> & { step: string; runCommand: string },
): CommandDocument => ({
  name,
  description,
  parameters: body.parameters,
  mainSteps: [{ action: 'aws:runShellScript', name: body.step, inputs: { runCommand: [body.runCommand] } }],
});
