import {
  decodeWatchHistoryRequest,
  encodeWatchEvents,
  encodeWatchHistoryReply,
  watchEventBytes,
  withoutPrev,
  WatchHistoryResult,
  WATCH_EVENTS_BASE_BYTES,
  type WatchEvent,
  type WatchEventsMessage,
} from '@cairn/protocol';
import type { WatchHistory } from './watch-history';

/**
 * The bus side of a storage node's watch events (docs/watch.md "Delivery"): splits an applied
 * batch's events into WatchEvents messages under the bus payload bound (at revision boundaries;
 * an event that does not fit with its previous value goes without it), chained by revision, and
 * answers WatchHistoryRequest pages from the history.
 */
export class WatchSource {
  constructor(
    private readonly nodeId: string,
    private readonly payloadBytesMax: () => number,
  ) {}

  /** The WatchEvents messages for one applied batch covering (prevRevision, lastRevision]. */
  messages(prevRevision: number, lastRevision: number, events: readonly WatchEvent[]): WatchEventsMessage[] {
    const room = this.payloadBytesMax() - WATCH_EVENTS_BASE_BYTES - (2 + Buffer.byteLength(this.nodeId, 'utf8')) - 1024;
    const out: WatchEventsMessage[] = [];
    let prev = prevRevision;
    let cur: WatchEvent[] = [];
    let bytes = 0;
    for (let i = 0; i < events.length; i++) {
      let e = events[i];
      if (watchEventBytes(e) > room) e = withoutPrev(e);
      const n = watchEventBytes(e);
      // Cut only between revisions: a message never holds part of one revision's events.
      if (cur.length > 0 && bytes + n > room && cur[cur.length - 1].modRevision !== e.modRevision) {
        const last = e.modRevision - 1;
        out.push({ nodeId: this.nodeId, prevRevision: prev, lastRevision: last, events: cur });
        prev = last;
        cur = [];
        bytes = 0;
      }
      cur.push(e);
      bytes += n;
    }
    out.push({ nodeId: this.nodeId, prevRevision: prev, lastRevision: lastRevision, events: cur });
    return out;
  }

  /** Encoded messages for one batch (see `messages`). */
  encode(prevRevision: number, lastRevision: number, events: readonly WatchEvent[]): Buffer[] {
    return this.messages(prevRevision, lastRevision, events).map(encodeWatchEvents);
  }

  /** One history page (WatchHistoryRequest → WatchHistoryReply), Unavailable when `history` is null (stores closed) or a record is unreadable. */
  history(data: Uint8Array, history: WatchHistory | null, onError: (e: unknown) => void): Buffer {
    const q = decodeWatchHistoryRequest(data);
    const unavailable = (message: string) => encodeWatchHistoryReply({ result: WatchHistoryResult.Unavailable, oldestRevision: 0, lastRevision: 0, nextRevision: q.fromRevision, message, events: [] });
    if (!history) return unavailable(`storage node ${this.nodeId} is not serving watch history now`);
    try {
      return encodeWatchHistoryReply(history.page(q, this.payloadBytesMax()));
    } catch (e) {
      onError(e);
      return unavailable(`storage node ${this.nodeId}: ${(e as Error).message}`);
    }
  }
}
