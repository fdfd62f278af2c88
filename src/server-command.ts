import { writeSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import { configWarnings, defaultConfig, loadConfigFile } from './config/load.js';
import type { Config } from './config/schema.js';
import { ConfigError } from './util/errors.js';
import { SipServer } from './server.js';

/**
 * The server's own commands of the command line (src/cli.ts): run the server, check a
 * configuration file. Loaded only for them, so the control commands start without the server.
 * Exit statuses: 0 ok, 1 runtime failure (e.g. a port in use), 2 bad configuration.
 */

/** `sip-server [--config FILE]`: runs until SIGTERM/SIGINT. */
export async function runServer(configFile: string | undefined): Promise<number> {
  let config: Config;
  try {
    config = configFile ? loadConfigFile(configFile) : defaultConfig();
  } catch (err) {
    return reportConfigError(err);
  }
  return run(config, configFile ?? '(built-in defaults)');
}

/** `sip-server check-config FILE`. */
export function checkConfig(file: string): number {
  let config: Config;
  try {
    config = loadConfigFile(file);
    SipServer.readTlsFiles(config, file);
  } catch (err) {
    return reportConfigError(err);
  }
  for (const warning of configWarnings(config, file)) process.stderr.write(`${warning}\n`);
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
 * once) must not stall the event loop on a slow pipe. Before every return from here, what
 * is still buffered is written (`settle`); the output is never ended, so a line logged late
 * (a socket's close event after the server stopped) is written too, never a write to a
 * closed stream (which throws).
 */
async function run(config: Config, source: string): Promise<number> {
  const output = new LogOutput();
  const log = pino({ level: config.log.level, base: { service: 'sip-server' } }, output);
  try {
    return await serve(config, source, log);
  } finally {
    await output.settle();
  }
}

/**
 * The log's stdout: asynchronous (pino's SonicBoom) while the server runs; after `settle()`,
 * each line is written at once, synchronously, so nothing is left buffered whenever the
 * process exits. Bytes handed to the asynchronous writer are counted until written.
 */
class LogOutput {
  private readonly async = pino.destination({ dest: 1, sync: false });
  private pending = 0;
  private mode: 'async' | 'sync' | 'off' = 'async';
  private idle: (() => void) | undefined;

  constructor() {
    this.async.on('write', (n: number) => {
      this.pending -= n;
      if (this.pending <= 0) this.idle?.();
    });
  }

  write(line: string): void {
    if (this.mode === 'async') {
      this.pending += Buffer.byteLength(line);
      this.async.write(line);
    } else if (this.mode === 'sync') {
      try {
        writeSync(1, line);
      } catch {
        this.mode = 'off'; // stdout is gone or will not take more: drop the rest
      }
    }
  }

  /**
   * Waits until every line handed over so far is written, at most `maxMs` (for a reader that
   * stopped reading: later lines are then dropped), and writes later ones synchronously.
   */
  settle(maxMs = 2000): Promise<void> {
    return new Promise((resolve) => {
      const done = (mode: 'sync' | 'off'): void => {
        clearTimeout(timer);
        this.idle = undefined;
        this.mode = mode;
        resolve();
      };
      const timer = setTimeout(() => done('off'), maxMs);
      timer.unref();
      if (this.pending <= 0) done('sync');
      else this.idle = () => done('sync');
    });
  }
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
  // Listen for signals before anything binds, so a stop during start-up is clean too. The
  // first one stops the server; any later one is logged and ignored (the stop is bounded):
  // Ctrl-C under `npm start` reaches node twice, from the terminal and forwarded by npm, and
  // the default action would kill it in the middle of releasing the calls.
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    let first: NodeJS.Signals | undefined;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (first) {
        log.warn({ signal, first }, 'signal while stopping: ignored');
        return;
      }
      first = signal;
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  try {
    await server.start();
  } catch (err) {
    log.fatal({ err }, 'could not start');
    await server.stop();
    return 1;
  }
  for (const warning of configWarnings(config, source)) log.warn(warning);
  log.info({ config: source }, 'sip-server running');
  const signal = await signalled;
  log.info({ signal }, 'stopping');
  // Bounded shutdown: whatever is still pending after 5 s is abandoned.
  const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 5000).unref());
  const outcome = await Promise.race([server.stop().then(() => 'stopped' as const), deadline]);
  log.info({ outcome }, 'stopped');
  return 0;
}

