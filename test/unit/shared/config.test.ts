import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { envInt, envJson, envString, loadConfig } from '../../../functions/shared/config';
import { ConfigError } from '../../../functions/shared/errors';

const schema = z.object({
  ORDERS_TABLE: envString,
  BATCH_SIZE: envInt,
  GROUPS: envJson(z.array(z.object({ name: z.string().min(1) }))),
});

describe('loadConfig', () => {
  it('returns typed values when every variable is present', () => {
    const config = loadConfig(schema, {
      ORDERS_TABLE: 'orders',
      BATCH_SIZE: '50',
      GROUPS: '[{"name":"gpu"}]',
    });

    expect(config).toEqual({ ORDERS_TABLE: 'orders', BATCH_SIZE: 50, GROUPS: [{ name: 'gpu' }] });
  });

  it('fails fast naming the missing variable', () => {
    const load = () => loadConfig(schema, { BATCH_SIZE: '50', GROUPS: '[]' });

    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/^ORDERS_TABLE: /);
  });

  it('names the variable whose JSON content is invalid, with the inner path', () => {
    const load = () =>
      loadConfig(schema, { ORDERS_TABLE: 'orders', BATCH_SIZE: '1', GROUPS: '[{"name":""}]' });

    expect(load).toThrow(/^GROUPS: 0\.name: /);
  });

  it('rejects a non-integer number', () => {
    expect(() => loadConfig(schema, { ORDERS_TABLE: 'o', BATCH_SIZE: '1.5', GROUPS: '[]' })).toThrow(
      /^BATCH_SIZE: /,
    );
  });
});
