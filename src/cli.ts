#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ControlApiError, UsageError } from './cli/cli-errors.js';
import { isControlCommand, runControlCommand, type ControlCommand, type ControlFlags } from './cli/commands.js';
import { ConfigError } from './util/errors.js';

const USAGE = `usage:
  sip-server [--config FILE]        run the server (built-in defaults without --config)
  sip-server check-config FILE      validate FILE; exit 0 if valid, 2 listing every problem
a running server, through its control API:
  sip-server status                 health, uptime, DNs in/out of service, registrations, connections, calls
  sip-server dns [DN]               the DNs with state and contacts, or one DN in detail
  sip-server connections            the SIP TCP/TLS connections, with their keep-alive
  sip-server calls [ID]             the calls in progress, or one call (also one that has ended)
  sip-server release CALL           release a call
options of these commands:
  --url URL                         the control API (else from --config, $SIP_SERVER_URL, http://127.0.0.1:8080)
  --token TOKEN                     its bearer token (else from --config, $SIP_SERVER_TOKEN)
  -c, --config FILE                 take http-address, http-port and http-token from FILE
  --json                            print the API's JSON as it came
  --timeout SECONDS                 wait this long for an answer (default 10)
exit status: 0 ok; 1 runtime failure (a port in use; the server unreachable, an API error); 2 bad configuration or usage`;

/** Flags only the control commands take. */
const CONTROL_FLAGS = ['url', 'token', 'json', 'timeout'] as const;

/** Exit statuses: 0 ok, 1 runtime failure (e.g. a port in use, an API error), 2 bad configuration or usage. */
async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        url: { type: 'string' },
        token: { type: 'string' },
        json: { type: 'boolean' },
        timeout: { type: 'string' },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [command, ...rest] = args.positionals;
  if (isControlCommand(command)) return control(command, rest, args.values);
  const misplaced = CONTROL_FLAGS.find((flag) => args.values[flag] !== undefined);
  if (misplaced !== undefined) {
    process.stderr.write(`--${misplaced} is an option of the control commands (status, dns, connections, calls, release)\n${USAGE}\n`);
    return 2;
  }
  if (command === 'check-config') {
    const [file] = rest;
    if (!file) {
      process.stderr.write(`check-config needs a FILE\n${USAGE}\n`);
      return 2;
    }
    const { checkConfig } = await import('./server-command.js');
    return checkConfig(file);
  }
  if (command !== undefined) {
    process.stderr.write(`unknown command "${command}"\n${USAGE}\n`);
    return 2;
  }
  const { runServer } = await import('./server-command.js');
  return runServer(args.values.config);
}

/** A control command: 0 done, 1 the API unreachable or an error answer, 2 bad usage or --config file. */
async function control(command: ControlCommand, args: string[], flags: ControlFlags): Promise<number> {
  // `sip-server dns | head`: a reader that goes away ends the output, not with a stack trace.
  process.stdout.on('error', () => process.exit(0));
  try {
    await runControlCommand(command, args, flags, process.env, writeOut);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n${USAGE}\n`);
      return 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.problems.join('\n')}\n`);
      return 2;
    }
    if (err instanceof ControlApiError) {
      process.stderr.write(`sip-server: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/** Writes a line to stdout and waits until it is out (a pipe may be asynchronous), so exit loses nothing. */
function writeOut(text: string): Promise<void> {
  return new Promise((resolve) => process.stdout.write(`${text}\n`, () => resolve()));
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`sip-server: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
