import { describe, expect, it } from 'vitest';
import { CLIENT_TOKEN_MAX_LENGTH, launchClientToken } from '../../../functions/shared/client-token';

/** API_RunInstances, ClientToken: "Constraints: Maximum 64 ASCII characters". */
describe('launchClientToken', () => {
  it('keeps a name that fits as it is, so tokens stay readable', () => {
    expect(launchClientToken('linux-web-1767600000-0')).toBe('linux-web-1767600000-0');
    expect(launchClientToken('a'.repeat(64))).toBe('a'.repeat(64));
  });

  it('bounds a longer name to 64 printable ASCII characters, the same for the same launch, distinct per launch', () => {
    const pool = `p${'-x'.repeat(31)}`;
    const names = [0, 1, 2].map((index) => `${pool}-1767600000-${index}`);

    const tokens = names.map(launchClientToken);

    for (const token of tokens) {
      expect(token.length).toBeLessThanOrEqual(CLIENT_TOKEN_MAX_LENGTH);
      expect(token).toMatch(/^[\x21-\x7e]+$/);
      expect(token.startsWith(pool.slice(0, 31))).toBe(true);
    }
    expect(new Set(tokens).size).toBe(3);
    expect(names.map(launchClientToken)).toEqual(tokens);
  });

  it('replaces characters EC2 would refuse instead of sending them', () => {
    const token = launchClientToken('pool é');
    expect(token).toMatch(/^[\x21-\x7e]{1,64}$/);
    expect(token).not.toBe(launchClientToken('pool_e'));
  });
});
