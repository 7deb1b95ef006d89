import {
  INITIALIZE_DOCUMENT,
  PERSONALIZE_DOCUMENT,
  SECRETS_DOCUMENT,
} from '../../../functions/pools/documents';
import { TIMINGS } from '../../../functions/pools/domain/sizing';
import { type DocumentBehaviour, SYSPREP_GENERALIZED } from '../agent';

export interface PoolBehaviourOptions {
  /** Linux member initialization (agent install, image pulls), seconds; configurable. */
  readonly linuxInitializeSeconds?: number;
  /** Windows-like initialization (sysprep, OOBE): at least 15 minutes (AWS EC2 Windows guide). */
  readonly windowsInitializeSeconds?: number;
  /** Personalization: host name and one authorized key, a few seconds. */
  readonly personalizeSeconds?: number;
}

/**
 * What the pool documents do on a simulated host: initialization takes the pool's init time and
 * leaves an `initialized` marker (and, for a Windows generalization, the sysprep marker the SSM
 * simulator reads at the next boot); personalization takes seconds and records the host name and
 * key, so tests can assert which requester's key landed on which server.
 */
export const createPoolBehaviours = (
  options: PoolBehaviourOptions = {},
): Record<string, DocumentBehaviour> => {
  const linux = options.linuxInitializeSeconds ?? TIMINGS.linuxInitializeSeconds;
  const windows = Math.max(TIMINGS.windowsInitializeSeconds, options.windowsInitializeSeconds ?? 0);
  const personalize = options.personalizeSeconds ?? 3;
  return {
    [INITIALIZE_DOCUMENT]: async ({ host, parameters, clock }) => {
      const platform = parameters.platform?.[0] === 'windows' ? 'windows' : 'linux';
      await clock.sleep((platform === 'windows' ? windows : linux) * 1000);
      host.files.set('initialized', new Date(clock.now()).toISOString());
      host.files.set('platform', platform);
      // `packages` is one comma-separated String (functions/pools/documents.ts).
      const packages = (parameters.packages?.[0] ?? '').split(',').filter((pkg) => pkg !== '');
      for (const pkg of packages) host.files.set(`package:${pkg}`, 'installed');
      // sysprep /generalize: the next boot runs specialize and OOBE, and the agent waits for them.
      if (platform === 'windows' && parameters.generalize?.[0] === 'true')
        host.files.set(SYSPREP_GENERALIZED, new Date(clock.now()).toISOString());
      return { status: 'Success', output: `initialized (${platform})` };
    },
    [PERSONALIZE_DOCUMENT]: async ({ host, parameters, clock }) => {
      await clock.sleep(personalize * 1000);
      const hostname = parameters.hostname?.[0] ?? '';
      const key = parameters.sshPublicKey?.[0] ?? '';
      if (hostname !== '') host.files.set('hostname', hostname);
      if (key !== '') host.files.set(`authorized_keys:${parameters.sshUser?.[0] ?? 'ec2-user'}`, key);
      return { status: 'Success', output: 'personalized' };
    },
    // The Linux step really runs first (local/ssm/execute.ts): it reads each secret with the
    // instance's role and leaves the files, which the SSM simulator keeps in the host's `files`.
    [SECRETS_DOCUMENT]: async ({ parameters, clock }) => {
      await clock.sleep(personalize * 1000);
      const references = (parameters.secrets?.[0] ?? '').split(',').filter((reference) => reference !== '');
      return { status: 'Success', output: `installed ${references.length} secret(s)` };
    },
  };
};

export const BEHAVIOURS: Record<string, DocumentBehaviour> = createPoolBehaviours();
