import { describe, expect, it } from 'vitest';
import {
  parseRequestServer,
  personalizeParameters,
  requestServerDetail,
} from '../../../functions/claim/schemas';
import { definePoolDetail, drainPoolDetail, initParameters } from '../../../functions/pools/schemas';
import { ValidationError } from '../../../functions/shared/errors';
import { route } from '../../../functions/shared/event-registry';
import { sampleEvent } from '../../support/events';

const sample = (path: string) => sampleEvent<Record<string, unknown>>(path);

const parse = <S extends Parameters<typeof route>[2]>(
  detailType: string,
  schema: S,
  event: Record<string, unknown>,
) => route('warmboot', detailType, schema, async () => undefined).parse(event);

describe('sample console events', () => {
  it('define-pool parses with the Define Pool schema and its init parameters pass the document patterns', () => {
    const { detail } = parse('Define Pool', definePoolDetail, sample('pools/define-pool.json'));
    const { pool } = definePoolDetail.parse(detail);
    expect(pool).toMatchObject({ name: 'windows-build', tier: 'stopped', sizing: { mode: 'demand' } });
    expect(initParameters(pool).platform).toEqual(['windows']);
  });

  it('drain-pool parses with the Drain Pool schema', () => {
    const { detail } = parse('Drain Pool', drainPoolDetail, sample('pools/drain-pool.json'));
    expect(detail).toEqual({ pool: 'windows-build' });
  });

  it('request-server parses, and its personalization passes the document patterns', () => {
    const { detail } = parse('Request Server', requestServerDetail, sample('claim/request-server.json'));
    const parsed = parseRequestServer(detail);
    if (parsed.kind !== 'request') throw new Error('sample is a new request');
    const { request } = parsed;
    expect(request.ownerTags).toEqual({ owner: 'team-build', 'cost-center': 'cc-1234' });
    expect(personalizeParameters(request, 'linux').hostname).toEqual(['build-0001']);
  });

  it('request-server with a smuggled warmboot tag or shell in the host name is rejected naming the field', () => {
    const event = sample('claim/request-server.json');
    const detail = event.detail as Record<string, unknown>;
    const bad = (change: Record<string, unknown>) => {
      try {
        parseRequestServer(
          parse('Request Server', requestServerDetail, { ...event, detail: { ...detail, ...change } }).detail,
        );
      } catch (error) {
        if (error instanceof ValidationError) return error.issues.map((issue) => issue.field);
        throw error;
      }
      return [];
    };
    expect(bad({ ownerTags: { 'warmboot:pool': 'other' } })).toContain('detail.ownerTags.warmboot:pool');
    expect(bad({ personalization: { hostname: 'x;reboot' } })).toContain('detail.personalization.hostname');
  });
});
