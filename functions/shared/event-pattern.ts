/**
 * EventBridge event patterns as data. The CDK rules deploy exactly these objects and the local
 * bus matches events against them with `matchesPattern`, so one definition serves both.
 * Supported: exact values, `prefix`, `exists`, `anything-but` (values or prefix), `numeric`
 * (EventBridge user guide, eb-event-patterns and eb-create-pattern-operators).
 */
export type PatternValue =
  | string
  | number
  | boolean
  | null
  | { prefix: string }
  | { exists: boolean }
  | { 'anything-but': string | number | readonly (string | number)[] | { prefix: string } }
  | { numeric: readonly (string | number)[] };

export interface EventPattern {
  readonly [key: string]: readonly PatternValue[] | EventPattern;
}

const matchesValue = (candidate: unknown, present: boolean, value: PatternValue): boolean => {
  if (value === null || typeof value !== 'object') return present && candidate === value;
  if ('exists' in value) return value.exists === present;
  if (!present) return false;
  if ('prefix' in value) return typeof candidate === 'string' && candidate.startsWith(value.prefix);
  if ('anything-but' in value) {
    const rule = value['anything-but'];
    if (typeof rule === 'object' && rule !== null && !Array.isArray(rule) && 'prefix' in rule) {
      return !(typeof candidate === 'string' && candidate.startsWith(rule.prefix));
    }
    const excluded = Array.isArray(rule) ? rule : [rule];
    return !excluded.includes(candidate as string | number);
  }
  if ('numeric' in value) {
    if (typeof candidate !== 'number') return false;
    const ops = value.numeric;
    for (let index = 0; index + 1 < ops.length; index += 2) {
      const op = ops[index];
      const bound = Number(ops[index + 1]);
      const ok =
        (op === '>' && candidate > bound) ||
        (op === '>=' && candidate >= bound) ||
        (op === '<' && candidate < bound) ||
        (op === '<=' && candidate <= bound) ||
        (op === '=' && candidate === bound);
      if (!ok) return false;
    }
    return true;
  }
  return false;
};

export const matchesPattern = (event: unknown, pattern: EventPattern): boolean => {
  if (typeof event !== 'object' || event === null) return false;
  const record = event as Record<string, unknown>;
  for (const [key, rule] of Object.entries(pattern)) {
    const present = key in record && record[key] !== undefined;
    const candidate = record[key];
    if (Array.isArray(rule)) {
      const candidates = Array.isArray(candidate) ? candidate : [candidate];
      const ok = (rule as readonly PatternValue[]).some((value) =>
        typeof value === 'object' && value !== null && 'exists' in value
          ? matchesValue(candidate, present, value)
          : candidates.some((item) => matchesValue(item, present, value)),
      );
      if (!ok) return false;
    } else if (!matchesPattern(candidate, rule as EventPattern)) {
      return false;
    }
  }
  return true;
};
