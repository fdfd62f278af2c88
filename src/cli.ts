#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import { defaultConfig, loadConfigFile } from './config/load.js';
import type { Config } from './config/schema.js';
import { ConfigError } from './util/errors.js';
import { SipServer } from './server.js';

const USAGE = `usage:
  sip-server [--config FILE]       run the server (built-in defaults without --config)
  sip-server check-config FILE     validate FILE; exit 0 if valid, 2 listing every problem`;

/** Exit statuses: 0 ok, 1 runtime failure (e.g. a port in use), 2 bad configuration or usage. */
async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({ args: argv, allowPositionals: true, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [command, file] = args.positionals;
  if (command === 'check-config') {
    if (!file) {
      process.stderr.write(`check-config needs a FILE\n${USAGE}\n`);
      return 2;
    }
    return checkConfig(file);
  }
  if (command !== undefined) {
    process.stderr.write(`unknown command "${command}"\n${USAGE}\n`);
    return 2;
  }
  let config: Config;
  try {
    config = args.values.config ? loadConfigFile(args.values.config) : defaultConfig();
  } catch (err) {
    return reportConfigError(err);
  }
  return run(config, args.values.config ?? '(built-in defaults)');
}

function checkConfig(file: string): number {
  try {
    const config = loadConfigFile(file);
    SipServer.readTlsFiles(config, file);
  } catch (err) {
    return reportConfigError(err);
  }
  process.stdout.write(`${file}: ok\n`);
  return 0;
}

function reportConfigError(err: unknown): number {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.problems.join('\n')}\n`);
    return 2;
  }
  throw err;
}

/**
 * Log lines go to stdout asynchronously: a burst of them (many connections found dead at
 * once) must not stall the event loop on a slow pipe. What is still buffered is written
 * before the process exits: awaited on every return from here, and by pino's exit hook
 * (synchronously) on any other exit.
 */
async function run(config: Config, source: string): Promise<number> {
  const destination = pino.destination({ dest: 1, sync: false });
  const log = pino({ level: config.log.level, base: { service: 'sip-server' } }, destination);
  try {
    return await serve(config, source, log);
  } finally {
    await allWritten(destination);
  }
}

/** Ends `destination` once what it holds is written, waiting at most `maxMs` (for a reader that stopped reading). */
function allWritten(destination: ReturnType<typeof pino.destination>, maxMs = 2000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, maxMs);
    timer.unref();
    destination.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    destination.end();
  });
}

async function serve(config: Config, source: string, log: Logger): Promise<number> {
  let tls;
  try {
    tls = SipServer.readTlsFiles(config, source);
  } catch (err) {
    return reportConfigError(err);
  }
  let server: SipServer;
  try {
    server = new SipServer({ config, log, tls });
  } catch (err) {
    log.fatal({ err }, 'could not start');
    return 1;
  }
  // Listen for signals before anything binds, so a stop during start-up is clean too.
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  try {
    await server.start();
  } catch (err) {
    log.fatal({ err }, 'could not start');
    await server.stop();
    return 1;
  }
  log.info({ config: source }, 'sip-server running');
  const signal = await signalled;
  log.info({ signal }, 'stopping');
  // Bounded shutdown: whatever is still pending after 5 s is abandoned.
  const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 5000).unref());
  const outcome = await Promise.race([server.stop().then(() => 'stopped' as const), deadline]);
  log.info({ outcome }, 'stopped');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`sip-server: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
