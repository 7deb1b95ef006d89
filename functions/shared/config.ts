import * as z from 'zod';
import { ConfigError } from './errors';

/**
 * Typed config loader. Each function declares the environment it needs as a zod object; a
 * missing or malformed variable fails the cold start with the variable's name, never later.
 */
export const loadConfig = <S extends z.ZodObject>(
  schema: S,
  env: Record<string, string | undefined>,
): z.infer<S> => {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue?.path.map(String).join('.') || '(environment)';
    throw new ConfigError(key, issue?.message ?? 'invalid');
  }
  return parsed.data;
};

export const envString = z.string().min(1);
export const envInt = z.coerce.number().int();
export const envJson = <T extends z.ZodType>(schema: T) =>
  z.string().transform((text, ctx) => {
    try {
      const value: unknown = JSON.parse(text);
      const result = schema.safeParse(value);
      if (!result.success) {
        ctx.addIssue({
          code: 'custom',
          message: result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
        });
        return z.NEVER;
      }
      return result.data as z.infer<T>;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not valid JSON' });
      return z.NEVER;
    }
  });
