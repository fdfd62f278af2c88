import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/**
 * Ports already handed out by this process: the kernel may give the same free port to two
 * listen(0) calls in a row, and a server started with it as both its SIP and HTTP port fails
 * with EADDRINUSE (seen once in the suite).
 */
const handedOut = new Set<number>();

/** A port free for both TCP and UDP on 127.0.0.1 (SIP listens on both with one number), never the same twice. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const addr = s.address();
        s.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const u = createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (udpFree && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port found');
}
