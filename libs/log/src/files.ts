/**
 * Small durable-file helpers shared by the log and the storage engine (its merge manifest and
 * merged files): a directory fsync, and an atomic whole-file write (tmp + fsync + rename + dir fsync).
 */
import * as nodePath from 'node:path';
import { nodeDisk, type Disk } from './disk';

/** fsyncs a directory, so that creations, renames and deletions in it are durable. */
export async function fsyncDir(dir: string, disk: Disk = nodeDisk): Promise<void> {
  const dh = await disk.open(dir, 'r');
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
export async function writeFileAtomic(path: string, data: Uint8Array, disk: Disk = nodeDisk): Promise<void> {
  const tmp = path + '.tmp';
  const fh = await disk.open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await disk.rename(tmp, path);
  await fsyncDir(nodePath.dirname(path), disk);
}
