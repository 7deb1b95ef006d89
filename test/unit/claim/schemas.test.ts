import { describe, expect, it } from 'vitest';
import { parseRequestServer } from '../../../functions/claim/schemas';
import { SAFE_PARAMETER_VALUE_PATTERN } from '../../../functions/pools/patterns';
import { ValidationError } from '../../../functions/shared/errors';

const withDocument = (document: { name: string; parameters: Record<string, string[]> }) => ({
  pool: 'linux-web',
  ownerTags: { owner: 'team-a' },
  personalization: { document },
});

const fieldOf = (detail: unknown): string | undefined => {
  try {
    parseRequestServer(detail);
    return undefined;
  } catch (error) {
    if (error instanceof ValidationError) return error.field;
    throw error;
  }
};

describe('Request Server personalization document parameters', () => {
  it('accept plain values and paths, and refuse any `..` and shell metacharacters', () => {
    const pattern = new RegExp(SAFE_PARAMETER_VALUE_PATTERN);
    for (const good of ['corp.example.com', 'eu-west', '/opt/app/config.yaml', 'a.b', ''])
      expect(pattern.test(good), good).toBe(true);
    for (const bad of ['..', '../eu-west', 'a/../b', 'eu-west/..', 'x;reboot', '$(id)', 'a\nb'])
      expect(pattern.test(bad), bad).toBe(false);
  });

  it('name the refused value in the error', () => {
    const detail = withDocument({ name: 'Warmboot-PoolJoinDomain', parameters: { site: ['../eu-west'] } });

    expect(fieldOf(detail)).toBe('detail.personalization.document.parameters.site.0');
  });

  it('of a document warmboot deploys must match that parameter’s own allowedPattern', () => {
    const valid = withDocument({ name: 'Warmboot-PoolPersonalize', parameters: { hostname: ['web-1'] } });
    const invalid = withDocument({ name: 'Warmboot-PoolPersonalize', parameters: { hostname: ['web_1:x'] } });
    const unknown = withDocument({ name: 'Warmboot-PoolPersonalize', parameters: { domain: ['corp'] } });

    expect(fieldOf(valid)).toBeUndefined();
    expect(fieldOf(invalid)).toBe('detail.personalization.document.parameters.hostname.0');
    expect(fieldOf(unknown)).toBe('detail.personalization.document.parameters.domain');
  });
});
