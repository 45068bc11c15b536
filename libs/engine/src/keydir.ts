/**
 * The keydir: for every live key, where its latest value record is. Keyed by the key bytes as a
 * latin1 string (one char per byte, so binary-safe and cheap to hash); entries are small
 * fixed-shape objects of four numbers. Also keeps the byte accounting a merge will use.
 */
import type { RecordPosition } from '@cairn/log';
import { EngineOp } from './record';

/** Position of a key's live Set record. `revision` = the Raft index that wrote it. */
export interface KeydirEntry {
  segmentId: number;
  offset: number;
  /** Size of the log frame (8 + data record bytes). */
  sizeBytes: number;
  revision: number;
}

export function keyString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');
}

export class Keydir {
  private readonly map = new Map<string, KeydirEntry>();
  /** Frame bytes of the records the keydir points to. */
  liveBytes = 0;
  /** Frame bytes of records nothing points to any more: overwritten values, tombstones, noops. A merge reclaims them. */
  deadBytes = 0;

  get size(): number {
    return this.map.size;
  }

  get(key: string): KeydirEntry | undefined {
    return this.map.get(key);
  }

  /**
   * Folds one data record (in log order) into the keydir: the same path serves `apply` and the
   * rebuild at open (and will serve hint files).
   */
  record(op: EngineOp, key: string, position: RecordPosition, revision: number): void {
    if (op === EngineOp.Set) {
      this.dropLive(key);
      this.map.set(key, { segmentId: position.segmentId, offset: position.offset, sizeBytes: position.sizeBytes, revision });
      this.liveBytes += position.sizeBytes;
    } else {
      if (op === EngineOp.Delete) this.dropLive(key);
      // A tombstone is dead from the start: it only has to outlive the values it shadows.
      this.deadBytes += position.sizeBytes;
    }
  }

  private dropLive(key: string): void {
    const old = this.map.get(key);
    if (!old) return;
    this.map.delete(key);
    this.liveBytes -= old.sizeBytes;
    this.deadBytes += old.sizeBytes;
  }
}
