/**
 * NATS subject names for one Cairn cluster. Every subject starts with `cairn.<cluster>.` so
 * several clusters can share one NATS server.
 *
 * | subject                          | pattern       | payload (libs/protocol internal codec)      |
 * |----------------------------------|---------------|---------------------------------------------|
 * | `raft.<replica>`                 | publish       | Raft message batch for one replica           |
 * | `propose.<replica>`              | request/reply | ProposeRequest → ProposeReply                |
 * | `readindex.<replica>`            | request/reply | ReadIndexRequest → ReadIndexReply            |
 * | `ship`                           | publish       | ShipBatch (committed entries, leader → all)  |
 * | `log.fetch.<replica>`            | request/reply | FetchRequest → FetchReply (backfill)         |
 * | `read.<node>`                    | request/reply | ReadRequest → ReadReply                      |
 * | `member.<replica>`               | request/reply | JSON MemberRequest → MemberReply (membership) |
 * | `lease.<replica>`                | request/reply | LeaseRequest → LeaseReply (keep-alive, TTL, list; lease.ts) |
 * | `snapshot.<node>`                | request/reply | SnapshotBegin/ChunkRequest → …Reply (storage-node bootstrap) |
 * | `status.consensus` / `.storage`  | publish       | JSON status heartbeat (control plane)        |
 * | `watch.<node>`                   | publish       | WatchEvents (applied events, node → gateways; docs/watch.md) |
 * | `_INBOX.cairn.<cluster>.<role>.…`| reply         | the replies to a role's requests (not prefixed) |
 *
 * A new subject needs its publishing and subscribing roles in `busPermissions` (bus-auth.ts) and
 * docs/security.md's table, or an authenticated bus refuses it (bus-auth.spec.ts checks each method).
 */
export class Subjects {
  readonly prefix: string;
  constructor(readonly cluster: string) {
    this.prefix = `cairn.${cluster}`;
  }
  raft(replicaId: string): string {
    return `${this.prefix}.raft.${replicaId}`;
  }
  propose(replicaId: string): string {
    return `${this.prefix}.propose.${replicaId}`;
  }
  readIndex(replicaId: string): string {
    return `${this.prefix}.readindex.${replicaId}`;
  }
  ship(): string {
    return `${this.prefix}.ship`;
  }
  fetch(replicaId: string): string {
    return `${this.prefix}.log.fetch.${replicaId}`;
  }
  read(nodeId: string): string {
    return `${this.prefix}.read.${nodeId}`;
  }
  member(replicaId: string): string {
    return `${this.prefix}.member.${replicaId}`;
  }
  /** The leader's lease table: keep-alive, time to live, list (libs/protocol lease.ts; docs/leases.md). */
  lease(replicaId: string): string {
    return `${this.prefix}.lease.${replicaId}`;
  }
  /** A storage node's snapshot transfers to peers (libs/protocol snapshot-messages.ts). */
  snapshot(nodeId: string): string {
    return `${this.prefix}.snapshot.${nodeId}`;
  }
  /** A storage node's applied watch events (libs/protocol watch.ts WatchEvents). */
  watch(nodeId: string): string {
    return `${this.prefix}.watch.${nodeId}`;
  }
  consensusStatus(): string {
    return `${this.prefix}.status.consensus`;
  }
  storageStatus(): string {
    return `${this.prefix}.status.storage`;
  }
  /**
   * Reply inbox prefix of a bus role (nats.js `inboxPrefix`): `_INBOX.cairn.<cluster>.<role>`, so
   * each role may subscribe to its own replies only (docs/security.md "The internal bus").
   */
  inboxPrefix(role: string): string {
    return `_INBOX.${this.prefix}.${role}`;
  }
}
