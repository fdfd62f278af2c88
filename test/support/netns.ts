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

/** Drop every packet from and to the server: the endpoint is gone. */
export function dropAll(net: FaultNet): void {
  run('iptables', ['-I', 'INPUT', '-s', net.srvAddr, '-j', 'DROP']);
  run('iptables', ['-I', 'OUTPUT', '-d', net.srvAddr, '-j', 'DROP']);
}

/** Removes every rule the tests added. */
export function clearRules(): void {
  run('iptables', ['-F', 'INPUT']);
  run('iptables', ['-F', 'OUTPUT']);
}

/** Sets the server namespace's keep-alive sysctls (seconds, seconds, probes). */
export function setServerKeepAliveSysctls(net: FaultNet, time: number, intvl: number, probes: number): void {
  run('ip', ['netns', 'exec', net.srv, 'sysctl', '-q', '-w', `net.ipv4.tcp_keepalive_time=${time}`, `net.ipv4.tcp_keepalive_intvl=${intvl}`, `net.ipv4.tcp_keepalive_probes=${probes}`]);
}

/** `ss -tno` in the server's namespace: every TCP socket with its timer column. */
export function serverSockets(net: FaultNet): string {
  return run('ip', ['netns', 'exec', net.srv, 'ss', '-tno']);
}
