#!/usr/bin/env node
// The fault-test harness (issue 5): builds two network namespaces joined by a veth pair —
// the server's and the endpoints' — runs the fault tests (test/fault/*.test.ts) with vitest
// inside the endpoints' namespace, and removes everything afterwards, also when a test fails
// or the run is interrupted. The tests start the server in the server's namespace
// (`ip netns exec`), put iptables DROP rules in their own (the endpoints') namespace, and
// set the server namespace's keep-alive sysctls. Needs root (CI runs as root); without it,
// this fails rather than skipping.
import { execFileSync, spawn } from 'node:child_process';

if (process.getuid?.() !== 0) {
  console.error('fault tests: need root (network namespaces, veth, iptables); run as root, e.g. in CI via `bash .ci/run`');
  process.exit(1);
}

const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const quiet = (fn) => {
  try {
    fn();
  } catch {
    /* already gone */
  }
};

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const id = String(process.pid);
const srv = `sipf${id}s`;
const ep = `sipf${id}e`;
const net = `10.${200 + (process.pid % 50)}.${process.pid % 250}`;
const srvAddr = `${net}.1`;
const epAddr = `${net}.2`;

/** Kills what still runs in a namespace (a server a killed test left), then deletes it. */
function removeNamespace(name) {
  quiet(() => {
    const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (const pid of pids) quiet(() => process.kill(Number(pid), 'SIGKILL'));
  });
  quiet(() => ip('netns', 'del', name));
}

function cleanup() {
  removeNamespace(srv);
  removeNamespace(ep);
  // A veth end that never made it into its namespace is still in ours.
  quiet(() => ip('link', 'del', `v${id}s`));
}

// Namespaces of an earlier run that was killed before it could clean up (its pid is in the name).
for (const line of execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n')) {
  const name = line.split(' ')[0] ?? '';
  const owner = /^sipf(\d+)[se]$/.exec(name)?.[1];
  if (owner && !alive(Number(owner))) removeNamespace(name);
}

let code = 1;
try {
  ip('netns', 'add', srv);
  ip('netns', 'add', ep);
  ip('link', 'add', `v${id}s`, 'type', 'veth', 'peer', 'name', `v${id}e`);
  ip('link', 'set', `v${id}s`, 'netns', srv);
  ip('link', 'set', `v${id}e`, 'netns', ep);
  ip('-n', srv, 'addr', 'add', `${srvAddr}/24`, 'dev', `v${id}s`);
  ip('-n', ep, 'addr', 'add', `${epAddr}/24`, 'dev', `v${id}e`);
  for (const [ns, dev] of [[srv, `v${id}s`], [ep, `v${id}e`]]) {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'set', dev, 'up');
  }
  const env = { ...process.env, SIPF_SRV_NS: srv, SIPF_EP_NS: ep, SIPF_SRV_ADDR: srvAddr, SIPF_EP_ADDR: epAddr };
  // Another vitest config may be given (bench/stale runs in the same namespaces).
  const args = process.argv.slice(2);
  const config = args.includes('--config') ? [] : ['--config', 'vitest.fault.config.ts'];
  const vitest = spawn('ip', ['netns', 'exec', ep, process.execPath, 'node_modules/vitest/vitest.mjs', 'run', ...config, ...args], {
    stdio: 'inherit',
    env,
  });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => vitest.kill(sig));
  code = await new Promise((resolve) => {
    vitest.on('error', (err) => {
      console.error(`fault tests: could not start vitest: ${err.message}`);
      resolve(1);
    });
    vitest.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
} catch (err) {
  console.error(`fault tests: could not build the namespaces: ${err.stderr?.toString() || err.message}`);
} finally {
  cleanup();
}
process.exit(code);
