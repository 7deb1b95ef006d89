import { createHash } from 'node:crypto';

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
    // Own properties only: `in` also finds `constructor` and `toString` (security review L2).
    if (!Object.hasOwn(document.parameters, name))
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

/**
 * The name a document is deployed under: its logical name and the first 10 hex digits of the
 * SHA-256 of its content. Why: a function must run the script it was built and tested with. A
 * fixed name's `$DEFAULT` version is whatever was deployed or edited last — during a stack update
 * the old function sends the new script, and anyone with `ssm:UpdateDocument` can change what a
 * pinned-looking name runs. A content-addressed name changes with every content change (the stack
 * replaces the document), and the function computes the same name from the same module.
 */
export const deployedDocumentName = (document: CommandDocument): string =>
  `${document.name}-${createHash('sha256')
    .update(JSON.stringify(documentContent(document)))
    .digest('hex')
    .slice(0, 10)}`;

/**
 * The version every SendCommand asks for: CreateDocument makes version 1, and a content-addressed
 * name is never updated by the stack, so version 1 is exactly the deployed content even if
 * someone later adds versions or changes the default (SSM API reference, SendCommand
 * `DocumentVersion`: "$DEFAULT, $LATEST, or a specific version number").
 */
export const PINNED_DOCUMENT_VERSION = '1';

/** The logical name of a deployed document name (events carry the deployed name). */
export const logicalDocumentName = (deployedName: string): string =>
  deployedName.replace(/-[0-9a-f]{10}$/, '');
