import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { CodedError } from '@cairn/protocol';

/** Thrown when the `openssl` command is not on PATH; tests that need certificates skip with its message. */
export class OpensslMissingError extends CodedError {
  readonly code = 'OPENSSL_MISSING';
  constructor() {
    super('openssl was not found on PATH: the TLS tests make their test CA with it (`sudo apt-get install -y openssl`)');
  }
}

/** A certificate and its key, as files and as PEM bytes. */
export interface TestCert {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

/** A private CA made at test time, and what it issues. */
export interface TestPki {
  dir: string;
  caFile: string;
  ca: Buffer;
  /**
   * Issues a P-256 certificate signed by this CA, valid one day, to `<dir>/<name>.crt|.key`.
   * 'server': extendedKeyUsage serverAuth, SAN DNS:localhost and IP:127.0.0.1; 'client': clientAuth, CN = name.
   * Issuing the same name again overwrites the files (a certificate rotated on disk).
   */
  issue(name: string, usage: 'server' | 'client'): TestCert;
}

/** True when the `openssl` command runs. */
export function opensslAvailable(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/**
 * Makes a private CA in `dir` with the `openssl` CLI (OpenSSL 1.1.1 or 3.x): `<caName>.crt`, `<caName>.key`;
 * it and what it issues are valid `days` days. For tests and local clusters only: keys are unencrypted files.
 * @throws OpensslMissingError when openssl is not installed.
 */
export function makeTestPki(dir: string, caName = 'cairn-test-ca', days = 1): TestPki {
  if (!opensslAvailable()) throw new OpensslMissingError();
  const caFile = join(dir, `${caName}.crt`);
  const caKey = join(dir, `${caName}.key`);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  run(['req', '-x509', ...EC_KEY, '-keyout', caKey, '-out', caFile, '-days', String(days), '-subj', `/CN=${caName}`]);
  let serial = 1;
  return {
    dir,
    caFile,
    ca: readFileSync(caFile),
    issue(name, usage) {
      const certFile = join(dir, `${name}.crt`);
      const keyFile = join(dir, `${name}.key`);
      const csr = join(dir, `${name}.csr`);
      const ext = join(dir, `${name}.ext`);
      const san = usage === 'server' ? 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' : '';
      writeFileSync(ext, `${san}extendedKeyUsage=${usage === 'server' ? 'serverAuth' : 'clientAuth'}\nbasicConstraints=CA:FALSE\n`);
      run(['req', ...EC_KEY, '-keyout', keyFile, '-out', csr, '-subj', `/CN=${name}`]);
      run(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-set_serial', String(Date.now() * 1000 + serial++), '-days', String(days), '-extfile', ext, '-out', certFile]);
      return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
    },
  };
}

/**
 * A TLS connection to 127.0.0.1:`port` checking the server name the test PKI's server
 * certificates carry (`localhost`), once its handshake is done; `options` add to or replace those.
 * @throws the handshake's error (an untrusted certificate, a refused client certificate).
 */
export async function tlsConnected(port: number, options: ConnectionOptions = {}): Promise<TLSSocket> {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ...options });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  return socket;
}
