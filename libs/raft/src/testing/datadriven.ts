import { RaftNode } from '../raft-node';
import { EntryType, MessageType, decodeConfState, type ConfChange, type ConfState, type Entry, type Message, type NodeId, type RaftConfig, type Ready } from '../types';
import { DurableStore } from './durable-store';

/**
 * Data-driven Raft tests in the style of etcd's raft/testdata (cockroachdb/datadriven): a script
 * of directives, each followed by `----` and the output it must print, ended by a blank line.
 * `runScript(text)` runs every directive and returns the script with the actual outputs in place,
 * so a test compares it with the file and a rewrite flag writes it back.
 *
 * ```
 * # a comment
 * add-nodes 3 pre-vote=true
 * ----
 * ok
 * ```
 *
 * Directives (node ids are 1..n; `ids...` = all nodes when omitted):
 * - `add-nodes N [voters=(1,2,3)] [learners=(4)] [pre-vote=true] [check-quorum=true]
 *   [election-ticks=10] [heartbeat-ticks=2] [entries-per-msg-max=64] [inflight-msgs-max=64]`:
 *   N fresh nodes (voters default: all of them). Election timeouts are not random: exactly
 *   `election-ticks`.
 * - `campaign id`, `tick id [n=1]` (`tick-election id`: election-ticks ticks),
 *   `propose id data`, `propose-conf-change id type node` (ConfChange type, e.g. addVoter),
 *   `transfer-leadership id to`, `read-index id ctx`, `compact id index`: the RaftNode call;
 *   prints `ok` or the error thrown.
 * - `process-ready ids...`: each node's Ready (hard/soft state, entries, committed entries,
 *   messages, read states), persisted to its store, messages queued, then `advance`. A node
 *   added with `async-storage-writes=true` (RaftConfig.asyncStorageWrites) only starts the write:
 *   its `messages` are queued, its `messagesAfterPersist` held with the write until `persist`.
 * - `persist ids...` (async nodes): completes every write started so far, oldest first: each
 *   goes to the store, the node hears `persisted(index, term)`, its held messages are queued.
 * - `deliver-msgs ids... [drop=(2,3)]`: steps the queued messages addressed to `ids`, printing
 *   each; messages to the `drop` ids are dropped (a partition or a loss).
 * - `stabilize ids...`: process-ready, persist and deliver-msgs until nothing is left.
 * - `status id`, `raft-log id`: the node's role/term/commit/progress and its log.
 */
export function runScript(text: string): string {
  const env = new ScriptEnv();
  const { directives, tail } = parseScript(text);
  const out: string[] = [];
  for (const d of directives) {
    out.push(...d.before, d.line, '----');
    let result: string;
    try {
      result = env.run(d.line).trimEnd();
    } catch (e) {
      result = `error: ${(e as Error).message}`;
    }
    out.push(result === '' ? 'ok' : result, '');
  }
  out.push(...tail);
  return out.join('\n').replace(/\n+$/, '\n');
}

interface Directive {
  /** Comment and blank lines before it. */
  before: string[];
  line: string;
}

/**
 * Splits a script into directives; the expected output of each (after `----`, up to a blank
 * line, which ends it) is skipped. `tail`: comments after the last directive.
 * @throws Error `ScriptInvalid` on a directive not followed by `----`.
 */
function parseScript(text: string): { directives: Directive[]; tail: string[] } {
  const lines = text.split('\n');
  const directives: Directive[] = [];
  let before: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.trim() === '' || l.startsWith('#')) {
      before.push(l);
      continue;
    }
    directives.push({ before, line: l.trim() });
    before = [];
    if (lines[i + 1] !== '----') throw new Error(`ScriptInvalid: line ${i + 2}: expected ---- after "${l}"`);
    i++;
    while (i + 1 < lines.length && lines[i + 1].trim() !== '') i++;
    if (i + 1 < lines.length) i++; // the blank line that ends the output
  }
  return { directives, tail: before };
}

type Args = { pos: string[]; kv: Map<string, string> };

function parseArgs(words: string[]): Args {
  const pos: string[] = [];
  const kv = new Map<string, string>();
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq > 0) kv.set(w.slice(0, eq), w.slice(eq + 1));
    else pos.push(w);
  }
  return { pos, kv };
}

function idList(v: string | undefined): NodeId[] {
  return v ? v.replace(/[()]/g, '').split(',').filter(Boolean) : [];
}

/** The nodes, their stores and the network of one script. */
class ScriptEnv {
  private readonly nodes = new Map<NodeId, RaftNode>();
  private readonly stores = new Map<NodeId, DurableStore>();
  private queue: Message[] = [];
  /** Writes started by async nodes (`process-ready`) and not yet completed (`persist`), oldest first. */
  private readonly writes = new Map<NodeId, Ready[]>();
  private readonly asyncNodes = new Set<NodeId>();

  run(line: string): string {
    if (line === '') return '';
    const [cmd, ...rest] = line.split(/\s+/);
    const a = parseArgs(rest);
    const one = () => this.node(a.pos[0]);
    switch (cmd) {
      case 'add-nodes':
        return this.addNodes(a);
      case 'campaign':
        return one().campaign(), '';
      case 'tick':
        return this.tick(a.pos[0], Number(a.kv.get('n') ?? 1));
      case 'tick-election':
        return this.tick(a.pos[0], this.electionTicks);
      case 'propose':
        return one().propose([new TextEncoder().encode(a.pos[1] ?? '')]), '';
      case 'propose-conf-change':
        return one().proposeConfChange({ type: a.pos[1] as ConfChange['type'], node: a.pos[2] }), '';
      case 'transfer-leadership':
        return one().transferLeadership(a.pos[1]), '';
      case 'read-index':
        return one().readIndex(Number(a.pos[1])), '';
      case 'compact':
        return one().compact(Number(a.pos[1])), this.stores.get(a.pos[0])!.compact(one().snapshot()), '';
      default:
        return this.runCluster(cmd, a);
    }
  }

  private runCluster(cmd: string, a: Args): string {
    const ids = a.pos.length ? a.pos : [...this.nodes.keys()];
    switch (cmd) {
      case 'process-ready':
        return ids.map((id) => this.processReady(id)).filter(Boolean).join('\n');
      case 'persist':
        return ids.map((id) => this.persist(id)).filter(Boolean).join('\n');
      case 'deliver-msgs':
        return this.deliver(ids, idList(a.kv.get('drop')));
      case 'stabilize':
        return this.stabilize(ids);
      case 'status':
        return formatStatus(this.node(ids[0]));
      case 'raft-log':
        return this.raftLog(ids[0]);
      default:
        throw new Error(`unknown directive ${cmd}`);
    }
  }

  private electionTicks = 10;

  private addNodes(a: Args): string {
    const n = Number(a.pos[0]);
    const ids = Array.from({ length: n }, (_, i) => String(this.nodes.size + i + 1));
    const voters = a.kv.has('voters') ? idList(a.kv.get('voters')) : ids;
    const num = (k: string, d: number) => Number(a.kv.get(k) ?? d);
    this.electionTicks = num('election-ticks', this.electionTicks);
    const cfg: Omit<RaftConfig, 'id'> = {
      voters,
      learners: idList(a.kv.get('learners')),
      electionTicks: this.electionTicks,
      heartbeatTicks: num('heartbeat-ticks', 2),
      inflightMsgsMax: num('inflight-msgs-max', 64),
      entriesPerMsgMax: num('entries-per-msg-max', 64),
      msgBytesMax: 1 << 20,
      // Election timeouts of exactly electionTicks: the script decides who campaigns.
      random: () => 0,
      preVote: a.kv.get('pre-vote') === 'true',
      checkQuorum: a.kv.get('check-quorum') === 'true',
      asyncStorageWrites: a.kv.get('async-storage-writes') === 'true',
    };
    for (const id of ids) {
      this.nodes.set(id, new RaftNode({ ...cfg, id }));
      this.stores.set(id, new DurableStore());
      if (cfg.asyncStorageWrites) this.asyncNodes.add(id);
    }
    return '';
  }

  private node(id: NodeId | undefined): RaftNode {
    const n = id === undefined ? undefined : this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  private tick(id: NodeId, n: number): string {
    for (let i = 0; i < n; i++) this.node(id).tick();
    return '';
  }

  private processReady(id: NodeId): string {
    const n = this.node(id);
    if (!n.hasReady()) return '';
    const rd = n.ready();
    if (this.asyncNodes.has(id)) this.writes.set(id, [...(this.writes.get(id) ?? []), rd]);
    else this.stores.get(id)!.persist(rd);
    this.queue.push(...rd.messages);
    n.advance(rd);
    return `> ${id} handling Ready\n${indent(formatReady(rd))}`;
  }

  /** Completes an async node's started writes, oldest first (what its disk does after an fsync). */
  private persist(id: NodeId): string {
    const n = this.node(id);
    const writes = this.writes.get(id) ?? [];
    this.writes.delete(id);
    const out: string[] = [];
    for (const rd of writes) {
      this.stores.get(id)!.persist(rd);
      const last = rd.entries[rd.entries.length - 1];
      if (last) n.persisted(last.index, last.term);
      this.queue.push(...rd.messagesAfterPersist);
      out.push(`> ${id} persisted${last ? ` through ${last.term}/${last.index}` : ''}`, ...rd.messagesAfterPersist.map((m) => `  ${formatMessage(m)}`));
    }
    return out.join('\n');
  }

  private deliver(ids: NodeId[], drop: NodeId[]): string {
    const out: string[] = [];
    const keep: Message[] = [];
    let last: NodeId | null = null;
    for (const m of this.queue) {
      if (drop.includes(m.to)) {
        out.push(`dropped: ${formatMessage(m)}`);
        last = null;
      } else if (ids.includes(m.to)) {
        if (m.to !== last) out.push(`> ${m.to} receiving messages`);
        last = m.to;
        out.push(...this.stepOne(m));
      } else keep.push(m);
    }
    this.queue = keep;
    return out.join('\n');
  }

  private stepOne(m: Message): string[] {
    try {
      this.node(m.to).step(m);
      return [`  ${formatMessage(m)}`];
    } catch (e) {
      return [`  ${formatMessage(m)}`, `  error: ${(e as Error).message}`];
    }
  }

  private stabilize(ids: NodeId[]): string {
    const out: string[] = [];
    for (let round = 0; round < 100; round++) {
      const ready = ids.map((id) => this.processReady(id)).filter(Boolean);
      ready.push(...ids.map((id) => this.persist(id)).filter(Boolean));
      const pending = this.queue.some((m) => ids.includes(m.to));
      if (ready.length === 0 && !pending) return out.join('\n');
      out.push(...ready);
      if (pending) out.push(this.deliver(ids, []));
    }
    throw new Error('stabilize: still busy after 100 rounds');
  }

  private raftLog(id: NodeId): string {
    const n = this.node(id);
    const st = n.status();
    const ents = st.lastIndex >= st.firstIndex ? n.entries() : [];
    const snap = st.firstIndex > 1 ? [`snapshot ${n.snapshot().term}/${n.snapshot().index} ${formatConf(n.snapshot().conf)}`] : [];
    return [...snap, ...ents.map(formatEntry)].join('\n') || 'log is empty';
  }
}

function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

function formatReady(rd: Ready): string {
  const out: string[] = [];
  if (rd.softState) out.push(`State:${rd.softState.role} Lead:${rd.softState.leaderId ?? '-'} Term:${rd.softState.term}`);
  if (rd.hardState) out.push(`HardState Term:${rd.hardState.term} Vote:${rd.hardState.vote ?? '-'} Commit:${rd.hardState.commit}`);
  if (rd.snapshot) out.push(`Snapshot ${rd.snapshot.term}/${rd.snapshot.index} ${formatConf(rd.snapshot.conf)}`);
  const list = (title: string, xs: string[]) => xs.length && out.push(`${title}:`, ...xs.map((x) => `  ${x}`));
  list('Entries', rd.entries.map(formatEntry));
  list('CommittedEntries', rd.committedEntries.map(formatEntry));
  list('Messages', rd.messages.map(formatMessage));
  list('MessagesAfterPersist', rd.messagesAfterPersist.map(formatMessage));
  list('ReadStates', rd.readStates.map((r) => `Index:${r.index} Ctx:${String(r.ctx)}`));
  list('ReadStatesFailed', rd.readStatesFailed.map((r) => `Ctx:${String(r.ctx)}`));
  return out.join('\n');
}

function formatConf(c: ConfState): string {
  const l = (name: string, xs: NodeId[]) => (xs.length ? ` ${name}=(${xs.join(',')})` : '');
  return `Conf:${l('voters', c.voters)}${l('learners', c.learners)}${l('storage', c.storage)}`;
}

function formatEntry(e: Entry): string {
  const head = `${e.term}/${e.index} ${EntryType[e.type]}`;
  if (e.type === EntryType.Config) return `${head} ${formatConf(decodeConfState(e.data))}`;
  return e.data.length ? `${head} ${JSON.stringify(new TextDecoder().decode(e.data))}` : head;
}

/** `from->to Type Term:t` plus the fields the type uses (unused ones are zero, see Message). */
export function formatMessage(m: Message): string {
  const parts = [`${m.from}->${m.to} ${MessageType[m.type]} Term:${m.term}`];
  const t = m.type;
  const T = MessageType;
  if (t === T.Vote || t === T.PreVote || t === T.Append || t === T.Snapshot) parts.push(`Log:${m.logTerm}/${m.index}`);
  if (t === T.AppendResponse) parts.push(`Index:${m.index}`);
  if (t === T.Append || t === T.Heartbeat || t === T.Snapshot) parts.push(`Commit:${m.commit}`);
  if (m.reject) parts.push(t === T.AppendResponse ? `Rejected (Hint: ${m.rejectHint}, LogTerm: ${m.logTerm})` : 'Rejected');
  if (m.context) parts.push(`Context:${m.context}`);
  if (m.entries.length) parts.push(`Entries:[${m.entries.map(formatEntry).join(', ')}]`);
  return parts.join(' ');
}

function formatStatus(n: RaftNode): string {
  const st = n.status();
  const out = [`${st.id} ${st.role} Term:${st.term} Lead:${st.leaderId ?? '-'} Vote:${st.vote ?? '-'} Commit:${st.commit} Applied:${st.applied} Last:${st.lastTerm}/${st.lastIndex} ${formatConf(st.conf)}`];
  if (st.preCandidate) out.push('pre-candidate');
  if (st.leadTransferee) out.push(`transferring to ${st.leadTransferee}`);
  if (st.readIndexPending) out.push(`reads pending: ${st.readIndexPending}`);
  for (const [id, p] of Object.entries(st.progress ?? {})) out.push(`  ${id}: ${p.state} match=${p.match} next=${p.next} inflight=${p.inflight}`);
  return out.join('\n');
}
