/**
 * Small durable-file helpers shared by the log and the storage engine (its merge manifest and
 * merged files): a directory fsync, and an atomic whole-file write (tmp + fsync + rename + dir fsync).
 */
import { promises as fsp } from 'node:fs';
import * as nodePath from 'node:path';

/** fsyncs a directory, so that creations, renames and deletions in it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const dh = await fsp.open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/**
 * Replaces `path` with `data` atomically: writes `<path>.tmp`, fsyncs it, renames it over `path`,
 * fsyncs the directory. After a crash `path` holds either the old or the new bytes, never a mix;
 * a leftover `<path>.tmp` is garbage for the caller to delete.
 */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = path + '.tmp';
  const fh = await fsp.open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, path);
  await fsyncDir(nodePath.dirname(path));
}
