import { INITIALIZE_DOCUMENT, PERSONALIZE_DOCUMENT } from '../../functions/pools/documents';
import type { CommandDocument } from '../../functions/shared/ssm-document';
import type { DocumentOutcome } from './agent';
import { DocumentRenderError, renderDocument, stepsFor } from './render';
import { amazonLinuxTools, debianTools, type Shell, withScratchHost } from './shell';

/**
 * Documents whose Linux steps the SSM simulator renders as the agent does and runs in a real
 * shell before their modelled effect applies (docs/ssm-fidelity.md). A script that fails there
 * (a dash-only syntax error, a list arriving as JSON, a missing package manager) fails the
 * invocation exactly as the agent would report it. The image-cache documents are not run here:
 * their scripts read host state (free disk, image store sizes) that the simulator models in
 * `local/ssm/agent.ts` and that stub tools cannot answer consistently; they are rendered and run
 * against stubs in `test/unit/local/ssm-documents-run.test.ts` instead.
 */
export const EXECUTED_DOCUMENTS: ReadonlySet<string> = new Set([INITIALIZE_DOCUMENT, PERSONALIZE_DOCUMENT]);

/** The host's family decides what `sh` is (dash on Debian and Ubuntu, bash on Amazon Linux). */
export type HostFamily = 'amazon-linux' | 'debian';

/** An AMI's family from its name, as far as the simulator knows it (Amazon Linux otherwise). */
export const hostFamilyOf = (imageName: string | undefined): HostFamily =>
  imageName !== undefined && /debian|ubuntu/i.test(imageName) ? 'debian' : 'amazon-linux';

const SHELL_OF: Readonly<Record<HostFamily, Shell>> = { 'amazon-linux': 'bash', debian: 'dash' };

/**
 * Runs the document's Linux steps on a scratch host of `family`; undefined when there is nothing
 * to run (a Windows member: PowerShell is not available here, see docs/ssm-fidelity.md).
 */
export const executeLinuxSteps = (
  document: CommandDocument,
  parameters: Readonly<Record<string, readonly string[]>>,
  family: HostFamily,
  platform: 'Linux' | 'Windows',
): DocumentOutcome | undefined => {
  if (platform !== 'Linux') return undefined;
  let steps: ReturnType<typeof renderDocument>;
  try {
    steps = stepsFor(renderDocument(document, parameters), 'Linux');
  } catch (error) {
    if (error instanceof DocumentRenderError) return { status: 'Failed', output: error.message };
    throw error;
  }
  if (steps.length === 0) return undefined;
  const tools = family === 'debian' ? debianTools() : amazonLinuxTools();
  return withScratchHost(tools, (host) => {
    for (const step of steps) {
      const run = host.run(step.script, SHELL_OF[family]);
      if (run.status === 'Failed') {
        return {
          status: 'Failed',
          output: `${step.name} exited ${run.exitCode} under ${family} sh: ${run.stderr.trim().slice(0, 500)}`,
        };
      }
    }
    return { status: 'Success', output: steps.map((step) => step.name).join(', ') };
  });
};
