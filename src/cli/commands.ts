import type { CallView, ReleasedCallView } from '../api/call-routes.js';
import type { ConnectionView, DnView } from '../api/views.js';
import { callDetail, callTable, releaseText, type ReleaseAnswer } from './call-output.js';
import { UsageError } from './cli-errors.js';
import { connectionTable } from './connection-output.js';
import { ControlClient, type ApiAnswer } from './control-client.js';
import { resolveTarget, type TargetFlags } from './control-target.js';
import { dnDetail, dnTable } from './dn-output.js';
import { readStatus, statusJson, statusText } from './status.js';

/** The commands that talk to a running server's control API, with their arguments (min, max, names). */
const COMMANDS = {
  status: { min: 0, max: 0, args: '' },
  dns: { min: 0, max: 1, args: ' [DN]' },
  connections: { min: 0, max: 0, args: '' },
  calls: { min: 0, max: 1, args: ' [ID]' },
  release: { min: 1, max: 1, args: ' CALL' },
} as const;

export type ControlCommand = keyof typeof COMMANDS;

export function isControlCommand(name: string | undefined): name is ControlCommand {
  return name !== undefined && Object.hasOwn(COMMANDS, name);
}

export interface ControlFlags extends TargetFlags {
  json?: boolean | undefined;
  /** Seconds to wait for each answer (default 10). */
  timeout?: string | undefined;
}

/**
 * Runs one control command: checks its arguments (UsageError), finds the API (flags, --config,
 * environment, default), asks it and writes the answer with `write`, as a table or, with
 * --json, as the API sent it. API failures are ControlApiError, a bad --config file ConfigError.
 */
export async function runControlCommand(
  command: ControlCommand,
  args: readonly string[],
  flags: ControlFlags,
  env: NodeJS.ProcessEnv,
  write: (text: string) => Promise<void>,
): Promise<void> {
  const spec = COMMANDS[command];
  if (args.length < spec.min) throw new UsageError(`${command} needs a${spec.args}`);
  if (args.length > spec.max) throw new UsageError(`too many arguments: sip-server ${command}${spec.args} (got "${args.join(' ')}")`);
  if (args.includes('')) throw new UsageError(`sip-server ${command}${spec.args}: an argument is empty`);
  const client = new ControlClient(await resolveTarget(flags, env), timeoutMs(flags.timeout));
  const json = flags.json === true;
  const now = Date.now();
  const show = <T>(answer: ApiAnswer<T>, human: (body: T) => string): Promise<void> => write(json ? answer.text : human(answer.json));
  const [arg] = args;
  switch (command) {
    case 'status': {
      const status = await readStatus(client, now);
      await write(json ? statusJson(status) : statusText(status, client.target.url));
      return;
    }
    case 'dns':
      if (arg === undefined) await show(await client.get<DnView[]>('/dns'), dnTable);
      else await show(await client.get<DnView>(`/dns/${encodeURIComponent(arg)}`), (dn) => dnDetail(dn, now));
      return;
    case 'connections':
      await show(await client.get<ConnectionView[]>('/connections'), connectionTable);
      return;
    case 'calls':
      if (arg === undefined) await show(await client.get<CallView[]>('/calls'), (calls) => callTable(calls, now));
      else await show(await client.get<CallView | ReleasedCallView>(`/calls/${encodeURIComponent(arg)}`), (call) => callDetail(call, now));
      return;
    case 'release':
      await show(await client.delete<ReleaseAnswer>(`/calls/${encodeURIComponent(arg ?? '')}`), releaseText);
      return;
  }
}

function timeoutMs(text: string | undefined): number {
  if (text === undefined) return 10_000;
  const s = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || s <= 0 || s > 3600) throw new UsageError(`--timeout: "${text}" is not a number of seconds (above 0, at most 3600)`);
  return s * 1000;
}
