import { describe, expect, it } from 'vitest';
import {
  canTransition,
  IllegalTransitionError,
  MEMBER_STATES,
  TRANSITIONS,
  transition,
} from '../../../functions/pools/domain/lifecycle';
import { member, NOW } from './fixtures';

describe('member lifecycle', () => {
  it('walks the stopped-tier path launching → initializing → stopping → ready → claimed → handed-over', () => {
    let current = member({ state: 'launching', version: 0 });
    for (const next of ['initializing', 'stopping', 'ready', 'claimed', 'handed-over'] as const) {
      current = transition(current, next, NOW);
    }
    expect(current.state).toBe('handed-over');
    expect(current.version).toBe(5);
    expect(current.stateSince).toBe(NOW);
  });

  it('rejects moving a member backwards or out of a final state', () => {
    expect(() => transition(member({ state: 'ready' }), 'launching', NOW)).toThrow(IllegalTransitionError);
    expect(() => transition(member({ state: 'handed-over' }), 'ready', NOW)).toThrow(IllegalTransitionError);
    expect(() => transition(member({ state: 'retiring' }), 'ready', NOW)).toThrow(IllegalTransitionError);
    expect(() => transition(member({ state: 'claimed' }), 'claimed', NOW)).toThrow(IllegalTransitionError);
  });

  it('lets only a claim-owned cold launch go from initializing straight to claimed', () => {
    expect(() => transition(member({ state: 'initializing' }), 'claimed', NOW)).toThrow(
      IllegalTransitionError,
    );
    const cold = member({ state: 'initializing', origin: 'claim', claimId: 'req-1' });
    expect(transition(cold, 'claimed', NOW).state).toBe('claimed');
  });

  it('lets every live state retire, and nothing leaves terminated', () => {
    for (const state of MEMBER_STATES) {
      if (state === 'terminated' || state === 'handed-over' || state === 'retiring') continue;
      expect(canTransition(state, 'retiring')).toBe(true);
    }
    expect(TRANSITIONS.terminated).toEqual([]);
  });
});
