import {
  INITIALIZE_DOCUMENT,
  LINUX_SECRET_DIRECTORY,
  PERSONALIZE_DOCUMENT,
  SECRETS_DOCUMENT,
} from '../../functions/pools/documents';
import type { CommandDocument } from '../../functions/shared/ssm-document';
import type { DocumentOutcome } from './agent';
import { type AgentResolution, secureReferencesIn } from './host-parameters';
import { DocumentRenderError, renderDocument, stepsFor } from './render';
import { amazonLinuxTools, debianTools, type Shell, type StubTool, withScratchHost } from './shell';

/**
 * Documents whose Linux steps the SSM simulator renders as the agent does and runs in a real
 * shell before their modelled effect applies (docs/ssm-fidelity.md). A script that fails there
 * (a dash-only syntax error, a list arriving as JSON, a missing package manager) fails the
 * invocation exactly as the agent would report it. The image-cache documents are not run here:
 * their scripts read host state (free disk, image store sizes) that the simulator models in
 * `local/ssm/agent.ts` and that stub tools cannot answer consistently; they are rendered and run
 * against stubs in `test/unit/local/ssm-documents-run.test.ts` instead.
 */
export const EXECUTED_DOCUMENTS: ReadonlySet<string> = new Set([
  INITIALIZE_DOCUMENT,
  PERSONALIZE_DOCUMENT,
  SECRETS_DOCUMENT,
]);

/** The instance a script runs on, as the agent there sees it. */
export interface HostAgentRun {
  /** What the agent sets for every script (amazon-ssm-agent `executers.go`). */
  readonly environment: Readonly<Record<string, string>>;
  /** The agent's `{{ssm:…}}` resolution of a rendered step (host-parameters.ts). */
  readonly resolve: (script: string) => AgentResolution;
  /** The host's `aws`, answering `get-parameter` for the script's `{{ssm-secure:…}}` names. */
  readonly aws: (names: readonly string[]) => StubTool;
}

/** A run of the Linux steps, and the secret files they left on the host (path → content). */
export type LinuxStepsOutcome = DocumentOutcome & { readonly files: Readonly<Record<string, string>> };

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
  agent: HostAgentRun,
): LinuxStepsOutcome | undefined => {
  if (platform !== 'Linux') return undefined;
  let steps: ReturnType<typeof renderDocument>;
  try {
    steps = stepsFor(renderDocument(document, parameters), 'Linux');
  } catch (error) {
    if (error instanceof DocumentRenderError) return { status: 'Failed', output: error.message, files: {} };
    throw error;
  }
  if (steps.length === 0) return undefined;
  const scripts: string[] = [];
  for (const step of steps) {
    // The agent resolves `{{ssm:…}}` while it parses the document, before any step runs.
    const resolved = agent.resolve(step.script);
    if (!resolved.ok) return { status: 'Failed', output: resolved.error, files: {} };
    scripts.push(resolved.script);
  }
  const aws = agent.aws(scripts.flatMap(secureReferencesIn));
  const tools = family === 'debian' ? debianTools({ aws }) : amazonLinuxTools({ aws });
  return withScratchHost(tools, (host) => {
    for (const [index, step] of steps.entries()) {
      const run = host.run(scripts[index] ?? '', SHELL_OF[family], { environment: agent.environment });
      if (run.status === 'Failed') {
        return {
          status: 'Failed',
          output: `${step.name} exited ${run.exitCode} under ${family} sh: ${run.stderr.trim().slice(0, 500)}`,
          files: {},
        };
      }
    }
    return {
      status: 'Success',
      output: steps.map((step) => step.name).join(', '),
      files: host.filesIn(LINUX_SECRET_DIRECTORY),
    };
  });
};
