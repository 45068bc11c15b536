#!/usr/bin/env node
/** `cairn`: the command-line client. Commands and exit codes: see `cairn --help` and docs/cli.md. */
import { run } from './cli';
import { addCompletion } from './completion';
import { connectPool } from './connection';

run(process.argv, {
  connect: connectPool,
  completion: addCompletion,
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
