#!/usr/bin/env node
/** `cairn`: the command-line client. Commands and exit codes: see `cairn --help` and docs/cli.md. */
import { run } from './cli';
import { addCompletion } from './completion';
import { connectPool } from './connection';
import { createInterface } from 'node:readline';

/** The first line of standard input (a password piped in, cut to 4 KiB), or null when there is none. */
function readLine(): Promise<string | null> {
  if (process.stdin.isTTY) return Promise.resolve(null);
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin });
    rl.once('line', (line) => {
      rl.close();
      resolve(line.slice(0, 4096));
    });
    rl.once('close', () => resolve(null));
  });
}

/** Aborted on the first Ctrl-C or SIGTERM after the call (a second one ends the process as usual). */
function interrupted(): AbortSignal {
  const ac = new AbortController();
  const stop = () => ac.abort(new Error('interrupted'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return ac.signal;
}

run(process.argv, {
  interrupted,
  connect: connectPool,
  completion: addCompletion,
  readLine,
  stdin: { isTTY: process.stdin.isTTY, lines: () => createInterface({ input: process.stdin, crlfDelay: Infinity }) },
  stdout: process.stdout,
  stderr: process.stderr,
}).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`cairn: ${(e as Error).stack}\n`);
    process.exitCode = 5;
  },
);
