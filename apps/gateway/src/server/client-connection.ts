import { CommandCondition, IF_REVISION_OPERAND_BYTES, LeaseRefusal, Opcode, PROTOCOL_VERSION, encodeHelloReply, WatchCancelReason, WatchOptions, decodeWatchCancel, decodeWatchSpec, encodeWatchCanceledFrame, encodeWatchEventsFrame, encodeWatchProgressFrame, prefixEnd, singleKeyEnd, REQUEST_HEADER_BYTES, RESPONSE_HEADER_BYTES, RequestDecoder, RangeOptions, RequestFlags, ResponseFlags, Status, decodeIncrRequest, decodeRangeSpec, decodeTxnRequest, encodeGetMeta, encodeIncrReply, encodeRangePage, encodeResponse, encodeTxnResult, type WatchSpec, type DecodeEvent, type FrameLimits, type Request, type Response, ProtocolError, decodeLeaseGrantRequest, decodeLeaseListRequest, decodeLeaseOperand, decodeLeaseTtlRequest, decodeLeaseU64, encodeLeaseGrantReply, encodeLeaseListReply, encodeLeaseTtlReply, encodeLeaseU64, opcodeName, type CommandMeta, type WatchEvent } from '@cairn/protocol';
import { hopTrace } from '@cairn/messaging';
import { realClock, type Clock } from '@cairn/world';
import type { RequestObserver, RequestOp } from '../metrics/request-metrics';
import { KvSession, type KvLeasePaths, type KvPaths, type KvResult, type TxnBounds } from '../paths/kv-session';
import type { RangeLimits } from '../paths/kv-range';
import { WatchersFullError, type WatchHub, type Watcher } from '../watch/watch-hub';
import { WatchFrameBatch, type WatchBatchSlot } from './watch-frames';
import { ConnectionFlow, RequestHold, type ByteBudget, type FlowLimits, type FlowSocket } from './flow';
import { AUTH_REQUIRED, isRefusal, type AuthIdentity, type AuthRefusal, type GatewayAuth } from '../auth/gateway-auth';

export interface ConnectionDeps {
  limits: FrameLimits;
  /** Range page bounds (gateway.rangeKeysMax / rangeBytesMax); default RANGE_LIMITS_DEFAULT. */
  rangeLimits?: RangeLimits;
  /** Transaction bounds (gateway.txnOpsMax / txnKeysMax / txnResultBytesMax); default TXN_BOUNDS_DEFAULT. */
  txnBounds?: TxnBounds;
  /** Requests per connection from decode until their response is flushed; beyond it the socket is paused. */
  inflightMax: number;
  /** Byte bounds, deadlines and the idle timeout of a connection (ConnectionFlow). */
  flow: FlowLimits;
  /** The gateway-wide bound on bytes held for clients (shared with the RESP door). */
  budget: ByteBudget;
  /** The gateway's paths, only the calls a KvSession makes (KvPaths). */
  reads: KvPaths['reads'];
  /** Absent (tests): reads are read-your-writes only. */
  readIndex?: KvPaths['readIndex'];
  writes: KvPaths['writes'];
  status: () => unknown;
  onClose: (c: ClientConnection) => void;
  /** Called once per answered request (GatewayMetrics.observer('tlv')); absent in tests. */
  observer?: RequestObserver;
  /** Runs the frame deadline, close and drain timeouts, and is the wall clock a SET's LEASE-operand TTL starts from (default `realClock`; the simulator's virtual clock). */
  clock?: Clock;
  /** Key permissions (docs/security.md); absent (tests): everything allowed. */
  auth?: GatewayAuth;
  /** Lease keep-alive / time to live / list (docs/leases.md "Doors"); absent: those answer UNAVAILABLE. */
  leases?: KvLeasePaths;
  /** Serves WATCH (docs/watch.md "TLV door"); absent: WATCH is answered BAD_REQUEST. */
  watches?: { hub: Pick<WatchHub, 'open' | 'cancel'>; perConnectionMax: number };
}

const EMPTY = Buffer.alloc(0);
/** The answer to a GET whose value is not queued: the client is not reading and the gateway is at pendingBytesMax. */
const notReading = (bytes: number): KvResult => ({
  status: Status.Unavailable,
  revision: 0,
  value: EMPTY,
  message: `value of ${bytes} bytes not sent: this connection does not read its responses and the gateway holds pendingBytesMax`,
});
/** What a connection may send before it authenticates while auth is enabled (docs/protocol.md "HELLO and AUTH"). */
const OPEN_BEFORE_AUTH = new Set<number>([Opcode.Ping, Opcode.Hello, Opcode.Auth]);
const ok = (value: Uint8Array): KvResult => ({ status: Status.Ok, revision: 0, value, message: '' });
const refused = (r: AuthRefusal): KvResult => ({ status: r.status, revision: 0, value: EMPTY, message: r.message });
/** Bytes a request holds while in flight: its frame (header + key + value). */
const frameBytes = (req: Request) => REQUEST_HEADER_BYTES + req.key.length + req.value.length;

/**
 * One client TCP connection speaking protocol v1 (docs/protocol.md): a streaming decoder, many
 * requests in flight (pipelining; responses are written as they complete, matched by request id)
 * and read-your-writes: every read carries the index of this connection's last acknowledged write.
 * Backpressure (docs/protocol.md, "Connection limits and backpressure"): the socket is paused
 * while `inflightMax` requests are between decode and a flushed response, or while a byte bound of
 * ConnectionFlow is crossed; a frame half read for `frameDeadlineMs` is answered and closed.
 * A client that shuts its side after its last request (half-close, as `nc` does) still gets every
 * reply; the connection closes once they are flushed.
 */
export class ClientConnection {
  private readonly decoder: RequestDecoder;
  private readonly session: KvSession;
  private readonly identity: AuthIdentity = { user: null };
  private readonly flow: ConnectionFlow;
  /** Requests from decode until their response is flushed (or the socket closed). */
  private inflight = 0;
  /** Of those, the ones the cluster has not answered yet. */
  private awaiting = 0;
  private draining = false;
  /** Decoded frames not yet handled because a bound stopped the connection. */
  private backlog: DecodeEvent[] = [];
  private backlogHead = 0;
  /** Open watches of this connection by watch id (the WATCH request's id). */
  private readonly watches = new Map<number, Watcher | null>();
  /** This turn's watch frames, written as one buffer (flushed before any other reply and before closing). */
  private readonly watchFrames: WatchFrameBatch;
  /** An AUTH is being checked: later frames wait for its answer, so they run as the identity it sets. */
  private authPending = false;
  /** Failed AUTHs on this connection (gateway.auth.failuresPerConnectionMax). */
  private authFailures = 0;
  /** The client's IP address, for the failed-auth bound per address. */
  private readonly address: string;
  /** A tracked request's reply is flushed: it is no longer in flight (one closure per connection, not per reply). */
  private readonly replyFlushed = () => {
    this.inflight--;
  };

  constructor(
    socket: FlowSocket & { remoteAddress?: string },
    private readonly deps: ConnectionDeps,
  ) {
    this.address = socket.remoteAddress ?? '';
    this.decoder = new RequestDecoder(deps.limits);
    // The connection's identity: anonymous until it authenticates (while auth is enabled, refused).
    this.session = new KvSession({ reads: deps.reads, readIndex: deps.readIndex, writes: deps.writes, limits: deps.limits, rangeLimits: deps.rangeLimits, txnBounds: deps.txnBounds, leases: deps.leases }, deps.auth?.guardFor(this.identity));
    socket.setNoDelay(true);
    this.watchFrames = new WatchFrameBatch((frames, onFlushed) => this.flow.write(frames, onFlushed));
    this.flow = new ConnectionFlow(socket, deps.flow, deps.budget, {
      data: (chunk) => this.onData(chunk),
      // The client shut its side (e.g. `nc` at the end of its input): answer what came, then close.
      peerEnded: () => this.processBacklog(),
      update: () => this.processBacklog(),
      beforeClose: () => this.watchFrames.flush(),
      frameDeadline: () => this.fatal(`frame not completed within frameDeadlineMs (${deps.flow.frameDeadlineMs} ms)`),
      // An open watch keeps the connection from idling out, as a request in flight does.
      awaitingCluster: () => this.awaiting + this.watches.size,
      closed: () => {
        for (const w of this.watches.values()) if (w) deps.watches?.hub.cancel(w, WatchCancelReason.Client, 0, 'connection closed', true);
        this.watches.clear();
        deps.onClose(this);
      },
    }, deps.clock);
  }

  /** Stops reading new requests, waits (at most `timeoutMs`) for in-flight ones, then closes. */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    await this.flow.drain(timeoutMs);
  }

  private onData(chunk: Buffer): void {
    if (this.flow.isClosing()) return;
    if (hopTrace.enabled) hopTrace.mark('tlv.data');
    for (const ev of this.decoder.push(chunk)) this.backlog.push(ev);
    this.processBacklog();
  }

  /**
   * Handles decoded frames while no bound stops the connection. One TCP chunk can hold many
   * frames, so the rest wait in `backlog` (at most one chunk's worth) with the socket paused, and
   * resume as responses are flushed: the bounds are exact, not per chunk.
   */
  private processBacklog(): void {
    while (this.backlogHead < this.backlog.length && !this.flow.closed() && !this.flow.isClosing()) {
      if (this.stopped()) break;
      const ev = this.backlog[this.backlogHead++];
      if (ev.kind === 'request') this.handle(ev.request);
      else if (ev.kind === 'reject') {
        this.respond({ status: ev.status, flags: 0, requestId: ev.requestId, revision: 0, payload: Buffer.from(ev.message) });
        this.deps.observer?.observe('other', ev.status, 0);
      } else {
        // Framing is lost: answer once, then close (docs/protocol.md, "bad headers").
        this.fatal(ev.message, ev.requestId, ev.status);
        return;
      }
    }
    if (this.backlogHead === this.backlog.length) {
      this.backlog = [];
      this.backlogHead = 0;
    }
    if (this.flow.peerEnded() && this.backlogHead === this.backlog.length && this.awaiting === 0 && !this.flow.closed()) {
      // Every request the client sent is answered (a frame it left half sent never completes).
      this.flow.closeAfterFlush();
      return;
    }
    this.flow.setReading(!this.stopped() && this.backlogHead === this.backlog.length, this.decoder.midFrame());
  }

  private stopped(): boolean {
    return this.draining || this.authPending || this.inflight >= this.deps.inflightMax || this.flow.blocked();
  }

  /** Answers once (BAD_REQUEST), takes no more input, closes after the answer is flushed. */
  private fatal(message: string, requestId = 0, status: Status = Status.BadRequest): void {
    if (this.flow.isClosing()) return;
    this.backlog = [];
    this.backlogHead = 0;
    this.respond({ status, flags: 0, requestId, revision: 0, payload: Buffer.from(message) });
    this.flow.closeAfterFlush();
  }

  private handle(req: Request): void {
    const startMs = performance.now();
    if (this.refusedBeforeAuth(req)) return;
    switch (req.opcode) {
      case Opcode.Ping:
        this.respond({ status: Status.Ok, flags: 0, requestId: req.requestId, revision: 0, payload: req.value });
        this.deps.observer?.observe('ping', Status.Ok, (performance.now() - startMs) / 1000);
        return;
      case Opcode.Hello:
        this.track(req, 'other', startMs, this.hold(req), this.hello());
        return;
      case Opcode.Auth:
        this.authenticate(req, startMs);
        return;
      case Opcode.Status:
        // With auth: any authenticated user (as HTTP /v1/cluster), and only once the state is known.
        if (this.deps.auth) {
          this.track(req, 'status', startMs, this.hold(req), this.statusFor(this.deps.auth));
          return;
        }
        this.respond({ status: Status.Ok, flags: 0, requestId: req.requestId, revision: 0, payload: Buffer.from(JSON.stringify(this.deps.status())) });
        this.deps.observer?.observe('status', Status.Ok, (performance.now() - startMs) / 1000);
        return;
      case Opcode.Get: {
        // A GET reserves what its answer is expected to bring back; the read path asks the
        // storage node for no more (read flow control) and grows the reservation for a larger value.
        const hold = this.hold(req);
        this.track(req, 'get', startMs, hold, this.session.get(req.key, { stale: (req.flags & RequestFlags.Stale) !== 0, reservation: hold.read(this.deps.budget.readEstimate()) }));
        return;
      }
      case Opcode.Set: {
        const cas = casOf(req);
        const lease = leaseOf(req.flags, cas.value, this.now());
        this.deps.budget.observeValue(lease.value.length);
        this.track(req, 'set', startMs, this.hold(req), this.session.set(req.key, lease.value, { condition: conditionOf(req.flags), ifRevision: cas.ifRevision, meta: lease.meta }));
        return;
      }
      case Opcode.Del:
        this.track(req, 'del', startMs, this.hold(req), this.session.del(req.key, { ifRevision: casOf(req).ifRevision }));
        return;
      case Opcode.Range:
        this.track(req, 'other', startMs, this.hold(req), this.range(req));
        return;
      case Opcode.Txn:
        this.track(req, 'other', startMs, this.hold(req), this.txn(req));
        return;
      case Opcode.Watch:
        this.openWatch(req);
        return;
      case Opcode.WatchCancel:
        this.cancelWatch(req);
        return;
      case Opcode.Incr:
        this.track(req, 'other', startMs, this.hold(req), this.incr(req));
        return;
      case Opcode.LeaseGrant:
      case Opcode.LeaseRevoke:
      case Opcode.LeaseKeepAlive:
      case Opcode.LeaseTtl:
      case Opcode.LeaseList:
        this.track(req, 'other', startMs, this.hold(req), leaseRequest(this.session, req));
        return;
      default:
        this.respond({ status: Status.BadRequest, flags: 0, requestId: req.requestId, revision: 0, payload: Buffer.from(`unsupported opcode ${req.opcode}`) });
        this.deps.observer?.observe('other', Status.BadRequest, 0);
    }
  }

  /**
   * While auth is enabled and the connection has not authenticated, every opcode but PING, HELLO
   * and AUTH is answered UNAUTHENTICATED at once (true: answered). While this gateway does not know
   * the auth state yet, key requests wait in their guard (UNAVAILABLE after readTimeoutMs).
   */
  private refusedBeforeAuth(req: Request): boolean {
    if (!this.deps.auth || this.identity.user !== null || OPEN_BEFORE_AUTH.has(req.opcode)) return false;
    if (!this.deps.auth.view.current()?.state.enabled) return false;
    this.respond({ status: Status.Unauthenticated, flags: 0, requestId: req.requestId, revision: 0, payload: Buffer.from(AUTH_REQUIRED) });
    this.deps.observer?.observe('other', Status.Unauthenticated, 0);
    return true;
  }

  /** HELLO: protocol version, whether auth is enabled, and who the connection is (hello.ts). */
  private async hello(): Promise<KvResult> {
    const on = this.deps.auth ? await this.deps.auth.enabled() : false;
    if (isRefusal(on)) return refused(on);
    return ok(encodeHelloReply({ protocolVersion: PROTOCOL_VERSION, authEnabled: on, user: this.identity.user }));
  }

  /**
   * AUTH (docs/protocol.md "HELLO and AUTH"): key = user and value = password (scrypt check,
   * bounded per client address), or no key and value = a bearer token. OK (payload: the user)
   * makes the connection that user; a failure leaves its identity as it was (Redis's AUTH rule),
   * and the failuresPerConnectionMax-th one is answered, then the connection closes. Frames after
   * an AUTH are handled once it is answered.
   */
  private authenticate(req: Request, startMs: number): void {
    const auth = this.deps.auth;
    if (!auth) {
      this.respond({ status: Status.BadRequest, flags: 0, requestId: req.requestId, revision: 0, payload: Buffer.from('this gateway has no authentication configured') });
      return;
    }
    this.authPending = true;
    const value = req.value.toString('utf8');
    const check = req.key.length > 0 ? auth.checkPassword(req.key.toString('utf8'), value, this.address) : auth.checkToken(value);
    let close = false;
    const answer = check.then((r): KvResult => {
      this.authPending = false;
      if (!isRefusal(r)) {
        this.identity.user = r.user;
        return ok(Buffer.from(r.user, 'utf8'));
      }
      if (r.status === Status.Unauthenticated) close = ++this.authFailures >= auth.settings.failuresPerConnectionMax;
      return refused(r);
    }, (e: Error) => {
      this.authPending = false;
      throw e;
    });
    this.track(req, 'other', startMs, this.hold(req), answer, () => close);
  }

  /** STATUS with auth configured: the cluster status for any user while auth is enabled, for anyone while it is not. */
  private async statusFor(auth: GatewayAuth): Promise<KvResult> {
    const a = await auth.access(this.identity);
    if (isRefusal(a)) return refused(a);
    return ok(Buffer.from(JSON.stringify(this.deps.status())));
  }

  /** The bytes a request holds while in flight: its frame, from decode until answered. */
  private hold(req: Request): RequestHold {
    return new RequestHold(this.flow, this.deps.budget, frameBytes(req));
  }

  /**
   * Counts the request in flight from now until its response is flushed; `hold` (its frame and
   * read reservations) is released when the answer comes. `startMs` (performance.now() at decode)
   * times it for the observer. The answer to a connection that has closed is not encoded.
   * `thenClose`: asked once answered; true closes the connection after this answer (failed AUTHs).
   */
  private track(req: Request, op: RequestOp, startMs: number, hold: RequestHold, p: Promise<KvResult>, thenClose?: () => boolean): void {
    this.inflight++;
    this.awaiting++;
    // One reaction for both outcomes (not catch-then-then: a promise fewer per request).
    p.then((r) => this.answer(req, op, startMs, hold, r, thenClose), (e: Error) => this.answer(req, op, startMs, hold, { status: Status.Error, revision: 0, value: EMPTY, message: `gateway error: ${e.message}` }, thenClose));
  }

  /** The cluster's (or the gateway's) answer `r` to a tracked request: encoded and written, unless the connection has gone. */
  private answer(req: Request, op: RequestOp, startMs: number, hold: RequestHold, r: KvResult, thenClose?: () => boolean): void {
    const requestId = req.requestId;
    this.awaiting--;
    if (op === 'get' && r.status === Status.Ok) this.deps.budget.observeValue(r.value.byteLength);
    if (this.flow.closed() || this.flow.isClosing()) {
      // Nobody to answer: nothing is encoded, the reservation goes back at once.
      hold.release();
      this.deps.observer?.observe(op, r.status, (performance.now() - startMs) / 1000);
      this.flow.answered();
      this.inflight--;
      return;
    }
    if (r.status === Status.Ok && r.value.byteLength > 0 && this.flow.replyRefused(RESPONSE_HEADER_BYTES + r.value.byteLength, hold.held())) r = notReading(r.value.byteLength);
    // A refused INCR says why (Redis's text), so does a SET with LEASE ("lease not found"), a LEASE_GRANT and a TXN (refused by a put's lease); other CONDITION_FAILED answers are empty.
    const saysWhy = req.opcode === Opcode.Incr || req.opcode === Opcode.LeaseGrant || req.opcode === Opcode.Txn || (req.flags & RequestFlags.Lease) !== 0;
    const emptyFailure = r.status === Status.NotFound || (r.status === Status.ConditionFailed && !saysWhy);
    let payload = r.status === Status.Ok ? Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength) : emptyFailure ? EMPTY : Buffer.from(r.message);
    // GET with META: create revision and version before the value (docs/protocol.md "Per-key metadata").
    const meta = op === 'get' && r.status === Status.Ok && (req.flags & RequestFlags.Meta) !== 0;
    if (meta) payload = encodeGetMeta({ createRevision: r.createRevision ?? 0, version: r.version ?? 0 }, payload);
    this.deps.observer?.observe(op, r.status, (performance.now() - startMs) / 1000);
    this.flow.answered();
    if (hopTrace.enabled) hopTrace.mark('tlv.answer');
    this.respond({ status: r.status, flags: meta ? ResponseFlags.Meta : leaseRefusalFlags(r), requestId, revision: r.revision, payload }, this.replyFlushed);
    // Released once the reply's bytes count as written: the value is never held uncounted.
    hold.release();
    if (thenClose?.()) {
      this.backlog = [];
      this.backlogHead = 0;
      this.flow.closeAfterFlush();
      return;
    }
    this.processBacklog();
  }

  /** RANGE: the spec in the value (BAD_REQUEST when malformed), one page as the OK payload (docs/protocol.md "RANGE"). */
  private async range(req: Request): Promise<KvResult> {
    const decoded = decodeValue(req, decodeRangeSpec);
    if ('bad' in decoded) return decoded.bad;
    const spec = decoded.value;
    const r = await this.session.range({
      start: req.key,
      end: spec.end,
      prefix: (spec.options & RangeOptions.Prefix) !== 0,
      keysOnly: (spec.options & RangeOptions.KeysOnly) !== 0,
      countOnly: (spec.options & RangeOptions.CountOnly) !== 0,
      reverse: (spec.options & RangeOptions.Reverse) !== 0,
      limit: spec.limit,
      token: spec.token,
      stale: (req.flags & RequestFlags.Stale) !== 0,
    });
    if (r.status !== Status.Ok) return { status: r.status, revision: 0, value: EMPTY, message: r.message };
    return { status: Status.Ok, revision: r.revision, value: encodeRangePage(r), message: '' };
  }

  /** TXN: the TxnRequest in the value (BAD_REQUEST when malformed), its TxnResult as the OK payload (docs/protocol.md "TXN"). */
  private async txn(req: Request): Promise<KvResult> {
    const decoded = decodeValue(req, decodeTxnRequest);
    if ('bad' in decoded) return decoded.bad;
    const r = await this.session.txn(decoded.value);
    if (r.status !== Status.Ok || !r.txn) return { status: r.status, revision: r.revision, value: EMPTY, message: r.message, ...(r.leaseRefusal !== undefined ? { leaseRefusal: r.leaseRefusal } : {}) };
    return { status: Status.Ok, revision: r.revision, value: encodeTxnResult(r.txn), message: '' };
  }

  /**
   * WATCH (docs/watch.md "TLV door"): OK with the watch's starting revision, then frames with
   * response flag WATCH and this request id until a CANCELED frame. BAD_REQUEST for a malformed
   * spec or an id already open; UNAVAILABLE past watchesPerConnectionMax or gateway.watchersMax.
   */
  private openWatch(req: Request): void {
    const fail = (status: Status, message: string) => {
      this.respond({ status, flags: 0, requestId: req.requestId, revision: 0, payload: Buffer.from(message) });
      this.deps.observer?.observe('other', status, 0);
    };
    const w = this.deps.watches;
    if (!w) return fail(Status.BadRequest, 'this gateway serves no watches');
    let spec: WatchSpec;
    try {
      spec = decodeWatchSpec(req.value);
    } catch (e) {
      return fail(Status.BadRequest, `bad WATCH value: ${(e as Error).message}`);
    }
    if (spec.end.length > this.deps.limits.keyBytesMax) return fail(Status.TooLarge, `watch range end of ${spec.end.length} bytes exceeds keyBytesMax ${this.deps.limits.keyBytesMax}`);
    if (this.watches.has(req.requestId)) return fail(Status.BadRequest, `watch ${req.requestId} is already open on this connection`);
    if (this.watches.size >= w.perConnectionMax) return fail(Status.Unavailable, `${w.perConnectionMax} watches are open on this connection (gateway.watchesPerConnectionMax)`);
    const prefix = (spec.options & WatchOptions.Prefix) !== 0;
    const end = prefix ? prefixEnd(req.key) : spec.end.length > 0 ? spec.end : singleKeyEnd(req.key);
    const id = req.requestId;
    // With auth on, the whole watched range must be readable by the connection's user (checked at open).
    if (this.deps.auth) {
      this.watches.set(id, null); // the id is taken while its permission check runs
      void this.deps.auth
        .guardFor(this.identity)
        .range(req.key, end)
        .then((denied) => {
          this.watches.delete(id);
          if (denied) fail(denied.status, denied.message);
          else if (!this.flow.closed()) this.startWatch(req, w, end, spec);
        });
      return;
    }
    this.startWatch(req, w, end, spec);
  }

  private startWatch(req: Request, w: NonNullable<ConnectionDeps['watches']>, end: Buffer | null, spec: WatchSpec): void {
    const id = req.requestId;
    const fail = (status: Status, message: string) => this.respond({ status, flags: 0, requestId: id, revision: 0, payload: Buffer.from(message) });
    // Where this watch's frames stand in the connection's batch: it joins a SHARED_EVENTS frame only ahead of its own later frames.
    const slot: WatchBatchSlot = { generation: -1, lastEntry: -1 };
    const shared = (spec.options & WatchOptions.SharedFrames) !== 0;
    const frame = (revision: number, payload: Buffer, flushed?: () => void) => this.watchFrames.add(id, revision, payload, flushed, slot);
    try {
      const { watcher, revision } = w.hub.open(
        { start: req.key, end, startRevision: spec.startRevision, prevValue: (spec.options & WatchOptions.PrevValue) !== 0 },
        {
          events: shared
            ? (events, revision, flushed) => this.watchFrames.addShared(id, revision, events, encodedWatchEventsFrame(events), slot, flushed)
            : (events, revision, flushed) => frame(revision, encodedWatchEventsFrame(events), flushed),
          // Frames batched this turn are not in the flow's counts yet: added here, as the bytes the
          // connection would write (a watch joining a SHARED_EVENTS frame adds its 4-byte id).
          refused: (bytes, events) => this.flow.replyRefused(this.watchFrames.pendingBytes() + this.watchFrames.bytesToAdd(shared && events ? events : null, bytes, slot)),
          progress: (revision) => frame(revision, encodeWatchProgressFrame()),
          canceled: (reason, oldest, message) => {
            this.watches.delete(id);
            frame(0, encodeWatchCanceledFrame(reason, oldest, message));
          },
        },
      );
      this.watches.set(id, watcher);
      this.respond({ status: Status.Ok, flags: 0, requestId: id, revision, payload: EMPTY });
      this.deps.observer?.observe('other', Status.Ok, 0);
    } catch (e) {
      if (e instanceof WatchersFullError) {
        fail(Status.Unavailable, e.message);
        return;
      }
      throw e;
    }
  }

  /** WATCH_CANCEL: OK (the watch's CANCELED frame follows), or NOT_FOUND. */
  private cancelWatch(req: Request): void {
    let id: number;
    try {
      id = decodeWatchCancel(req.value);
    } catch (e) {
      this.respond({ status: Status.BadRequest, flags: 0, requestId: req.requestId, revision: 0, payload: Buffer.from(`bad WATCH_CANCEL value: ${(e as Error).message}`) });
      return;
    }
    const watcher = this.watches.get(id);
    if (!watcher || !this.deps.watches) {
      this.respond({ status: Status.NotFound, flags: 0, requestId: req.requestId, revision: 0, payload: EMPTY });
      return;
    }
    this.respond({ status: Status.Ok, flags: 0, requestId: req.requestId, revision: 0, payload: EMPTY });
    this.deps.watches.hub.cancel(watcher, WatchCancelReason.Client, 0, 'cancelled by the client');
  }

  /** INCR: delta and optional client session in the value (BAD_REQUEST when malformed); OK payload = the new value as i64 (docs/protocol.md "INCR"). */
  private async incr(req: Request): Promise<KvResult> {
    const decoded = decodeValue(req, decodeIncrRequest);
    if ('bad' in decoded) return decoded.bad;
    const incr = decoded.value;
    const r = await this.session.incr(req.key, incr.delta, incr.session);
    if (r.status === Status.Ok && r.counter !== undefined) return { ...r, value: encodeIncrReply(r.counter) };
    return r;
  }

  /** The gateway's wall clock, ms since the Unix epoch: a SET's TTL becomes an absolute expiry (as RESP SET EX does). */
  private now(): number {
    return (this.deps.clock ?? realClock).nowMs();
  }

  private respond(res: Response, onFlushed?: () => void): void {
    this.watchFrames.flush(); // watch frames of this turn go first: replies keep their order
    this.flow.write(encodeResponse(res), onFlushed);
  }

}

/** BAD_REQUEST for a request whose value does not decode: `bad <OPCODE> value: <why>`. */
function badValue(req: Request, e: unknown): KvResult {
  return { status: Status.BadRequest, revision: 0, value: EMPTY, message: `bad ${opcodeName(req.opcode)} value: ${(e as Error).message}` };
}

/** `decode(req.value)`, or its BAD_REQUEST reply (`badValue`) when the value is malformed (the decoder throws). */
function decodeValue<T>(req: Request, decode: (value: Buffer) => T): { value: T } | { bad: KvResult } {
  try {
    return { value: decode(req.value) };
  } catch (e) {
    return { bad: badValue(req, e) };
  }
}

/** IF_REVISION (the decoder checked its shape): the `u64 revision` operand and the value after it; else the value as sent. */
function casOf(req: Request): { ifRevision?: number; value: Buffer } {
  if (!(req.flags & RequestFlags.IfRevision)) return { value: req.value };
  const hi = req.value.readUInt32BE(0);
  // Above 2^53 no write has such a revision; KvSession refuses it (BAD_REQUEST).
  return { ifRevision: hi * 2 ** 32 + req.value.readUInt32BE(4), value: req.value.subarray(IF_REVISION_OPERAND_BYTES) };
}

/** LEASE (the decoder checked its length): the key's lease and absolute expiry from the operand, and the value after it; else the value as it is. */
function leaseOf(flags: number, value: Buffer, nowMs: number): { meta?: CommandMeta; value: Buffer } {
  if (!(flags & RequestFlags.Lease)) return { value };
  const { operand, value: rest } = decodeLeaseOperand(value);
  return { meta: { leaseId: operand.leaseId, expiresAtMs: operand.ttlMs ? nowMs + operand.ttlMs : 0, keepTtl: false }, value: Buffer.from(rest.buffer, rest.byteOffset, rest.byteLength) };
}

/**
 * The lease opcodes 0x40..0x44 (docs/protocol.md "Leases"): the value decoded (BAD_REQUEST when
 * malformed), the session's lease call, its OK payload encoded.
 */
async function leaseRequest(session: KvSession, req: Request): Promise<KvResult> {
  let r: KvResult;
  try {
    switch (req.opcode) {
      case Opcode.LeaseGrant: {
        const g = decodeLeaseGrantRequest(req.value);
        r = await session.leaseGrant(g.ttlMs, g.leaseId);
        return r.status === Status.Ok ? { ...r, value: encodeLeaseGrantReply({ leaseId: r.lease!.leaseId!, ttlMs: r.lease!.ttlMs! }) } : r;
      }
      case Opcode.LeaseRevoke:
        return await session.leaseRevoke(decodeLeaseU64(req.value, 'LEASE_REVOKE value (u64 leaseId)'));
      case Opcode.LeaseKeepAlive:
        r = await session.leaseKeepAlive(decodeLeaseU64(req.value, 'LEASE_KEEPALIVE value (u64 leaseId)'));
        return r.status === Status.Ok ? { ...r, value: encodeLeaseU64(r.lease!.ttlMs!) } : r;
      case Opcode.LeaseTtl: {
        const q = decodeLeaseTtlRequest(req.value);
        r = await session.leaseTimeToLive(q.leaseId, q.keys);
        const l = r.lease;
        return r.status === Status.Ok && l ? { ...r, value: encodeLeaseTtlReply({ ttlMs: l.ttlMs!, remainingMs: l.remainingMs!, keys: l.keys ?? [], more: l.more ?? false }) } : r;
      }
      default: {
        const q = decodeLeaseListRequest(req.value);
        r = await session.leaseList(q.afterId, q.limit);
        return r.status === Status.Ok && r.lease ? { ...r, value: encodeLeaseListReply({ ids: r.lease.ids ?? [], more: r.lease.more ?? false }) } : r;
      }
    }
  } catch (e) {
    if (e instanceof ProtocolError) return badValue(req, e);
    throw e;
  }
}

/** The write condition of a SET's request flags (the decoder already refused both bits at once). */
function conditionOf(flags: number): CommandCondition {
  if (flags & RequestFlags.IfAbsent) return CommandCondition.IfAbsent;
  if (flags & RequestFlags.IfPresent) return CommandCondition.IfPresent;
  return CommandCondition.None;
}

/** EVENTS frames by event array: the hub hands watchers on one range the same array (WatchHub.onMessage), so each is encoded once. */
const encodedFrames = new WeakMap<readonly WatchEvent[], Buffer>();

/** `encodeWatchEventsFrame(events)`, once per array (the array and its events must not change after). */
export function encodedWatchEventsFrame(events: readonly WatchEvent[]): Buffer {
  let payload = encodedFrames.get(events);
  if (!payload) {
    payload = encodeWatchEventsFrame(events);
    encodedFrames.set(events, payload);
  }
  return payload;
}

/** Response flags of a SET refused by its lease (docs/protocol.md "Response flags"): LEASE_NOT_FOUND / LEASE_KEYS_FULL; 0 otherwise, a false condition included. */
function leaseRefusalFlags(r: KvResult): number {
  if (r.status !== Status.ConditionFailed || r.leaseRefusal === undefined) return 0;
  return r.leaseRefusal === LeaseRefusal.KeysFull ? ResponseFlags.LeaseKeysFull : ResponseFlags.LeaseNotFound;
}
