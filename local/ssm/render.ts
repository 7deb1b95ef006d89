import { type CommandDocument, documentContent } from '../../functions/shared/ssm-document';

/**
 * Renders a schemaVersion 2.2 Command document the way the SSM agent does before it runs a step,
 * so the local cloud can run the very text a real instance would run.
 *
 * Every rule below follows amazon-ssm-agent (github.com/aws/amazon-ssm-agent, read at commit
 * 1c217c89, October 2024):
 * - `agent/framework/docparser/docparser.go` `ParseParameters`: a String parameter is its first
 *   value, a StringList parameter is the list of its values.
 * - `docparser.go` `getValidatedParameters`: names that are not `^[a-zA-Z0-9]+$` are dropped
 *   (`parameters.ValidParameters`); a parameter the command does not give takes the document's
 *   `default`.
 * - `agent/framework/docparser/parameters/parameters.go` `ReplaceParameters`: walks the step's
 *   `inputs`; a string that is exactly `{{ name }}` (whitespace allowed inside the braces,
 *   `isSingleParameterString`) becomes the parameter's value itself, whatever its type; any
 *   other string gets every `{{ name }}` replaced by `convertToString(value)`: the string as is,
 *   anything else `json.Marshal`led, so a StringList becomes `["git","docker"]` and an empty one
 *   `[]` (`ReplaceParameter`). That function also turns `$$` into `$` in substituted values.
 *   References to names that are not parameters are left as they are.
 * - `agent/plugins/runscript/runscript.go` `runCommandsRawInput`: the inputs are remarshalled into
 *   `RunCommand []string`; anything else (e.g. a StringList that was the whole value of one
 *   runCommand element, now a list inside the list) fails the step with "Invalid format in plugin
 *   properties". `agent/plugins/pluginutil/pluginutil.go` `CreateScriptFile` writes the lines
 *   joined with "\n" plus a final "\n"; runshellscript.go runs that file with `sh -c`.
 *
 * One rule is the service's, not the agent's: SendCommand refuses a command that leaves a
 * parameter without a default unset (InvalidParameters; SSM User Guide, "Data elements and
 * parameters", https://docs.aws.amazon.com/systems-manager/latest/userguide/documents-syntax-data-elements-parameters.html).
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export class DocumentRenderError extends Error {
  readonly code: 'InvalidParameters' | 'InvalidPluginProperties';

  constructor(code: DocumentRenderError['code'], message: string) {
    super(message);
    this.name = 'DocumentRenderError';
    this.code = code;
  }
}

interface ContentParameter {
  readonly type: string;
  readonly default?: JsonValue;
}

/** The deployed document as infra writes it (`documentContent`): what the agent receives. */
export interface DocumentContent {
  readonly parameters?: Readonly<Record<string, ContentParameter>>;
  readonly mainSteps: readonly Record<string, unknown>[];
}

/** parameters.go `paramNameRegex`. */
const PARAMETER_NAME = /^[a-zA-Z0-9]+$/;
/** Go RE2 `\s` is exactly these five; JavaScript's `\s` also matches Unicode spaces. */
const GO_SPACE = '[\\t\\n\\f\\r ]';

/**
 * Go's `json.Marshal`: like JSON.stringify for strings and lists, but it also escapes `<`, `>`,
 * `&`, U+2028 and U+2029 (encoding/json, "HTMLEscape" is on by default).
 */
export const goJsonMarshal = (value: JsonValue): string =>
  (JSON.stringify(value) ?? 'null').replace(
    /[<>&\u2028\u2029]/g,
    (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );

/** parameters.go `convertToString`. */
const convertToString = (value: JsonValue): string =>
  typeof value === 'string' ? value : goJsonMarshal(value);

/** parameters.go `isSingleParameterString`. */
const isSingleParameterString = (input: string, name: string): boolean =>
  PARAMETER_NAME.test(name) && new RegExp(`^\\{\\{${GO_SPACE}*${name}${GO_SPACE}*\\}\\}$`).test(input);

/** parameters.go `ReplaceParameter`: every embedded reference, in one pass (values are not rescanned). */
export const replaceParameter = (input: string, parameters: Readonly<Record<string, JsonValue>>): string => {
  const tokens: { start: number; end: number; value: string }[] = [];
  for (const [name, value] of Object.entries(parameters)) {
    const replacement = convertToString(value).replaceAll('$$', '$');
    for (const match of input.matchAll(new RegExp(`\\{\\{${GO_SPACE}*${name}${GO_SPACE}*\\}\\}`, 'g'))) {
      tokens.push({ start: match.index, end: match.index + match[0].length, value: replacement });
    }
  }
  tokens.sort((a, b) => a.start - b.start);
  let out = '';
  let from = 0;
  for (const token of tokens) {
    out += input.slice(from, token.start) + token.value;
    from = token.end;
  }
  return out + input.slice(from);
};

/** parameters.go `ReplaceParameters`: the whole-value rule first, then embedded references. */
export const replaceParameters = (
  input: unknown,
  parameters: Readonly<Record<string, JsonValue>>,
): unknown => {
  if (typeof input === 'string') {
    for (const [name, value] of Object.entries(parameters)) {
      if (isSingleParameterString(input, name)) return value;
    }
    return replaceParameter(input, parameters);
  }
  if (Array.isArray(input)) return input.map((element) => replaceParameters(element, parameters));
  if (input !== null && typeof input === 'object') {
    return Object.fromEntries(
      Object.entries(input).map(([key, value]) => [key, replaceParameters(value, parameters)]),
    );
  }
  return input;
};

/**
 * The values the agent substitutes: docparser `ParseParameters` (String → first value,
 * StringList → list), invalid names dropped, then the document's defaults for what is missing.
 */
export const agentParameterValues = (
  content: DocumentContent,
  given: Readonly<Record<string, readonly string[]>>,
): Record<string, JsonValue> => {
  const declared = content.parameters ?? {};
  const values: Record<string, JsonValue> = {};
  for (const [name, list] of Object.entries(given)) {
    const definition = declared[name];
    if (!definition || !PARAMETER_NAME.test(name)) continue;
    if (definition.type === 'StringList') values[name] = [...list];
    else if (list[0] !== undefined) values[name] = list[0];
  }
  for (const [name, definition] of Object.entries(declared)) {
    if (name in values) continue;
    if (definition.default === undefined)
      throw new DocumentRenderError('InvalidParameters', `missing required parameter ${name}`);
    values[name] = definition.default;
  }
  return values;
};

export type StepPlatform = 'Linux' | 'Windows';

export interface RenderedStep {
  readonly name: string;
  readonly action: string;
  /** From `precondition: { StringEquals: ['platformType', …] }`; undefined runs everywhere. */
  readonly platformType: StepPlatform | undefined;
  readonly runCommand: readonly string[];
  /** The script file the agent writes (pluginutil `CreateScriptFile`). */
  readonly script: string;
}

const stepPlatform = (step: Record<string, unknown>): StepPlatform | undefined => {
  const precondition = step.precondition as { StringEquals?: unknown[] } | undefined;
  const [key, value] = precondition?.StringEquals ?? [];
  return key === 'platformType' && (value === 'Linux' || value === 'Windows') ? value : undefined;
};

/** Renders every `aws:runShellScript` / `aws:runPowerShellScript` step of a deployed document. */
export const renderDocumentContent = (
  content: DocumentContent,
  given: Readonly<Record<string, readonly string[]>>,
): RenderedStep[] => {
  const values = agentParameterValues(content, given);
  return content.mainSteps.map((step) => {
    const name = String(step.name);
    const inputs = replaceParameters(step.inputs, values) as { runCommand?: unknown };
    const runCommand = inputs.runCommand;
    if (!Array.isArray(runCommand) || !runCommand.every((line) => typeof line === 'string')) {
      throw new DocumentRenderError(
        'InvalidPluginProperties',
        `step ${name}: Invalid format in plugin properties (runCommand is ${JSON.stringify(runCommand)})`,
      );
    }
    return {
      name,
      action: String(step.action),
      platformType: stepPlatform(step),
      runCommand,
      script: `${runCommand.join('\n')}\n`,
    };
  });
};

/** Renders a warmboot document exactly as infra deploys it (`documentContent`). */
export const renderDocument = (
  document: CommandDocument,
  given: Readonly<Record<string, readonly string[]>>,
): RenderedStep[] => renderDocumentContent(documentContent(document) as unknown as DocumentContent, given);

/**
 * The steps an instance of `platform` runs: the agent skips a step whose `platformType`
 * precondition does not match (agent/framework/runpluginutil/runpluginutil.go, `evaluatePreconditions`).
 */
export const stepsFor = (steps: readonly RenderedStep[], platform: StepPlatform): RenderedStep[] =>
  steps.filter((step) => step.platformType === undefined || step.platformType === platform);
