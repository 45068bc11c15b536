/**
 * A one-client request's latency, hop by hop, from the hop traces of every process of a run
 * (CAIRN_HOP_TRACE_DIR; libs/messaging hop-trace.ts; docs/benchmarks.md "Where one request's time
 * goes").
 *
 * Method: the gateway's `tlv.data` (a request's bytes arrived) to the next `tlv.answer` (its reply
 * handed to the socket) is one request's window; at one client windows never overlap. A window is
 * a put when the gateway sent a proposal in it (`req.propose`), a get when it sent a ReadIndex
 * (`req.readindex`). Along the op's chain of hops, each hop is the first mark of that name at or
 * after the previous hop's time (a hop of a busier kind, e.g. a heartbeat's loop turn, never counts
 * before the request's own). Per hop: the median and p90 over the windows of the time since the
 * previous hop, µs; a window where a hop is missing is left out of that hop's figures.
 */

/** One mark: µs on the box's monotonic clock and `role:hop`. */
export interface HopMark {
  us: number;
  hop: string;
}

/** The hops of a put at one client, in the order one request passes them. */
export const PUT_CHAIN = [
  'gateway:tlv.data',
  'gateway:req.propose',
  'consensus:recv.propose',
  'consensus:leader.loop',
  'consensus:leader.ready',
  'consensus:raft.send.Append',
  'consensus:raft.recv.Append',
  'consensus:follower.loop',
  'consensus:follower.ready',
  'consensus:follower.persisted',
  'consensus:raft.send.AppendResponse',
  'consensus:raft.recv.AppendResponse',
  'consensus:leader.loop',
  'consensus:leader.committed',
  'consensus:respond.propose',
  'gateway:reply.propose',
  'gateway:tlv.answer',
];

/** The hops of a linearizable get at one client (ReadIndex round, then the storage read). */
export const GET_CHAIN = [
  'gateway:tlv.data',
  'gateway:req.readindex',
  'consensus:recv.readindex',
  'consensus:leader.loop',
  'consensus:raft.send.Heartbeat',
  'consensus:raft.recv.Heartbeat',
  'consensus:raft.send.HeartbeatResponse',
  'consensus:raft.recv.HeartbeatResponse',
  'consensus:respond.readindex',
  'gateway:reply.readindex',
  'gateway:req.read',
  'storage:recv.read',
  'storage:respond.read',
  'gateway:reply.read',
  'gateway:tlv.answer',
];

/** Side hops reported as time since the window's start (they run beside the chain). */
export const SIDE_HOPS = ['consensus:leader.persisted', 'storage:applied'];

/** A hop's figures: time since the previous hop of the chain (side hops: since the window's start), µs. */
export interface HopRow {
  hop: string;
  p50Us: number;
  p90Us: number;
  /** Windows where the hop was found. */
  n: number;
}

export interface Breakdown {
  op: 'put' | 'get';
  windows: number;
  totalP50Us: number;
  rows: HopRow[];
  side: HopRow[];
  /**
   * Gets: windows by where their storage reads (`gateway:req.read`) left relative to the ReadIndex
   * reply (`gateway:reply.readindex`): `beside` only before it (gateway.readAlongsideReadIndex, the
   * answer kept: 4 bus hops in sequence), `after` only after it (the read after the round: 6),
   * `again` both (the read beside was behind the read index and went again: 6, one read more).
   */
  reads?: { beside: number; after: number; again: number };
}

/** The marks of a `.hops.tsv` file (`µs<TAB>role:hop` lines; `#` lines skipped). */
export function parseHops(text: string): HopMark[] {
  const out: HopMark[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const tab = line.indexOf('\t');
    out.push({ us: Number(line.slice(0, tab)), hop: line.slice(tab + 1) });
  }
  return out;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function row(hop: string, values: number[]): HopRow {
  const s = [...values].sort((a, b) => a - b);
  return { hop, p50Us: quantile(s, 0.5), p90Us: quantile(s, 0.9), n: s.length };
}

/** Index of the first mark named `hop` at or after `fromUs` and before `toUs` in `marks` (sorted by time), or -1. */
function findFrom(marks: HopMark[], start: number, hop: string, fromUs: number, toUs: number): number {
  for (let i = start; i < marks.length && marks[i].us <= toUs; i++) if (marks[i].us >= fromUs && marks[i].hop === hop) return i;
  return -1;
}

/** The breakdown of every put and every get window in `marks` (all processes' marks of one run). */
export function breakdown(all: HopMark[]): Breakdown[] {
  const marks = [...all].sort((a, b) => a.us - b.us);
  const windows: { start: number; end: number; first: number }[] = [];
  let open = -1;
  for (let i = 0; i < marks.length; i++) {
    if (marks[i].hop === 'gateway:tlv.data' && open < 0) open = i;
    else if (marks[i].hop === 'gateway:tlv.answer' && open >= 0) {
      windows.push({ start: marks[open].us, end: marks[i].us, first: open });
      open = -1;
    }
  }
  const out: Breakdown[] = [];
  for (const [op, chain] of [['put', PUT_CHAIN], ['get', GET_CHAIN]] as const) {
    const steps: number[][] = chain.map(() => []);
    const side: number[][] = SIDE_HOPS.map(() => []);
    const totals: number[] = [];
    const reads = { beside: 0, after: 0, again: 0 };
    for (const w of windows) {
      if (findFrom(marks, w.first, op === 'put' ? 'gateway:req.propose' : 'gateway:req.readindex', w.start, w.end) < 0) continue;
      totals.push(w.end - w.start);
      if (op === 'get') countReads(marks, w, reads);
      let prevUs = w.start;
      for (let k = 1; k < chain.length; k++) {
        const i = findFrom(marks, w.first, chain[k], prevUs, w.end);
        if (i < 0) continue;
        steps[k].push(marks[i].us - prevUs);
        prevUs = marks[i].us;
      }
      SIDE_HOPS.forEach((hop, k) => {
        const i = findFrom(marks, w.first, hop, w.start, w.end);
        if (i >= 0) side[k].push(marks[i].us - w.start);
      });
    }
    if (totals.length === 0) continue;
    out.push({
      op,
      windows: totals.length,
      totalP50Us: row('total', totals).p50Us,
      rows: chain.slice(1).map((hop, k) => row(hop, steps[k + 1])),
      side: SIDE_HOPS.map((hop, k) => row(hop, side[k])),
      ...(op === 'get' ? { reads } : {}),
    });
  }
  return out;
}

/** Adds one get window to `reads` by where its storage reads left relative to its (last) ReadIndex reply (Breakdown.reads). */
function countReads(marks: HopMark[], w: { start: number; end: number; first: number }, reads: { beside: number; after: number; again: number }): void {
  let replyUs = Infinity;
  for (let i = w.first; i < marks.length && marks[i].us <= w.end; i++) if (marks[i].hop === 'gateway:reply.readindex') replyUs = marks[i].us;
  let before = 0;
  let after = 0;
  for (let i = w.first; i < marks.length && marks[i].us <= w.end; i++) {
    if (marks[i].hop !== 'gateway:req.read') continue;
    if (marks[i].us < replyUs) before++;
    else after++;
  }
  if (before > 0 && after > 0) reads.again++;
  else if (before > 0) reads.beside++;
  else if (after > 0) reads.after++;
}
