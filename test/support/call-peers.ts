import { expect } from 'vitest';
import { getJson } from './api-client.js';
import type { RunningServer } from './server-process.js';
import type { SipPeer } from './sip-peer.js';

/**
 * The end of a call test: every peer unregisters and saw nothing it could not handle, and the
 * server has no call left. Whatever fails, the calls still up are released (so the next test
 * starts clean) and the peers are closed.
 */
export async function finishPeers(server: RunningServer, peers: SipPeer[]): Promise<void> {
  try {
    for (const peer of peers) {
      await peer.register(server.port, { expires: 0 });
      expect(peer.problems).toEqual([]);
    }
    expect((await getJson(server.api, '/calls')).body).toEqual([]);
  } finally {
    const left = (await getJson<{ id: string }[]>(server.api, '/calls')).body;
    for (const c of left) await fetch(`${server.api}/calls/${c.id}`, { method: 'DELETE' });
    for (const peer of peers) await peer.close();
  }
}
