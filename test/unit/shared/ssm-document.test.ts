import { describe, expect, it } from 'vitest';
import {
  type CommandDocument,
  deployedDocumentName,
  documentContent,
  invalidDocumentParameter,
  logicalDocumentName,
} from '../../../functions/shared/ssm-document';
import { shellScriptDocument } from '../../support/ssm-documents';

const fetchDocument = shellScriptDocument('Warmboot-Example', 'example', {
  parameters: {
    image: { type: 'String', description: 'image', allowedPattern: '^[a-z0-9./:-]+$' },
    hosts: { type: 'StringList', description: 'hosts', allowedPattern: '^i-[0-9a-f]{8,17}$' },
    mode: { type: 'String', description: 'mode', allowedPattern: '^(fast|slow)$', default: 'fast' },
  },
  step: 'run',
  runCommand: 'echo {{ image }}',
});

describe('SSM document parameters', () => {
  it('accepts values that match every allowedPattern, using defaults for absent ones', () => {
    expect(
      invalidDocumentParameter(fetchDocument, { image: ['nginx:1.27'], hosts: ['i-0123456789abcdef0'] }),
    ).toBeUndefined();
  });

  it('rejects a shell metacharacter in a String parameter', () => {
    expect(invalidDocumentParameter(fetchDocument, { image: ['nginx;rm -rf /'], hosts: [] })).toEqual({
      parameter: 'image',
      message: expect.stringContaining('does not match'),
    });
  });

  it('checks every element of a StringList', () => {
    const result = invalidDocumentParameter(fetchDocument, {
      image: ['nginx'],
      hosts: ['i-0123456789abcdef0', 'i-$(reboot)'],
    });

    expect(result?.parameter).toBe('hosts');
  });

  it('reports missing and unknown parameters', () => {
    expect(invalidDocumentParameter(fetchDocument, { hosts: [] })).toEqual({
      parameter: 'image',
      message: 'required',
    });
    expect(
      invalidDocumentParameter(fetchDocument, { image: ['a'], hosts: [], extra: ['x'] })?.parameter,
    ).toBe('extra');
  });

  it('reports a parameter named after an Object.prototype member as unknown (L2)', () => {
    for (const name of ['constructor', 'toString', 'hasOwnProperty']) {
      expect(
        invalidDocumentParameter(fetchDocument, { image: ['a'], hosts: [], [name]: ['x'] })?.parameter,
        name,
      ).toBe(name);
    }
  });

  it('renders a schemaVersion 2.2 document carrying every allowedPattern', () => {
    const content = documentContent(fetchDocument) as {
      schemaVersion: string;
      parameters: Record<string, unknown>;
    };

    expect(content.schemaVersion).toBe('2.2');
    expect(content.parameters.mode).toEqual({
      type: 'String',
      description: 'mode',
      allowedPattern: '^(fast|slow)$',
      default: 'fast',
    });
  });
});

describe('the name a document is deployed under', () => {
  it('is the logical name and a digest of the content, the same every time it is computed', () => {
    const name = deployedDocumentName(fetchDocument);

    expect(name).toMatch(/^Warmboot-Example-[0-9a-f]{10}$/);
    expect(deployedDocumentName({ ...fetchDocument })).toBe(name);
    expect(logicalDocumentName(name)).toBe('Warmboot-Example');
  });

  it("changes when the script changes, so a deployment never runs another deployment's script", () => {
    const edited: CommandDocument = {
      ...fetchDocument,
      mainSteps: [
        { action: 'aws:runShellScript', name: 'run', inputs: { runCommand: ['echo "{{ image }}"'] } },
      ],
    };

    expect(deployedDocumentName(edited)).not.toBe(deployedDocumentName(fetchDocument));
    expect(logicalDocumentName(deployedDocumentName(edited))).toBe('Warmboot-Example');
  });

  it('leaves a name without a digest as it is (AWS documents in events)', () => {
    expect(logicalDocumentName('AWS-RunShellScript')).toBe('AWS-RunShellScript');
  });
});
