import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * When to force a garbage collection so that Buffers nobody references any more give their memory
 * back (docs/reliability.md, "Hostile clients").
 *
 * Why: V8 schedules collections by JS heap growth. A gateway's large allocations are Buffers
 * (read replies from NATS, encoded replies to clients) whose backing stores live outside the JS
 * heap, behind wrappers of ~100 bytes, so hundreds of MiB of dead Buffers can wait for a collection
 * that the heap never asks for — measured: 205 MB of dead Buffers still held 10 s after six
 * never-reading clients had gone, and the same in a three-line script that allocates 8 MiB
 * Buffers and goes idle. This is V8's own rule for external memory (collect once it grew by a
 * bound since the last collection), applied to ArrayBuffer memory, which V8 does not apply it to.
 *
 * Pure: the caller samples `arrayBuffersBytes` (BufferReclaimer: process.memoryUsage()'s
 * arrayBuffers + heapUsed, so heap garbage V8 lets wait is counted as well) and runs the collection.
 */
export class BufferReclaimPolicy {
  /** ArrayBuffer bytes right after the last collection (what was live then). */
  private baselineBytes = 0;
  private collections = 0;

  /** @param garbageBytesMax growth of ArrayBuffer memory since the last collection that triggers one, bytes (gateway.bufferGarbageBytesMax). */
  constructor(private readonly garbageBytesMax: number) {
    if (!(garbageBytesMax > 0)) throw new Error('BufferGarbageBytesMaxPositive: garbageBytesMax must be > 0');
  }

  /**
   * True when ArrayBuffer memory grew by more than garbageBytesMax above the lowest sample since
   * the last collection. A sample below the baseline lowers it: V8 collected on its own, and what
   * it freed was garbage counted in the baseline, so growth is measured from what is live now (a
   * baseline taken while garbage was waiting would otherwise let that much more pile up).
   */
  shouldCollect(arrayBuffersBytes: number): boolean {
    if (arrayBuffersBytes < this.baselineBytes) this.baselineBytes = arrayBuffersBytes;
    return arrayBuffersBytes - this.baselineBytes > this.garbageBytesMax;
  }

  /** Sets what counts as live without a collection (at start). */
  baseline(arrayBuffersBytes: number): void {
    this.baselineBytes = arrayBuffersBytes;
  }

  /** Records a collection: `arrayBuffersBytes` is what was still live after it. */
  collected(arrayBuffersBytes: number): void {
    this.baselineBytes = arrayBuffersBytes;
    this.collections++;
  }

  /** Collections forced so far. */
  count(): number {
    return this.collections;
  }
}

/**
 * V8's collector as a function, through `--expose-gc` set at run time (node:v8 setFlagsFromString,
 * then the `gc` global of a fresh context); null when this runtime does not give it.
 */
export function exposedGc(): (() => void) | null {
  setFlagsFromString('--expose-gc');
  const gc: unknown = runInNewContext('gc');
  return typeof gc === 'function' ? () => (gc as () => void)() : null;
}

/**
 * Samples ArrayBuffer memory every `intervalMs` and forces a full collection when the policy says
 * so (at most one per interval). A process-shell concern: it reads the real process's memory.
 */
export class BufferReclaimer {
  private timer: NodeJS.Timeout | null = null;
  private readonly policy: BufferReclaimPolicy;

  constructor(
    garbageBytesMax: number,
    private readonly intervalMs: number,
    private readonly gc: () => void,
  ) {
    this.policy = new BufferReclaimPolicy(garbageBytesMax);
  }

  start(): void {
    if (this.timer) return;
    this.policy.baseline(garbageCandidateBytes());
    this.timer = setInterval(() => this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Collections forced so far (cairn_gateway_buffer_collections_total). */
  collections(): number {
    return this.policy.count();
  }

  private check(): void {
    if (!this.policy.shouldCollect(garbageCandidateBytes())) return;
    this.gc();
    this.policy.collected(garbageCandidateBytes());
  }
}

/**
 * ArrayBuffer memory plus JS heap in use: the policy's sample. The heap counts too because with
 * read flow control a never-reading client's churn is mostly small objects, not Buffers (measured:
 * 236 MB of JS heap, 26 MB after one forced collection, with ArrayBuffers never growing enough to
 * trigger one; docs/reliability.md, "Hostile clients").
 */
function garbageCandidateBytes(): number {
  const m = process.memoryUsage();
  return m.arrayBuffers + m.heapUsed;
}
