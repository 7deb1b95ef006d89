import { describe, expect, it } from 'vitest';
import {
  agentParameterValues,
  type DocumentContent,
  DocumentRenderError,
  goJsonMarshal,
  renderDocumentContent,
  replaceParameter,
  replaceParameters,
  stepsFor,
} from '../../../local/ssm/render';

/**
 * The SSM agent's substitution rules (amazon-ssm-agent
 * agent/framework/docparser/parameters/parameters.go and docparser.go), checked one by one on
 * small documents; the expected values follow the agent's own parameters_test.go cases.
 */

const shellStep = (runCommand: unknown, platformType?: 'Linux' | 'Windows') => ({
  action: 'aws:runShellScript',
  name: 'step',
  ...(platformType ? { precondition: { StringEquals: ['platformType', platformType] } } : {}),
  inputs: { timeoutSeconds: '60', runCommand },
});

const document = (parameters: DocumentContent['parameters'], runCommand: unknown): DocumentContent => ({
  parameters,
  mainSteps: [shellStep(runCommand)],
});

const render = (content: DocumentContent, given: Record<string, string[]>): readonly string[] =>
  renderDocumentContent(content, given)[0]?.runCommand ?? [];

describe('the SSM agent renders a document', () => {
  it('replaces a whole-value String reference with the value, whitespace inside the braces allowed', () => {
    const content = document({ name: { type: 'String' } }, ['{{name}}', '{{ name }}', '{{\tname  }}']);

    expect(render(content, { name: ['echo hi'] })).toEqual(['echo hi', 'echo hi', 'echo hi']);
  });

  it('replaces every embedded reference in a longer string, leaving the rest as written', () => {
    const content = document({ p1: { type: 'String' } }, ['A {{p1 }} is a {{ p1}}']);

    expect(render(content, { p1: ['name'] })).toEqual(['A name is a name']);
  });

  it('writes an embedded StringList as JSON, and an empty one as []', () => {
    const content = document({ packages: { type: 'StringList' } }, ['for p in {{ packages }}; do :; done']);

    expect(render(content, { packages: ['git', 'docker'] })).toEqual([
      'for p in ["git","docker"]; do :; done',
    ]);
    expect(render(content, { packages: [] })).toEqual(['for p in []; do :; done']);
  });

  it('marshals like Go: <, > and & are escaped inside JSON', () => {
    expect(goJsonMarshal(['a&b', '<x>'])).toBe('["a\\u0026b","\\u003cx\\u003e"]');
  });

  it('uses the whole StringList as runCommand when runCommand is exactly the reference', () => {
    const content = document({ commands: { type: 'StringList' } }, '{{ commands }}');

    const [step] = renderDocumentContent(content, { commands: ['set -e', 'echo one'] });

    expect(step?.runCommand).toEqual(['set -e', 'echo one']);
    expect(step?.script).toBe('set -e\necho one\n');
  });

  it('fails the step when a StringList is the whole value of one runCommand line (a list inside the list)', () => {
    const content = document({ commands: { type: 'StringList' } }, ['set -e', '{{ commands }}']);

    expect(() => renderDocumentContent(content, { commands: ['echo one'] })).toThrow(
      expect.objectContaining({ code: 'InvalidPluginProperties' }),
    );
  });

  it("takes the document's default for a parameter the command leaves out", () => {
    const content = document({ user: { type: 'String', default: 'ec2-user' } }, ['id {{ user }}']);

    expect(render(content, {})).toEqual(['id ec2-user']);
    expect(render(content, { user: ['ubuntu'] })).toEqual(['id ubuntu']);
  });

  it('refuses a command that leaves a parameter without a default unset (SendCommand InvalidParameters)', () => {
    const content = document({ user: { type: 'String' } }, ['id {{ user }}']);

    expect(() => render(content, {})).toThrow(DocumentRenderError);
    expect(() => render(content, {})).toThrow(expect.objectContaining({ code: 'InvalidParameters' }));
  });

  it('leaves a reference to an undeclared name as written', () => {
    const content = document({ p1: { type: 'String' } }, ['{{p1}} and {{ p3 }}']);

    expect(render(content, { p1: ['v'] })).toEqual(['v and {{ p3 }}']);
  });

  it('does not rescan substituted values, and turns $$ into $ in embedded values only', () => {
    expect(replaceParameter('{{p1}} and {{p2}}', { p1: '{{p2}}', p2: 'two' })).toBe('{{p2}} and two');
    expect(replaceParameter("echo '{{ Path }}'", { Path: 'C:\\$$Recycle.Bin' })).toBe(
      "echo 'C:\\$Recycle.Bin'",
    );
    expect(replaceParameters('{{ Path }}', { Path: 'a$$b' })).toBe('a$$b');
  });

  it('substitutes in every input, not only runCommand (timeoutSeconds may be a parameter)', () => {
    const content: DocumentContent = {
      parameters: { timeout: { type: 'String', default: '120' } },
      mainSteps: [
        { ...shellStep(['true']), inputs: { timeoutSeconds: '{{ timeout }}', runCommand: ['true'] } },
      ],
    };

    expect(replaceParameters(content.mainSteps[0]?.inputs, agentParameterValues(content, {}))).toEqual({
      timeoutSeconds: '120',
      runCommand: ['true'],
    });
  });

  it('runs only the steps whose platformType precondition matches the instance', () => {
    const content: DocumentContent = {
      parameters: {},
      mainSteps: [
        { ...shellStep(['echo linux'], 'Linux'), name: 'linux' },
        {
          ...shellStep(['Write-Host windows'], 'Windows'),
          name: 'windows',
          action: 'aws:runPowerShellScript',
        },
      ],
    };
    const steps = renderDocumentContent(content, {});

    expect(stepsFor(steps, 'Linux').map((step) => step.name)).toEqual(['linux']);
    expect(stepsFor(steps, 'Windows').map((step) => step.name)).toEqual(['windows']);
  });
});
