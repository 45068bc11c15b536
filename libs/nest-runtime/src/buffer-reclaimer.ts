import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { realClock, type Clock, type TimerHandle } from '@cairn/world';

/**
 * When to force a garbage collection so that Buffers nobody references any more give their memory
 * back (docs/reliability.md, "Hostile clients"). Used by the gateway (gateway.bufferGarbageBytesMax)
 * and the consensus replicas (consensus.bufferGarbageBytesMax, docs/benchmarks.md "Memory after
 * 1,000,000 writes").
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
  /** Samples in a row with the process's pending bytes at most IDLE_PENDING_BYTES. */
  private quietSamples = 0;
  /** A burst happened since the last idle collection: a collection on growth, or growth past idleFloorBytes + idleGarbageBytes. */
  private burstSinceIdle = false;
  /** What was live after the last idle collection (or at start). */
  private idleFloorBytes = 0;
  /** Growth above idleFloorBytes that counts as a burst (garbageBytesMax / 2). */
  private readonly idleGarbageBytes: number;

  /** @param garbageBytesMax growth of ArrayBuffer memory since the last collection that triggers one, bytes (gateway. / consensus.bufferGarbageBytesMax). */
  constructor(private readonly garbageBytesMax: number) {
    if (!(garbageBytesMax > 0)) throw new Error('BufferGarbageBytesMaxPositive: garbageBytesMax must be > 0');
    this.idleGarbageBytes = garbageBytesMax / 2;
  }

  /**
   * True once the process is quiet (IDLE_SAMPLES samples in a row with at most IDLE_PENDING_BYTES
   * of replies and reads pending, ByteBudget.used()) after a burst: a collection on growth, or
   * growth by more than garbageBytesMax / 2 above what the last idle collection left. Why: what a burst held live at its last collection
   * (replies queued for a never-reading client, a large MGET) is garbage once it ends, but counts
   * in the growth rule's baseline, so no growth ever collects it and RSS stays near the burst's
   * peak. Once per burst: a process that is merely busy at a steady level is not collected again.
   * Call once per sample, after `shouldCollect` (and `collected` if that collected).
   */
  shouldCollectIdle(arrayBuffersBytes: number, pendingBytes: number): boolean {
    this.quietSamples = pendingBytes <= IDLE_PENDING_BYTES ? this.quietSamples + 1 : 0;
    if (arrayBuffersBytes - this.idleFloorBytes > this.idleGarbageBytes) this.burstSinceIdle = true;
    return this.burstSinceIdle && this.quietSamples >= IDLE_SAMPLES;
  }

  /** Records an idle collection: `arrayBuffersBytes` is what was still live after it. */
  collectedIdle(arrayBuffersBytes: number): void {
    this.collected(arrayBuffersBytes);
    this.idleFloorBytes = arrayBuffersBytes;
    this.burstSinceIdle = false;
    this.quietSamples = 0;
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
    this.idleFloorBytes = arrayBuffersBytes;
  }

  /** Records a collection on growth: `arrayBuffersBytes` is what was still live after it. */
  collected(arrayBuffersBytes: number): void {
    this.baselineBytes = arrayBuffersBytes;
    this.burstSinceIdle = true;
    this.collections++;
  }

  /** Collections forced so far. */
  count(): number {
    return this.collections;
  }
}

/** Quiet samples in a row that end a burst for `shouldCollectIdle` (5 × bufferCheckIntervalMs: 1 s by default). */
const IDLE_SAMPLES = 5;
/** Pending bytes (a gateway: replies and reads it holds, ByteBudget; a replica: entry bytes persisted since the last sample) at or under which a sample is quiet. */
const IDLE_PENDING_BYTES = 1024 * 1024;

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
 * A full collection that also compacts every page (V8 `--compact-on-every-full-gc`, switched on
 * for this one call). Why: after a burst the live objects are scattered over pages V8 keeps
 * committed, so a plain collection frees the objects but not the memory — measured in a script
 * holding 1 in 500 of 1.5 M objects: heap 213 MB and RSS 264 MB after `gc()`, 36 / 87 MB after
 * this, in 137 ms (a pause: run it only when the process is idle). Null without `exposedGc`.
 */
export function exposedCompactingGc(): (() => void) | null {
  const gc = exposedGc();
  if (!gc) return null;
  return () => {
    setFlagsFromString('--compact-on-every-full-gc');
    try {
      gc();
    } finally {
      setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}

/**
 * Samples ArrayBuffer memory every `intervalMs` and forces a full collection when the policy says
 * so, on growth or once a burst's garbage stopped growing (at most one per interval). A process-shell concern: it reads the real process's memory.
 */
export class BufferReclaimer {
  private timer: TimerHandle | null = null;
  private readonly policy: BufferReclaimPolicy;

  /**
   * @param gc a full collection (`exposedGc`); `compactingGc` (`exposedCompactingGc`) runs after an
   * idle collection that left more than compactFreeBytesMin of the JS heap committed but free.
   */
  constructor(
    garbageBytesMax: number,
    private readonly intervalMs: number,
    private readonly gc: () => void,
    private readonly compactingGc: (() => void) | null = null,
    /** The process's pending bytes (a gateway's ByteBudget.used, a replica's entry bytes persisted since the last sample); absent: never quiet, no idle collections. */
    private readonly pendingBytes: () => number = () => Infinity,
    /** Committed-but-free JS heap above which an idle collection also compacts, bytes; default garbageBytesMax. */
    private readonly compactFreeBytesMin: number = garbageBytesMax,
    /** Runs the sampling timer (unref'd: it never keeps the process up); the process shell passes its world's. */
    private readonly clock: Clock = realClock,
  ) {
    this.policy = new BufferReclaimPolicy(garbageBytesMax);
  }

  start(): void {
    if (this.timer) return;
    this.policy.baseline(garbageCandidateBytes());
    this.timer = this.clock.setInterval(() => this.check(), this.intervalMs, { unref: true });
  }

  stop(): void {
    this.clock.clearTimer(this.timer ?? undefined);
    this.timer = null;
  }

  /** Collections forced so far (e.g. cairn_gateway_buffer_collections_total). */
  collections(): number {
    return this.policy.count();
  }

  private check(): void {
    const bytes = garbageCandidateBytes();
    if (this.policy.shouldCollect(bytes)) {
      this.gc();
      this.policy.collected(garbageCandidateBytes());
      return;
    }
    if (!this.policy.shouldCollectIdle(bytes, this.pendingBytes())) return;
    this.gc();
    if (this.compactingGc) {
      const m = process.memoryUsage();
      if (m.heapTotal - m.heapUsed > this.compactFreeBytesMin) this.compactingGc();
    }
    this.policy.collectedIdle(garbageCandidateBytes());
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
