import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  cert: string;
  key: string;
}

export interface Certificates {
  dir: string;
  /** The test CA's certificate file. */
  ca: string;
  /** Certificate files per name, each signed by the CA. */
  issued: Record<string, CertFiles>;
  /** Reads a file of this set. */
  read(path: string): Buffer;
}

/**
 * A throw-away CA and certificates signed by it, made with openssl for one test run.
 * `names` maps a name to its subjectAltName entries, e.g. { server: ['DNS:localhost', 'IP:10.0.0.1'] }.
 */
export function makeCertificates(names: Record<string, string[]>): Certificates {
  const dir = mkdtempSync(join(tmpdir(), 'sip-certs-'));
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  openssl('req', '-x509', ...ec, '-keyout', caKey, '-out', ca, '-days', '1', '-subj', '/CN=sip-server test CA');
  const issued: Record<string, CertFiles> = {};
  for (const [name, sans] of Object.entries(names)) {
    const key = join(dir, `${name}.key`);
    const csr = join(dir, `${name}.csr`);
    const cert = join(dir, `${name}.crt`);
    const ext = join(dir, `${name}.ext`);
    writeFileSync(ext, `subjectAltName=${sans.join(',')}\n`);
    openssl('req', ...ec, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`);
    openssl('x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '1', '-extfile', ext);
    issued[name] = { cert, key };
  }
  return { dir, ca, issued, read: (path) => readFileSync(path) };
}
