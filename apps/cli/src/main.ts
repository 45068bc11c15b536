#!/usr/bin/env node
/** `cairn`: the command-line client. Commands and exit codes: see `cairn --help` and docs/cli.md. */
import { CairnClient } from '@cairn/client';
import { run, type CliClient } from './cli';

run(process.argv, {
  connect: (o) =>
    CairnClient.connect({ host: o.host, port: o.port, requestTimeoutMs: o.requestTimeoutMs, inflightMax: o.inflightMax }) as Promise<CliClient>,
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
