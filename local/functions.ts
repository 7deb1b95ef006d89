import type { Context } from 'aws-lambda';
import type { FunctionId } from '../functions/catalog';
import type { Runtime } from '../functions/shared/runtime';

/** A deployed function's entry as the local cloud calls it (the full middy chain). */
export type FunctionHandler = (event: unknown, context: Context) => Promise<unknown>;
export type HandlerFactory = (runtime: Runtime) => FunctionHandler;

/** `functions/<folder>/`: the kebab-case of the catalog id (CONTRIBUTING.md). */
export const functionFolder = (functionId: FunctionId): string =>
  functionId.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);

const pascalCase = (functionId: FunctionId): string =>
  functionId.charAt(0).toUpperCase() + functionId.slice(1);

/**
 * Loads `functions/<folder>/handler.ts` and returns its handler factory. The import is dynamic so
 * a function that does not exist yet fails only the tests that wire it. The factory is
 * `create<Fn>Handler(runtime)` (CONTRIBUTING.md), e.g. `createImageCacheHandler`.
 */
export const loadHandlerFactory = async (functionId: FunctionId): Promise<HandlerFactory> => {
  const path = `../functions/${functionFolder(functionId)}/handler.ts`;
  let module: Record<string, unknown>;
  try {
    module = (await import(path)) as Record<string, unknown>;
  } catch (error) {
    throw new Error(
      `cannot load the ${functionId} function from functions/${functionFolder(functionId)}/handler.ts`,
      {
        cause: error,
      },
    );
  }
  const name = `create${pascalCase(functionId)}Handler`;
  const factory = module[name];
  if (typeof factory !== 'function') {
    throw new Error(`functions/${functionFolder(functionId)}/handler.ts does not export ${name}(runtime)`);
  }
  return factory as HandlerFactory;
};
