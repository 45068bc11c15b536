import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { logTail } from '@cairn/cluster';
import { CodedError } from '@cairn/protocol';

/** A server process exited before the benchmark stopped it. */
export class ServerExitedError extends CodedError {
  readonly code = 'SERVER_EXITED';
  constructor(name: string, exit: string, logTail: string) {
    super(`${name} exited (${exit}); last lines of its log:\n${logTail}`);
  }
}

/** A store was not ready in time; the message says what was awaited and the last failure. */
export class NotReadyError extends CodedError {
  readonly code = 'NOT_READY';
}

interface Server {
  name: string;
  child: ChildProcess;
  logPath: string;
  exited: Promise<void>;
  exit: string | null;
}

/** How long a server gets after SIGTERM before SIGKILL. */
export const SERVER_STOP_GRACE_MS = 10_000;

/**
 * The peer servers one run started: each with its stdout and stderr in a log file, all stopped by
 * `stopAll` (SIGTERM, SIGKILL after SERVER_STOP_GRACE_MS), also on Ctrl-C and on failure.
 */
export class ServerGroup {
  private readonly servers: Server[] = [];

  /** Starts `command args…` with its output appended to `logPath`. */
  start(name: string, command: string, args: string[], logPath: string): void {
    const fd = openSync(logPath, 'a');
    let child: ChildProcess;
    try {
      child = spawn(command, args, { stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    const s: Server = { name, child, logPath, exit: null, exited: Promise.resolve() };
    s.exited = new Promise<void>((resolve) => {
      child.once('error', (e) => {
        s.exit = `spawn error ${e.message}`;
        resolve();
      });
      child.once('exit', (code, signal) => {
        s.exit = signal !== null ? `signal ${signal}` : `code ${code}`;
        resolve();
      });
    });
    this.servers.push(s);
  }

  /** @throws ServerExitedError when a server of this group has exited. */
  assertRunning(): void {
    const gone = this.servers.find((s) => s.exit !== null);
    if (gone) throw new ServerExitedError(gone.name, gone.exit ?? '', logTail(gone.logPath, 15));
  }

  /**
   * Calls `check` every 100 ms until it resolves true (a rejection counts as not yet), while every
   * server runs. @throws ServerExitedError, NotReadyError after `timeoutMs`
   */
  async waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      this.assertRunning();
      try {
        if (await check()) return;
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
      }
      if (Date.now() > deadline) throw new NotReadyError(`${what} not ready within ${timeoutMs} ms${last ? `; last error: ${last}` : ''}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Stops every server still running, one at a time in reverse start order, waiting for each to
   * exit. Never throws. One at a time because members stopped together each wait for peers that
   * are going away: 3 etcd members took 7 s in parallel, 0.2 s one after another.
   */
  async stopAll(): Promise<void> {
    for (const s of [...this.servers].reverse()) {
      if (s.exit !== null) continue;
      s.child.kill('SIGTERM');
      const timer = setTimeout(() => s.child.kill('SIGKILL'), SERVER_STOP_GRACE_MS);
      await s.exited;
      clearTimeout(timer);
    }
  }
}
