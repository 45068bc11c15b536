import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeTestPki, opensslAvailable, type TestPki } from '@cairn/messaging/testing';
import { run, type CliDeps } from './cli';

/** A stdout / stderr stand-in that keeps what the CLI wrote. */
export class Sink {
  text = '';
  isTTY = false;
  write(s: string | Uint8Array) {
    this.text += typeof s === 'string' ? s : Buffer.from(s).toString('utf8');
    return true;
  }
}

/** One request the fake gateway HTTP API received. `authorization` is present when the CLI sent one. */
export interface HttpCall {
  method: string;
  url: string;
  body: unknown;
  authorization?: string;
}

/**
 * A fake gateway HTTP API for CLI specs: records every request, answers from `answer` (an Error
 * is thrown as fetch throws on a refused connection). The TLV connection is refused unless
 * `extra` provides one. `cairn(...args)` runs the CLI and resolves to its exit code.
 */
export function httpHarness(answer: (method: string, url: string, body: unknown) => { status: number; json: unknown } | Error, extra: Partial<CliDeps> = {}) {
  const calls: HttpCall[] = [];
  const stdout = new Sink();
  const stderr = new Sink();
  const fakeFetch = (async (url: string, init: RequestInit) => {
    const body = init.body ? JSON.parse(String(init.body)) : undefined;
    const authorization = (init.headers as Record<string, string> | undefined)?.authorization;
    calls.push({ method: init.method ?? 'GET', url, body, ...(authorization !== undefined ? { authorization } : {}) });
    const a = answer(init.method ?? 'GET', url, body);
    if (a instanceof Error) throw a;
    return new Response(JSON.stringify(a.json), { status: a.status, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
  const deps: CliDeps = { connect: () => Promise.reject(new Error('this command must not use the TLV connection')), stdout, stderr, env: {}, fetch: fakeFetch, ...extra };
  return { calls, stdout, stderr, cairn: (...args: string[]) => run(['node', 'cairn', ...args], deps) };
}

/**
 * A test CA in a fresh temp dir (makeTestPki), or null when openssl is not installed: then
 * `untested` (what goes untested) is said on stderr and the test returns without its TLS part.
 */
export function testPkiOrSay(untested: string): TestPki | null {
  if (!opensslAvailable()) {
    process.stderr.write(`${untested}: openssl is not installed\n`);
    return null;
  }
  return makeTestPki(fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-tls-')));
}
