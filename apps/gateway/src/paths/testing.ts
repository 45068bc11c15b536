import { CommandOp, Status, type Command } from '@cairn/protocol';
import type { ReadResult } from './read-path';
import type { WriteResult } from './write-path';

/** One key of a MemoryKv: its value and etcd's per-key metadata. */
export interface MemoryKvEntry {
  value: Buffer;
  /** Mod revision: the log index of the last write. */
  revision: number;
  createRevision: number;
  version: number;
}

/**
 * A store in memory for gateway specs that need no NATS: plain Set / Delete applied as a storage
 * node applies them (each write takes the next log index; create revision and version as etcd
 * keeps them), and a read answering OK or NOT_FOUND. Specs wrap `submit` and `get` in their fake
 * WritePath / ReadPath and add what they test (failures, held reads, auth ops).
 */
export function memoryKv() {
  const data = new Map<string, MemoryKvEntry>();
  let index = 0;
  const hex = (key: Uint8Array): string => Buffer.from(key).toString('hex');
  return {
    data,
    /** Takes the next log index (a write that is not a plain Set / Delete). */
    nextIndex: (): number => ++index,
    submit(c: Command): WriteResult {
      index++;
      const k = hex(c.key);
      if (c.op === CommandOp.Set) {
        const old = data.get(k);
        data.set(k, { value: Buffer.from(c.value), revision: index, createRevision: old?.createRevision ?? index, version: (old?.version ?? 0) + 1 });
      } else data.delete(k);
      return { status: Status.Ok, revision: index, message: '' };
    },
    get(key: Uint8Array): ReadResult {
      const e = data.get(hex(key));
      if (!e) return { status: Status.NotFound, revision: 0, value: new Uint8Array(0), message: '' };
      return { status: Status.Ok, revision: e.revision, createRevision: e.createRevision, version: e.version, value: e.value, message: '' };
    },
  };
}
