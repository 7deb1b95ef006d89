import type { HostCaller, HostParameterAnswer, ParameterStore } from './parameter-store';
import type { StubTool } from './shell';

/**
 * Parameter Store references on a host, as amazon-ssm-agent (read at commit 1c217c89) and the
 * AWS CLI there handle them:
 *
 * - `{{ssm:<name>}}` in a step's inputs, after the document's own parameters are substituted, is
 *   resolved by the agent before the step runs (`framework/docparser/docparser.go`
 *   `replaceValidatedPluginParameters` → `parameterstore.Resolve`): one GetParameters call
 *   without decryption, with the instance's credentials; a GetParameters error fails the
 *   document ("Encountered error while calling GetParameters API. Error: …", `ssm/service.go`), a
 *   name it does not return fails it ("Input contains invalid parameters [...]"), and so does a
 *   SecureString ("Parameters [...] of type SecureString are not supported", parameterstore.go
 *   `getSSMParameterValues`). The reference pattern is parameterstore.go's
 *   `\{\{ *ssm:[/\w.:-]+ *\}\}`.
 * - `{{ssm-secure:<name>}}` is left as text in an aws:runShellScript step: only the
 *   downloadContent plugin's private Git/GitHub credentials resolve it
 *   (`ssm/ssmparameterresolver`). A script that holds such a reference reads the value itself
 *   with the CLI, as the SSM User Guide's SecureString example does: the `aws` stub below answers
 *   `aws ssm get-parameter` from the local Parameter Store, as the instance profile's role.
 *
 * The CLI's error output and exit codes: "An error occurred (<code>) when calling the
 * GetParameter operation: <message>" with 254 for a service error, 253 when it finds no
 * credentials (AWS CLI User Guide, "Command line return codes").
 */

/** parameterstore.go `getValidSSMParamRegexCompiler` (default name). */
const AGENT_REFERENCE = /\{\{ *ssm:([/\w.:-]+) *\}\}/g;
/** ssmparameterresolver/common.go `secureSsmParameterPlaceholderRegEx`, with `.` allowed in names. */
const SECURE_REFERENCE = /\{\{\s*ssm-secure:([\w./-]+)\s*\}\}/g;

/** What the agent makes of `{{ssm:…}}` in a step: the text to run, or why the document fails. */
export type AgentResolution =
  | { readonly ok: true; readonly script: string }
  | { readonly ok: false; readonly error: string };

export const resolveAgentReferences = (
  store: ParameterStore,
  caller: HostCaller,
  script: string,
): AgentResolution => {
  const names = [...new Set([...script.matchAll(AGENT_REFERENCE)].map((match) => match[1] ?? ''))];
  if (names.length === 0) return { ok: true, script };
  const answers = new Map<string, HostParameterAnswer>();
  for (const name of names) {
    const answer = store.getParameterAsHost(caller, name, false, 'ssm:GetParameters');
    // One denied name denies the whole GetParameters call.
    if (!answer.ok && answer.code !== 'ParameterNotFound')
      return {
        ok: false,
        error: `Encountered error while calling GetParameters API. Error: ${answer.code}: ${answer.message}`,
      };
    answers.set(name, answer);
  }
  const invalid = names.filter((name) => !answers.get(name)?.ok);
  if (invalid.length > 0)
    return { ok: false, error: `Input contains invalid parameters [${invalid.join(' ')}]` };
  const secure = names.filter((name) => {
    const answer = answers.get(name);
    return answer?.ok === true && answer.type === 'SecureString';
  });
  if (secure.length > 0)
    return { ok: false, error: `Parameters [${secure.join(' ')}] of type SecureString are not supported` };
  return {
    ok: true,
    script: script.replace(AGENT_REFERENCE, (_match, name: string) => {
      const answer = answers.get(name);
      return answer?.ok ? answer.value : '';
    }),
  };
};

/** The SecureString names a script carries as `{{ssm-secure:…}}` text. */
export const secureReferencesIn = (script: string): string[] => [
  ...new Set([...script.matchAll(SECURE_REFERENCE)].map((match) => match[1] ?? '')),
];

const quote = (text: string): string => `'${text.replaceAll("'", `'\\''`)}'`;

/**
 * The host's `aws` for a script that reads `names`: `aws ssm get-parameter --name <n>
 * [--with-decryption] --query Parameter.Type|Parameter.Value --output text` answers what
 * GetParameter answers the instance's role (asked before the script starts, so the answers are
 * fixed for its run); any other `aws` call logs and exits 0 as the plain stub does, and a
 * get-parameter of a name the script did not carry fails (the simulator's limit, stricter).
 */
export const awsCliStub = (store: ParameterStore, caller: HostCaller, names: readonly string[]): StubTool => {
  const answerLines = (answer: HostParameterAnswer): string[] =>
    answer.ok
      ? [`type=${quote(answer.type)}`, `value=${quote(answer.value)}`]
      : [
          `printf '\\nAn error occurred (%s) when calling the GetParameter operation: %s\\n' ${quote(answer.code)} ${quote(answer.message)} >&2`,
          `exit ${answer.code === 'NoCredentials' ? 253 : 254}`,
        ];
  const cases = names.flatMap((name) => [
    `  ${quote(name)})`,
    '    if [ "$decrypt" = true ]; then',
    ...answerLines(store.getParameterAsHost(caller, name, true)).map((line) => `      ${line}`),
    '    else',
    ...answerLines(store.getParameterAsHost(caller, name, false)).map((line) => `      ${line}`),
    '    fi ;;',
  ]);
  return {
    script: [
      'if [ "$#" -lt 2 ] || [ "$1" != ssm ] || [ "$2" != get-parameter ]; then exit 0; fi',
      "name=''; query=''; output=''; decrypt=false",
      'while [ $# -gt 0 ]; do',
      '  case $1 in',
      '    --name) name=$2; shift ;;',
      '    --query) query=$2; shift ;;',
      '    --output) output=$2; shift ;;',
      '    --with-decryption) decrypt=true ;;',
      '  esac',
      '  shift',
      'done',
      'case $name in',
      ...cases,
      `  *) echo "the local cloud prepared no answer for $name (only the script's {{ssm-secure:}} references)" >&2; exit 255 ;;`,
      'esac',
      'if [ "$output" != text ]; then echo "only --output text is modelled" >&2; exit 255; fi',
      'case $query in',
      '  Parameter.Type) printf "%s\\n" "$type" ;;',
      '  Parameter.Value) printf "%s\\n" "$value" ;;',
      '  *) echo "only --query Parameter.Type or Parameter.Value is modelled" >&2; exit 255 ;;',
      'esac',
    ].join('\n'),
  };
};
