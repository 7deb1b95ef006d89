import { describe, expect, it } from 'vitest';
import { checkNamedDocument, parseRequestServer } from '../../../functions/claim/schemas';
import { SECRETS_DOCUMENT } from '../../../functions/pools/documents';
import { SAFE_PARAMETER_VALUE_PATTERN } from '../../../functions/pools/patterns';
import type { Caller } from '../../../functions/shared/caller';
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

describe('secrets in a Request Server travel as {{ssm-secure:…}} references, never as values', () => {
  const secrets = (...values: string[]) =>
    withDocument({ name: SECRETS_DOCUMENT, parameters: { secrets: values, owner: ['ec2-user'] } });
  const reference = (tenant: string, name: string) => `{{ssm-secure:/warmboot/tenants/${tenant}/${name}}}`;
  const field = 'detail.personalization.document.parameters.secrets.0';
  const forTenant = (tenant: string): Caller => ({ via: 'request-bus', tenants: [tenant], admin: false });

  it('accept references under the tenant prefix, at most ten, each installed as its own file', () => {
    const list = (count: number) =>
      Array.from({ length: count }, (_, index) => reference('team-a', `app/key-${index}`)).join(',');

    expect(fieldOf(secrets(reference('team-a', 'db-password')))).toBeUndefined();
    expect(fieldOf(secrets(list(10)))).toBeUndefined();
    expect(fieldOf(secrets(list(11)))).toBe(field);
    expect(fieldOf(secrets(`${reference('team-a', 'a/token')},${reference('team-a', 'b/token')}`))).toBe(
      'detail.personalization.document.parameters.secrets',
    );
  });

  it('refuse a value that is not a reference, another reference form, or a name outside the prefix', () => {
    for (const bad of [
      'hunter2{',
      '{{ssm:/warmboot/tenants/team-a/db-password}}',
      '{{ ssm-secure:/warmboot/tenants/team-a/db-password }}',
      '{{ssm-secure:/warmboot/images/base}}',
      '{{ssm-secure:/other/team-a/db-password}}',
      '{{ssm-secure:/warmboot/tenants/team-a/../team-b/db-password}}',
      '{{ssm-secure:/warmboot/tenants/team-a}}',
      `${reference('team-a', 'x')};reboot`,
      `${reference('team-a', 'x')}\n`,
      '{{resolve:secretsmanager:db}}',
    ]) {
      expect(fieldOf(secrets(bad)), bad).toBe(field);
    }
  });

  it('may name only secrets of a tenant the caller acts for', () => {
    const request = (value: string) => {
      const parsed = parseRequestServer(secrets(value));
      if (parsed.kind !== 'request') throw new Error('not a request');
      return parsed.request;
    };
    const refusal = (value: string, caller: Caller | undefined) => {
      try {
        checkNamedDocument(request(value), caller);
        return undefined;
      } catch (error) {
        if (error instanceof ValidationError) return error.message;
        throw error;
      }
    };

    expect(refusal(reference('team-a', 'db'), forTenant('team-a'))).toBeUndefined();
    expect(refusal(reference('team-b', 'db'), forTenant('team-a'))).toContain(
      '/warmboot/tenants/team-b/db is a secret of tenant team-b, which the caller does not act for',
    );
    expect(refusal(`${reference('team-a', 'a')},${reference('team-b', 'b')}`, forTenant('team-a'))).toContain(
      'tenant team-b',
    );
    expect(
      refusal(reference('team-b', 'db'), { via: 'request-bus', tenants: '*', admin: false }),
    ).toBeUndefined();
    // A request that reached the claim without a caller acts for nobody.
    expect(refusal(reference('team-a', 'db'), undefined)).toContain('does not act for');
  });
});
