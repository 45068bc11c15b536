/**
 * Small durable-file helpers shared by the log and the storage engine (its merge manifest and
 * merged files, its snapshot manifests): a directory fsync, a new file written whole and fsynced, and an
 * atomic whole-file write (tmp + fsync + rename + dir fsync).
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
 * Creates `path` (which must not exist: flag `wx`; `w` truncates one that does) holding `data`,
 * fsynced. Its directory entry is the caller's to fsync.
 */
export async function writeNewFileDurable(path: string, data: Uint8Array, disk: Disk = nodeDisk, flag: 'wx' | 'w' = 'wx'): Promise<void> {
  const fh = await disk.open(path, flag);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `path` with `data` atomically: writes `<path>.tmp`, fsyncs it, renames it over `path`,
 * fsyncs the directory. After a crash `path` holds either the old or the new bytes, never a mix;
 * a leftover `<path>.tmp` is garbage for the caller to delete.
 */
export async function writeFileAtomic(path: string, data: Uint8Array, disk: Disk = nodeDisk): Promise<void> {
  const tmp = path + '.tmp';
  // `w`: a leftover tmp of an earlier crash is overwritten.
  await writeNewFileDurable(tmp, data, disk, 'w');
  await disk.rename(tmp, path);
  await fsyncDir(nodePath.dirname(path), disk);
}
