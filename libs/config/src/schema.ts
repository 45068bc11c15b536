import 'reflect-metadata';
import { Type } from 'class-transformer';
import { ArrayMinSize, IsBoolean, IsDefined, IsIn, IsNumber, IsOptional, IsString, Matches, Max, Min, ValidateNested } from 'class-validator';
import { IntIn, Members, Port, Section, Text, TextWhen } from './settings';

/** Process ids appear in NATS subjects and directory names: keep them to a safe alphabet. */
const ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const ID_MESSAGE = 'must match /^[a-z0-9][a-z0-9_-]{0,31}$/ (lower-case letters, digits, _ and -)';

/** When the log (consensus) and the data files (storage) fdatasync: each write, a group commit, or on a timer. */
const FSYNC_POLICIES = ['always', 'group', 'interval'] as const;
type FsyncPolicy = (typeof FSYNC_POLICIES)[number];

/** One role's bus credential (docs/security.md "The internal bus"): an NKey seed file. */
export class NatsCredentialConfig {
  /**
   * File holding the role's NKey user seed (`SU…`, 58 characters; `nats.js` `nkeys.createUser()`,
   * `nk -gen user`); relative to the config file's directory. Read at start-up; a process reads
   * only its own role's file (and a gateway also `admin`'s), so a pod mounts only its own Secret.
   */
  @Text()
  seedFile!: string;
}

/**
 * Per-role bus credentials. With any of them set the bus is authenticated: each process connects
 * as its role (`consensus`, `storage`, `gateway`); a gateway uses `admin` for membership changes
 * and snapshot pulls (a second connection), which the `gateway` role may not publish.
 */
export class NatsCredentialsConfig {
  @Section(() => NatsCredentialConfig, 'optional')
  consensus?: NatsCredentialConfig;
  @Section(() => NatsCredentialConfig, 'optional')
  storage?: NatsCredentialConfig;
  @Section(() => NatsCredentialConfig, 'optional')
  gateway?: NatsCredentialConfig;
  @Section(() => NatsCredentialConfig, 'optional')
  admin?: NatsCredentialConfig;
}

/** TLS to NATS (nats.js `tls`): every process verifies the server against `caFile`; `certFile`/`keyFile` present a client certificate. Paths relative to the config file's directory. */
export class NatsTlsConfig {
  /** PEM CA certificates the server's certificate must chain to (absent: the system's CAs). */
  @Text('optional')
  caFile?: string;

  /** PEM client certificate, for a server that verifies clients (`verify: true`); requires `keyFile`. */
  @TextWhen((o: NatsTlsConfig) => o.keyFile !== undefined || o.certFile !== undefined)
  certFile?: string;

  /** PEM private key of `certFile`; requires `certFile`. */
  @TextWhen((o: NatsTlsConfig) => o.keyFile !== undefined || o.certFile !== undefined)
  keyFile?: string;
}

export class NatsConfig {
  /** NATS server URLs, e.g. `nats://127.0.0.1:4222`. */
  @IsDefined()
  @IsString({ each: true })
  @ArrayMinSize(1)
  servers!: string[];

  /** Per-role NKey credentials; absent: the bus is not authenticated (docs/security.md). */
  @Section(() => NatsCredentialsConfig, 'optional')
  credentials?: NatsCredentialsConfig;

  /** TLS to NATS; absent: plain TCP (the server may still require TLS, then the connection fails). */
  @Section(() => NatsTlsConfig, 'optional')
  tls?: NatsTlsConfig;
}

export class MemberConfig {
  @IsDefined()
  @Matches(ID_PATTERN, { message: `id ${ID_MESSAGE}` })
  id!: string;
}

/** A consensus replica or storage node of the config. */
export class ProcessMemberConfig extends MemberConfig {
  /**
   * TCP port of this process's `/metrics`, `/healthz` and `/readyz` listener (docs/metrics.md),
   * overriding the role's `metricsPort` (several processes on one host need their own).
   */
  @Port('optional')
  metricsPort?: number;
}

/**
 * TLS of one client door (docs/security.md). `mode` is required: `"tls"` serves TLS only (node:tls,
 * certificate and key from PEM files, re-read when they change on disk), `"plain"` serves plain TCP
 * and must be chosen explicitly on any address other than loopback.
 */
export class ListenerTlsConfig {
  @IsIn(['tls', 'plain'])
  mode!: 'tls' | 'plain';

  /** PEM certificate chain (leaf first) presented to clients; relative to the working directory. Required with mode "tls". */
  @TextWhen((o: ListenerTlsConfig) => o.mode === 'tls' || o.certFile !== undefined)
  certFile?: string;

  /** PEM private key of `certFile`. Required with mode "tls". */
  @TextWhen((o: ListenerTlsConfig) => o.mode === 'tls' || o.keyFile !== undefined)
  keyFile?: string;

  /** PEM CA certificates client certificates must chain to; required with `clientCertRequired`. */
  @TextWhen((o: ListenerTlsConfig) => o.clientCertRequired === true || o.caFile !== undefined)
  caFile?: string;

  /** mTLS: a client without a certificate signed by `caFile` fails the handshake. */
  @IsBoolean()
  clientCertRequired: boolean = false;

  /** Lowest protocol version accepted. */
  @IsIn(['TLSv1.2', 'TLSv1.3'])
  minVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.2';

  /** How often the certificate, key and CA files are checked for changes (stat), ms; a change is served to new connections. */
  @IntIn(100, 3_600_000)
  reloadIntervalMs: number = 1000;
}

export class GatewayMemberConfig extends MemberConfig {
  @Text()
  host: string = '127.0.0.1';

  /** TCP port of the client protocol listener. */
  @Port()
  port!: number;

  /** TCP port of the HTTP API and `/metrics` (docs/http.md); no HTTP listener when absent. */
  @Port('optional')
  httpPort?: number;

  /** TCP port of the RESP2 (Redis protocol) listener (docs/resp.md); no RESP listener when absent. */
  @Port('optional')
  respPort?: number;

  /**
   * TLS of every door of this gateway (docs/security.md); `respTls` / `httpTls` replace it for
   * that door. A door with none serves plain TCP, which the gateway allows only on a loopback host.
   */
  @Section(() => ListenerTlsConfig, 'optional')
  tls?: ListenerTlsConfig;

  /** TLS of the RESP door, instead of `tls`. */
  @Section(() => ListenerTlsConfig, 'optional')
  respTls?: ListenerTlsConfig;

  /** TLS of the HTTP door, instead of `tls`. */
  @Section(() => ListenerTlsConfig, 'optional')
  httpTls?: ListenerTlsConfig;
}

export class ConsensusConfig {
  /**
   * The initial voting replicas (the bootstrap configuration). 3 or 5 for fault tolerance; 1 for
   * development. Membership changes at run time (`cairn member add|remove`, Raft thesis §4) are
   * kept in the Raft log and override this list; replicas added later start with `--join`.
   */
  @Members(() => ProcessMemberConfig, 'consensus.replicas', 7)
  replicas!: ProcessMemberConfig[];

  /**
   * TCP port of every replica's `/metrics`, `/healthz` and `/readyz` listener on 0.0.0.0
   * (docs/metrics.md); a replica's own `metricsPort` overrides it. No listener when both are absent.
   */
  @Port('optional')
  metricsPort?: number;

  /** Logical clock tick of the Raft state machine, ms. Timeouts below are rounded to ticks. */
  @IntIn(1, 1000)
  tickMs: number = 10;

  /** Minimum election timeout, ms; each timeout is drawn uniformly from [min, 2·min) (Raft §5.2). */
  @IntIn(10, 60_000)
  electionTimeoutMinMs: number = 150;

  /** Leader heartbeat interval, ms; must be well below electionTimeoutMinMs. */
  @IntIn(1, 10_000)
  heartbeatIntervalMs: number = 50;

  /** Pipelining window: Append messages in flight per follower. */
  @IntIn(1, 4096)
  inflightMsgsMax: number = 64;

  /** Entries per Append message. */
  @IntIn(1, 65_536)
  entriesPerMsgMax: number = 1024;

  /** Entry data bytes per Append message (one entry always fits). */
  @IntIn(1024, 64 * 1024 * 1024)
  msgBytesMax: number = 1024 * 1024;

  /** Proposals (client batches) awaiting commit on the leader before it answers UNAVAILABLE. */
  @IntIn(1, 1_000_000)
  proposalsPendingMax: number = 4096;

  /** Raft messages queued for the state machine while a Ready is being persisted. */
  @IntIn(16, 1_000_000)
  inboxMessagesMax: number = 65_536;

  @IsIn(FSYNC_POLICIES)
  fsyncPolicy: FsyncPolicy = 'group';

  /**
   * A leader sends its Append and Heartbeat messages before its own fsync of the same entries,
   * so the two fsyncs of a write (leader, follower) overlap instead of adding up (Raft thesis
   * §10.2.1; etcd's raft does the same). Safe because the leader counts its own entries toward
   * commit only once they are durable (RaftNode.advance). Off: every message waits for the fsync.
   */
  @IsBoolean()
  leaderAppendsInParallel: boolean = true;

  /**
   * Async storage writes (Raft thesis §10.2.1; etcd raft's AsyncStorageWrites): the Ready loop
   * starts a Ready's log write and goes on stepping inputs (a follower's acknowledgement, new
   * proposals) while it runs, instead of waiting for the fsync. A follower still acknowledges
   * only after its fsync, the leader counts its own entries toward commit only after its own,
   * and a Ready that changes the term or vote, installs a snapshot or truncates the log waits for
   * every earlier write first. Off: each Ready waits for its write (then `leaderAppendsInParallel`
   * decides whether Appends leave before it). Default off: on a quiet 2-core box it was slower at 16
   * and 128 clients and no faster at one (docs/benchmarks.md "Async storage writes").
   */
  @IsBoolean()
  asyncStorageWrites: boolean = false;

  /** Ready writes in flight at once with asyncStorageWrites; at the bound the loop waits for the oldest before taking another Ready, count. */
  @IntIn(1, 65_536)
  writesInflightMax: number = 64;

  /** Entry bytes in flight at once with asyncStorageWrites; at the bound the loop waits for the oldest write, bytes. */
  @IntIn(64 * 1024, 1024 * 1024 * 1024)
  writesInflightBytesMax: number = 16 * 1024 * 1024;

  /** Pre-vote (Raft thesis §9.6): a partitioned or restarted replica cannot disrupt a healthy leader. */
  @IsBoolean()
  preVote: boolean = true;

  /** Check-quorum (thesis §6.2): a leader that has not heard from a quorum for an election timeout steps down. */
  @IsBoolean()
  checkQuorum: boolean = true;

  /**
   * Lease-based linearizable reads (Raft thesis §6.4.1), ms; 0 = off (default: every read waits
   * for a heartbeat round a quorum acknowledges). On: a leader answers a ReadIndex at once for this
   * long after the start of a heartbeat round a quorum acknowledged, saving a round trip to the
   * followers. Safe only while the replicas' clocks advance at rates that differ by less than
   * (electionTimeoutMinMs − readLeaseMs) / electionTimeoutMinMs (NTP slews rates by at most
   * 0.05 %); must be below electionTimeoutMinMs (a multiple of tickMs is used, rounded down) and
   * needs checkQuorum. With it on a replica refuses votes for its first election timeout after start.
   */
  @IntIn(0, 60_000)
  readLeaseMs: number = 0;

  /** Linearizable reads awaiting their ReadIndex round on the leader (thesis §6.4). */
  @IntIn(1, 1_000_000)
  readIndexPendingMax: number = 4096;

  /** On graceful shutdown a leader hands leadership to the most up-to-date follower (thesis §3.10) within this, ms. */
  @IntIn(0, 60_000)
  transferLeadershipTimeoutMs: number = 2000;

  /**
   * `cairn member add` of a replica: how long the leader waits for the new learner to catch up
   * with the log before promoting it to voter (thesis §4.2.1), ms. On timeout it stays a learner
   * and the add answers UNAVAILABLE (run it again to retry the promotion).
   */
  @IntIn(100, 3_600_000)
  memberCatchUpTimeoutMs: number = 60_000;

  /**
   * Log compaction (Raft §7): entries kept below the point every storage node of the
   * configuration has durably applied, so a storage node that lags briefly backfills from the log
   * instead of needing a snapshot.
   */
  @IntIn(0, 1_000_000_000)
  logRetainedEntries: number = 100_000;

  /**
   * Hard bound on the entries a replica keeps. Beyond it the replica compacts down to
   * `logRetainedEntries` below its applied index even if a storage node has not applied that far
   * (a dead one must not grow the log forever); such a node then needs a storage snapshot.
   */
  @IntIn(1000, 1_000_000_000)
  logEntriesMax: number = 2_000_000;

  /**
   * The bounded log cache (docs/raft.md "The log cache"): bytes of Raft log entries a replica
   * keeps in memory (data + 128 per entry). Older entries, persisted and applied, are read back
   * from the log's segment files when needed (an Append to a lagging follower, a backfill fetch).
   */
  @IntIn(64 * 1024, 64 * 1024 * 1024 * 1024)
  logCacheBytesMax: number = 4 * 1024 * 1024;

  /**
   * Growth of a replica's Buffer memory plus JS heap in use since its last garbage collection above
   * which it forces one, bytes; 0 turns it off. Also, once per burst of writes, when the replica
   * has persisted at most 1 MiB of entries per check for 5 checks, it collects, and compacts the
   * heap when more than a quarter of this is committed but free (V8 keeps the heap a burst grew
   * to; docs/benchmarks.md "Memory after 1,000,000 writes").
   */
  @IntIn(0, 64 * 1024 * 1024 * 1024)
  bufferGarbageBytesMax: number = 64 * 1024 * 1024;

  /** How often a replica compares its Buffer memory plus JS heap with bufferGarbageBytesMax, ms. */
  @IntIn(10, 60_000)
  bufferCheckIntervalMs: number = 200;

  /** How often a replica considers compacting its log, ms. */
  @IntIn(10, 3_600_000)
  compactionIntervalMs: number = 1000;

  /** Raft log segment size bound, bytes. */
  @IntIn(64 * 1024, 4 * 1024 * 1024 * 1024)
  segmentBytesMax: number = 64 * 1024 * 1024;

  /** Live leases the leader tracks at most (docs/leases.md "Leader lease table"). */
  @IntIn(1, 10_000_000)
  leasesMax: number = 100_000;

  /** Key expiries each replica tracks at most; a key beyond is still hidden from reads once expired, but not deleted by the leader (docs/leases.md). */
  @IntIn(1, 100_000_000)
  ttlKeysMax: number = 1_000_000;

  /** How often the leader looks for expired leases and keys, ms. */
  @IntIn(10, 60_000)
  expiryCheckIntervalMs: number = 100;

  /** LeaseRevoke / ExpireKey entries the leader proposes per check at most (etcd bounds its revoke rate too). */
  @IntIn(1, 100_000)
  expiriesPerCheckMax: number = 1000;

  /** Wait before the leader proposes the same expiry again (an earlier proposal may have been lost), ms. */
  @IntIn(10, 600_000)
  expiryRetryMs: number = 2000;

  /**
   * The lease-state file is encoded and written in slices of at most this many bytes (whole
   * entries), each awaited before the next, so a large table's save never stalls the Ready loop
   * for more than one slice (docs/leases.md "Restarts and compaction"); an entry larger than a
   * slice (a key near the 64 KiB key ceiling) goes in a slice of its own.
   */
  @IntIn(4096, 64 * 1024 * 1024)
  leaseStateSliceBytesMax: number = 64 * 1024;

  /**
   * A replica that installed a leader's snapshot fetches the lease-state file from a peer in chunks
   * of at most this many bytes (LeaseStateRequest, docs/leases.md "Snapshot install"); at most
   * 512 KiB, half of nats-server's default max_payload, and cut further to the bus's payload bound.
   */
  @IntIn(4096, 512 * 1024)
  leaseStateChunkBytesMax: number = 256 * 1024;

  /** Wait for one chunk of that fetch, and between two attempts after a refusal or a timeout, ms. */
  @IntIn(50, 60_000)
  leaseStateFetchTimeoutMs: number = 2000;
}

export class StorageConfig {
  @Members(() => ProcessMemberConfig, 'storage.nodes')
  nodes!: ProcessMemberConfig[];

  /**
   * TCP port of every storage node's `/metrics`, `/healthz` and `/readyz` listener on 0.0.0.0
   * (docs/metrics.md); a node's own `metricsPort` overrides it. No listener when both are absent.
   */
  @Port('optional')
  metricsPort?: number;

  @IsIn(FSYNC_POLICIES)
  fsyncPolicy: FsyncPolicy = 'group';

  /** Bitcask data file (log segment) size bound, bytes. */
  @IntIn(64 * 1024, 4 * 1024 * 1024 * 1024)
  segmentBytesMax: number = 64 * 1024 * 1024;

  /**
   * Merge trigger (Bitcask): a background merge starts when dead bytes make up at least this
   * share of the immutable data files. Lower keeps disk closer to the live data at the cost of
   * more merge I/O; docs/engine.md has the measured trade-off.
   */
  @IsNumber() @Min(0.05) @Max(1)
  mergeDeadBytesRatioMin: number = 0.3;

  /** Merge read rate bound, bytes/s: merging never takes the disk from foreground writes. */
  @IntIn(1024 * 1024, 10 * 1024 * 1024 * 1024)
  mergeBytesPerSecondMax: number = 64 * 1024 * 1024;

  /** Committed entries buffered for apply (shipped or fetched) before further ones are dropped and later backfilled. */
  @IntIn(1024, 10_000_000)
  applyQueueEntriesMax: number = 100_000;

  /** Entries per backfill fetch from a consensus replica. */
  @IntIn(1, 100_000)
  fetchEntriesMax: number = 4096;

  /** How long a read waits for the node's applied index to reach the read's index, ms. */
  @IntIn(1, 60_000)
  readWaitMs: number = 2000;

  /** Reads waiting for the applied index at once, per node. */
  @IntIn(1, 1_000_000)
  readsWaitingMax: number = 100_000;

  /**
   * Snapshot transfers (docs/architecture.md, "Storage node lifecycle"): a transfer this node
   * serves is dropped (its snapshot released) after this long without a request, and a receiver
   * gives up on a peer that does not answer one request within it, ms.
   */
  @IntIn(100, 600_000)
  snapshotTransferTimeoutMs: number = 10_000;

  /**
   * How often a storage node takes an engine snapshot on its own, ms; 0 (default) = only when a
   * peer asks for one to bootstrap from. A snapshot's hard links keep the data files a later merge
   * replaced on disk until it is pruned (`snapshotsRetainedMax` 2), so a periodic snapshot costs
   * disk up to the size of the store; on demand costs nothing until needed.
   */
  @IntIn(0, 86_400_000)
  snapshotIntervalMs: number = 0;

  /** Snapshot transfers this node serves at once; a further begin request is answered UNAVAILABLE. */
  @IntIn(1, 64)
  snapshotTransfersMax: number = 4;

  /** Wait before a failed bootstrap (peer died, checksum error) starts again with another peer, ms (doubles per failure, up to 10×). */
  @IntIn(10, 60_000)
  snapshotRetryBackoffMs: number = 500;

  /** Watch event history (docs/watch.md): revisions kept; a watch from an older one gets COMPACTED. */
  @IntIn(1, 1_000_000_000)
  watchHistoryRevisionsMax: number = 1_000_000;

  /** Watch event history: events applied longer ago than this are dropped, ms. */
  @IntIn(1000, 30 * 86_400_000)
  watchHistoryMs: number = 3_600_000;

  /** Watch event history: bytes of events kept on disk (the newest batch always). */
  @IntIn(1024 * 1024, 1024 * 1024 * 1024 * 1024)
  watchHistoryBytesMax: number = 256 * 1024 * 1024;

  /**
   * Keys one lease holds at most (docs/leases.md "Storage"): a put attaching one more is refused
   * (outcome 10, lease full) by every node alike, as is one that would make the lease's revoke
   * exceed the largest engine record. Must be the same on every node (one config file for the cluster).
   */
  @IntIn(1, 100_000)
  keysPerLeaseMax: number = 1000;

  /**
   * Bytes of applied transactions' results (TxnResult) a storage node holds for outcome queries
   * (docs/protocol.md "TXN"): a gateway asks for a txn's result after it commits; beyond this bound
   * the oldest result is dropped, and a gateway asking for it later (a retry after a lost reply)
   * gets ERROR "applied, result no longer known" (the txn is never applied twice). In memory only.
   */
  @IntIn(1024 * 1024, 16 * 1024 * 1024 * 1024)
  txnResultsHeldBytesMax: number = 64 * 1024 * 1024;
}

/**
 * Authentication and authorization at the gateways (docs/security.md). Users, roles and whether
 * auth is enabled are replicated state (`cairn user|role|auth`), not config; these are each
 * gateway's bounds and secrets.
 */
export class AuthConfig {
  /** scrypt cost N of new password hashes (a power of two; memory 128 × N × 8 bytes per check). */
  @IsIn([1024, 2048, 4096, 8192, 16_384, 32_768, 65_536, 131_072], { message: 'scryptCost must be a power of two in 1024..131072' })
  scryptCost: number = 16_384;

  /** Lifetime of a bearer token, ms. */
  @IntIn(1000, 7 * 24 * 3600 * 1000)
  tokenTtlMs: number = 300_000;

  /** File holding the token signing secret (≥ 32 bytes, e.g. a Kubernetes Secret volume) shared by every gateway; env CAIRN_TOKEN_SECRET overrides it. Absent and no env: a random secret per gateway (its tokens work only there). */
  @Text('optional')
  tokenSecretFile?: string;

  /** File holding the first root password (used once: user root is created with role root when no root exists); env CAIRN_ROOT_PASSWORD overrides it. */
  @Text('optional')
  rootPasswordFile?: string;

  /** Users at most (each ≤ 10,000, the applier's ceiling). */
  @IntIn(1, 10_000)
  usersMax: number = 1000;

  /** Roles at most (root not counted; ceiling 1,000). */
  @IntIn(1, 1000)
  rolesMax: number = 100;

  /** Permissions per role at most (ceiling 256). */
  @IntIn(1, 256)
  permissionsPerRoleMax: number = 64;

  /** Failed authentications one connection may make; the next failure closes it. */
  @IntIn(1, 1000)
  failuresPerConnectionMax: number = 5;

  /** Failed authentications from one client address per failureWindowMs; beyond, its attempts are refused unchecked until the window ends. */
  @IntIn(1, 1_000_000)
  failuresPerAddressMax: number = 20;

  /** The window of failuresPerAddressMax, ms. */
  @IntIn(1000, 24 * 3600 * 1000)
  failureWindowMs: number = 60_000;

  /** Whether `/metrics` on the HTTP door is served without authentication while auth is enabled (false: any authenticated user). `/healthz` and `/readyz` are always open (probes). */
  @IsBoolean()
  metricsPublic: boolean = true;
}

export class GatewayConfig {
  @Members(() => GatewayMemberConfig, 'gateway.gateways')
  gateways!: GatewayMemberConfig[];

  /** Largest key, bytes (protocol hard ceiling 64 KiB). */
  @IntIn(1, 64 * 1024)
  keyBytesMax: number = 1024;

  /** Largest value, bytes (protocol hard ceiling 16 MiB). */
  @IntIn(0, 16 * 1024 * 1024)
  valueBytesMax: number = 1024 * 1024;

  /** A connection with no traffic and nothing in flight for this long is closed, ms. */
  @IntIn(1000, 24 * 3600 * 1000)
  idleTimeoutMs: number = 300_000;

  /** A write is retried (leader changes, lost messages) for at most this long, then UNAVAILABLE, ms. */
  @IntIn(100, 600_000)
  writeTimeoutMs: number = 10_000;

  /** A read is retried across storage nodes for at most this long, then UNAVAILABLE, ms. */
  @IntIn(100, 600_000)
  readTimeoutMs: number = 5_000;

  /**
   * A linearizable GET or range page sends its storage read together with the ReadIndex request
   * and keeps the node's answer when the node's applied index at the read is at least the read
   * index; otherwise it reads again at the read index (docs/architecture.md "Read path"). One bus
   * round trip fewer when the node is caught up. Off: the read leaves after the read index.
   */
  @IsBoolean()
  readAlongsideReadIndex: boolean = true;

  /** Pipelined requests in flight per connection; beyond it the gateway stops reading the socket. */
  @IntIn(1, 65_536)
  inflightPerConnectionMax: number = 1024;

  /** HTTP: requests of one connection in flight (pipelined, not yet answered); one more is answered 503 unrun. Lower than the TLV bound: HTTP/1.1 answers in order, so the responses of a client that pipelines without reading can only be held. */
  @IntIn(1, 65_536)
  httpInflightPerConnectionMax: number = 64;

  /** Open connections per door (TLV, RESP, HTTP each); one more is answered with a defined error and closed. */
  @IntIn(1, 1_000_000)
  connectionsMax: number = 10_000;

  /** Reply bytes handed to a connection's socket but not yet flushed to the kernel above which the gateway stops reading that connection. */
  @IntIn(1024, 1024 * 1024 * 1024)
  connectionReplyBytesMax: number = 1024 * 1024;

  /** Bytes of a connection's requests read but not yet answered above which the gateway stops reading that connection. */
  @IntIn(1024, 1024 * 1024 * 1024)
  connectionRequestBytesMax: number = 8 * 1024 * 1024;

  /** Bytes of pending requests and unflushed replies across all connections of the gateway above which it stops reading every connection (sized so RSS stays ≤ 256 MB with clients that never read). */
  @IntIn(1024 * 1024, 64 * 1024 * 1024 * 1024)
  pendingBytesMax: number = 64 * 1024 * 1024;

  /**
   * Growth of the gateway's Buffer (ArrayBuffer) memory plus JS heap in use since its last garbage collection above which it
   * forces one, bytes; 0 turns it off. V8 collects by JS heap growth and lets dead Buffers wait (docs/reliability.md, "Hostile clients").
   */
  @IntIn(0, 64 * 1024 * 1024 * 1024)
  bufferGarbageBytesMax: number = 64 * 1024 * 1024;

  /** How often the gateway compares its Buffer memory plus JS heap with bufferGarbageBytesMax, ms. */
  @IntIn(10, 60_000)
  bufferCheckIntervalMs: number = 200;

  /** A frame (TLV), command (RESP) or request (HTTP headers and body) that has started must be complete within this, ms; else a defined error and close. */
  @IntIn(100, 3_600_000)
  frameDeadlineMs: number = 30_000;

  /** A connection that must close (protocol error, QUIT, idle, over a cap) is destroyed at the latest this long after its last reply was written, ms. */
  @IntIn(10, 600_000)
  closeTimeoutMs: number = 2_000;

  /** RESP: most arguments in one command (the `*<n>` count, command name included); beyond it a protocol error and close. */
  @IntIn(3, 1024 * 1024)
  respArgumentsMax: number = 4096;

  /** RESP: most bytes of arguments in one command (at least the largest bulk is always allowed); beyond it a protocol error and close. */
  @IntIn(1024, 1024 * 1024 * 1024)
  respCommandBytesMax: number = 16 * 1024 * 1024;

  /** RESP: most keys in one MGET, MSET, DEL or EXISTS; beyond it the command gets an error and the connection stays open. */
  @IntIn(1, 1024 * 1024)
  keysPerCommandMax: number = 1024;

  /** Range reads: most keys in one page (a request's limit above it, or 0, is cut to it; docs/protocol.md "RANGE"). */
  @IntIn(1, 100_000)
  rangeKeysMax: number = 1000;

  /** Range reads: most bytes of one page (keys + values + 32 bytes a key; the first key always goes); storage nodes also keep the reply under the bus payload bound. */
  @IntIn(1024, 64 * 1024 * 1024)
  rangeBytesMax: number = 512 * 1024;

  /**
   * Transactions (TLV TXN, `POST /v1/txn`, MULTI/EXEC; docs/protocol.md "TXN"): compares plus the
   * ops of both branches of one txn, at most (etcd's --max-txn-ops); beyond, BAD_REQUEST, nothing proposed.
   */
  @IntIn(1, 65_535)
  txnOpsMax: number = 128;

  /**
   * Transactions: keys one txn's ranges and range deletes may visit plus the keys it writes, at
   * most; counted by every storage node at apply (the bound travels in the command); beyond, the
   * txn is refused TOO_LARGE and nothing is applied.
   */
  @IntIn(1, 10_000_000)
  txnKeysMax: number = 10_000;

  /**
   * Transactions: bytes of one txn's encoded result (TxnResult: its gets' and ranges' keys and
   * values, 32 bytes a key besides) at most, checked at apply; beyond, TOO_LARGE, nothing applied.
   * The outcome reply carrying it must fit the NATS server's max_payload (checked at start-up):
   * the default (1 MiB less 8 KiB) fits nats-server's default 1 MiB.
   */
  @IntIn(1024, 64 * 1024 * 1024)
  txnResultBytesMax: number = 1024 * 1024 - 8192;

  /** RESP: most keys one KEYS answers; a pattern matching more gets an error (use SCAN). */
  @IntIn(1, 10_000_000)
  respKeysReplyMax: number = 10_000;

  /** RESP: live SCAN cursors per connection; beyond, the oldest is forgotten (SCAN with it: invalid cursor). */
  @IntIn(1, 65_536)
  respScanCursorsMax: number = 64;

  /** RESP: commands one MULTI queues at most; one more gets an error and EXEC answers -EXECABORT (docs/resp.md "Transactions"). */
  @IntIn(1, 1_000_000)
  respMultiCommandsMax: number = 1024;

  /** RESP: bytes of arguments one MULTI queues at most (same error). */
  @IntIn(1024, 1024 * 1024 * 1024)
  respMultiBytesMax: number = 1024 * 1024;

  /** RESP: keys one connection WATCHes at most (each is a compare of EXEC's transaction, which holds at most txnOpsMax compares and ops); beyond it WATCH gets an error. */
  @IntIn(1, 128)
  respWatchedKeysMax: number = 128;

  /** RESP: attempts of one EXEC, or SET ... GET with an expiry, whose read keys another client changed between its reads and its write; then an error, nothing applied. */
  @IntIn(1, 1000)
  respTxnAttemptsMax: number = 16;

  /** HTTP: most bytes of a request's headers (Node's maxHeaderSize); beyond it 431 and close. */
  @IntIn(1024, 1024 * 1024)
  httpHeaderBytesMax: number = 16 * 1024;

  /** Client commands per proposal batch sent to the leader. */
  @IntIn(1, 65_536)
  commandsPerProposalMax: number = 1024;

  /** Proposal batches in flight to the leader at once. */
  @IntIn(1, 4096)
  proposalsInflightMax: number = 64;

  /** On shutdown, time allowed for in-flight requests to finish, ms. */
  @IntIn(0, 600_000)
  drainTimeoutMs: number = 5_000;

  /** Keys one lease time-to-live answer lists at most (TLV LEASE_TTL with KEYS, `GET /v1/lease/{id}?keys=true`; `more` says the rest were left out; docs/leases.md). */
  @IntIn(1, 100_000)
  leaseKeysMax: number = 1000;

  /** Watches open on one connection (TLV, RESP subscriptions, one per SSE request); one more is refused (docs/watch.md). */
  @IntIn(1, 1_000_000)
  watchesPerConnectionMax: number = 1024;

  /** Watches open on the gateway across every door; one more is refused UNAVAILABLE. */
  @IntIn(1, 10_000_000)
  watchersMax: number = 100_000;

  /** Bytes of events queued for one watch whose connection does not take them; beyond, the watch is cancelled SLOW (the first event always fits). */
  @IntIn(1024, 1024 * 1024 * 1024)
  watchQueueBytesMax: number = 4 * 1024 * 1024;

  /** Events queued for one watch whose connection does not take them; beyond, the watch is cancelled SLOW. */
  @IntIn(1, 10_000_000)
  watchQueueEventsMax: number = 10_000;

  /** A watch that got no frame for this long gets a progress notification (the revision it has seen up to), ms. */
  @IntIn(100, 3_600_000)
  watchProgressIntervalMs: number = 10_000;

  /** Authentication and authorization (docs/security.md). */
  @ValidateNested()
  @Type(() => AuthConfig)
  auth: AuthConfig = new AuthConfig();
}

/**
 * The whole cluster's static configuration (one JSON file shared by every process).
 * Relative `dataDir` is resolved against the directory of the config file.
 */
export class ClusterConfig {
  /** Cluster name: the NATS subject prefix is `cairn.<clusterName>`. */
  @Matches(ID_PATTERN, { message: `clusterName ${ID_MESSAGE}` })
  clusterName: string = 'local';

  @Text()
  dataDir: string = './data';

  @Section(() => NatsConfig)
  nats!: NatsConfig;

  @Section(() => ConsensusConfig)
  consensus!: ConsensusConfig;

  @Section(() => StorageConfig)
  storage!: StorageConfig;

  @Section(() => GatewayConfig)
  gateway!: GatewayConfig;

  @IsOptional()
  @IsIn(['trace', 'debug', 'info', 'warn', 'error'])
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' = 'info';
}
