/**
 * An SSM Command document as data. The CDK stack deploys it (CfnDocument, schemaVersion 2.2),
 * the local SSM simulator validates SendCommand parameters against the same `allowedPattern`s,
 * and functions validate the values they send with `validateDocumentParameters` first, so a
 * value that reaches a shell was checked twice (DESIGN.md invariants).
 */
export interface DocumentParameter {
  readonly type: 'String' | 'StringList';
  readonly description: string;
  /** Anchored regular expression (SSM requires the whole value to match). */
  readonly allowedPattern: string;
  readonly default?: string;
}

export interface CommandDocument {
  /** Full document name; starts with catalog DOCUMENT_PREFIX ("Warmboot-"). */
  readonly name: string;
  readonly description: string;
  readonly parameters: Readonly<Record<string, DocumentParameter>>;
  /** `mainSteps` of the schemaVersion 2.2 document (aws:runShellScript / aws:runPowerShellScript). */
  readonly mainSteps: readonly Record<string, unknown>[];
}

export const documentContent = (document: CommandDocument): Record<string, unknown> => ({
  schemaVersion: '2.2',
  description: document.description,
  parameters: Object.fromEntries(
    Object.entries(document.parameters).map(([name, parameter]) => [
      name,
      {
        type: parameter.type,
        description: parameter.description,
        allowedPattern: parameter.allowedPattern,
        ...(parameter.default !== undefined ? { default: parameter.default } : {}),
      },
    ]),
  ),
  mainSteps: document.mainSteps,
});

/**
 * Returns the first parameter that is unknown, missing or does not match its allowedPattern,
 * or undefined when all are valid. SSM matches every element of a StringList separately.
 */
export const invalidDocumentParameter = (
  document: CommandDocument,
  values: Readonly<Record<string, readonly string[]>>,
): { parameter: string; message: string } | undefined => {
  for (const name of Object.keys(values)) {
    if (!(name in document.parameters))
      return { parameter: name, message: `unknown parameter for ${document.name}` };
  }
  for (const [name, parameter] of Object.entries(document.parameters)) {
    const given = values[name] ?? (parameter.default !== undefined ? [parameter.default] : undefined);
    if (given === undefined) return { parameter: name, message: 'required' };
    if (parameter.type === 'String' && given.length !== 1)
      return { parameter: name, message: 'expects one value' };
    const pattern = new RegExp(parameter.allowedPattern);
    const bad = given.find((value) => !pattern.test(value));
    if (bad !== undefined)
      return { parameter: name, message: `value does not match ${parameter.allowedPattern}` };
  }
  return undefined;
};
