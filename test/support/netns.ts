import { execFileSync } from 'node:child_process';

/**
 * What a fault test (test/fault) knows of the namespaces scripts/fault-tests.mjs built: the
 * test runs in the endpoints' namespace (`ep`), the server is started in `srv`. iptables
 * rules are put in the test's own namespace — a firewall in front of the endpoints that
 * silently drops packets — and removed again by `clear()`.
 */
export interface FaultNet {
  srv: string;
  ep: string;
  srvAddr: string;
  epAddr: string;
}

export function faultNet(): FaultNet {
  const { SIPF_SRV_NS: srv, SIPF_EP_NS: ep, SIPF_SRV_ADDR: srvAddr, SIPF_EP_ADDR: epAddr } = process.env;
  if (!srv || !ep || !srvAddr || !epAddr) throw new Error('fault tests run inside the namespaces built by scripts/fault-tests.mjs (npm test runs it)');
  return { srv, ep, srvAddr, epAddr };
}

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** In the endpoints' namespace (this process's): drop one TCP connection both ways, as a firewall that forgot it. */
export function dropFlow(net: FaultNet, flow: { serverPort: number; endpointPort: number }): void {
  run('iptables', ['-I', 'INPUT', '-p', 'tcp', '-s', net.srvAddr, '--sport', String(flow.serverPort), '-d', net.epAddr, '--dport', String(flow.endpointPort), '-j', 'DROP']);
  run('iptables', ['-I', 'OUTPUT', '-p', 'tcp', '-s', net.epAddr, '--sport', String(flow.endpointPort), '-d', net.srvAddr, '--dport', String(flow.serverPort), '-j', 'DROP']);
}

/**
 * Drops, in the endpoints' namespace, all TCP to and from the server's `port`: every flow to
 * it dies at once, while the server can still open new connections to the endpoints' own
 * ports. Returns when the rules started (just before they are in).
 */
export function dropServerPort(net: FaultNet, port: number): number {
  const at = Date.now();
  run('iptables', ['-I', 'INPUT', '-p', 'tcp', '-s', net.srvAddr, '--sport', String(port), '-j', 'DROP']);
  run('iptables', ['-I', 'OUTPUT', '-p', 'tcp', '-d', net.srvAddr, '--dport', String(port), '-j', 'DROP']);
  return at;
}

/**
 * The endpoint is gone: every TCP and UDP packet to or from its `ports` (its listening port and
 * the ports of its connections) is dropped, new connections included. The test's own API and
 * event connection, and other endpoints in the namespace, still pass.
 */
export function dropEndpoint(net: FaultNet, ports: number[]): void {
  for (const port of ports) {
    for (const proto of ['tcp', 'udp']) {
      run('iptables', ['-I', 'INPUT', '-p', proto, '-s', net.srvAddr, '-d', net.epAddr, '--dport', String(port), '-j', 'DROP']);
      run('iptables', ['-I', 'OUTPUT', '-p', proto, '-s', net.epAddr, '--sport', String(port), '-d', net.srvAddr, '-j', 'DROP']);
    }
  }
}

/** Removes every rule the tests added. */
export function clearRules(): void {
  run('iptables', ['-F', 'INPUT']);
  run('iptables', ['-F', 'OUTPUT']);
}

/** Sets the server namespace's keep-alive sysctls (seconds, seconds, probes). */
export function setServerKeepAliveSysctls(net: FaultNet, time: number, intvl: number, probes: number): void {
  // /proc/sys/net is the namespace's own once inside it (no procps `sysctl` needed).
  const values = { tcp_keepalive_time: time, tcp_keepalive_intvl: intvl, tcp_keepalive_probes: probes };
  const script = Object.entries(values)
    .map(([name, v]) => `echo ${Math.trunc(v)} > /proc/sys/net/ipv4/${name}`)
    .join(' && ');
  run('ip', ['netns', 'exec', net.srv, 'sh', '-c', script]);
}

/** `ss -tno` in the server's namespace: every TCP socket with its timer column. */
export function serverSockets(net: FaultNet): string {
  return run('ip', ['netns', 'exec', net.srv, 'ss', '-tno']);
}

/**
 * Waits until the server's TCP connections to `remotes` ("address:port") have nothing
 * unacknowledged left (`ss` Send-Q 0): keep-alive probes only run on such a connection, so a
 * test drops a flow after this, not after a guessed pause.
 */
export async function serverSendQueuesEmpty(net: FaultNet, remotes: string[], ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  const pending = (): string[] => {
    const rows = run('ip', ['netns', 'exec', net.srv, 'ss', '-tnH', 'state', 'established']).split('\n');
    return remotes.filter((remote) => !rows.some((row) => {
      // With a state filter ss leaves the State column out: Recv-Q Send-Q Local Peer.
      const [, sendQ, , peer] = row.trim().split(/\s+/);
      return peer === remote && sendQ === '0';
    }));
  };
  for (let left = pending(); left.length > 0; left = pending()) {
    if (Date.now() > end) throw new Error(`the server still has unacknowledged data towards ${left.slice(0, 5).join(', ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
