import type { Socket } from 'node:net';
import type { GatewayConfig } from '@cairn/config';
import type { Logger } from '@cairn/logging';
import type { Clock } from '@cairn/world';
import { encodeError, type RespParserLimits } from '@cairn/resp';
import type { ClusterView } from '../cluster/cluster-view';
import type { KvPaths } from '../paths/kv-session';
import { RespCommands, type ScanLimits } from './commands';
import type { MultiLimits } from './txn-commands';
import { gatewayVersion, type RespServerInfo } from './info';
import { RespConnection, type RespConnectionDeps } from './resp-connection';
import { DoorListener } from '../server/door-listener';
import { refuse } from '../server/tcp-server';
import { flowLimits, type ByteBudget } from '../server/flow';
import { createDoorServer, type DoorTls } from '../server/tls';
import type { GatewayAuth } from '../auth/gateway-auth';

export interface RespServerDeps extends Omit<RespConnectionDeps, 'onClose' | 'commands'> {
  /** Most keys in one MGET, MSET, DEL or EXISTS. */
  keysPerCommandMax: number;
  /** KEYS and SCAN bounds (default SCAN_LIMITS_DEFAULT). */
  scanLimits?: ScanLimits;
  /** MULTI / WATCH / EXEC bounds (default MULTI_LIMITS_DEFAULT). */
  multiLimits?: MultiLimits;
  connectionsMax: number;
  drainTimeoutMs: number;
  info: Omit<RespServerInfo, 'connections'>;
  /** TLS of the door (docs/security.md); absent or null: plain TCP. */
  tls?: DoorTls | null;
}

/**
 * The RESP2 listener (docs/resp.md): up to `connectionsMax` connections, each a RespConnection
 * with its own KvSession; one more gets Redis's `-ERR max number of clients reached` and is closed. `close()` is graceful like the binary protocol's TcpServer: stop
 * accepting, let pending replies go out (bounded by `drainTimeoutMs`), close every connection.
 */
export class RespServer extends DoorListener<RespConnection> {
  private nextId = 1;
  readonly commands: RespCommands;

  constructor(
    private readonly deps: RespServerDeps,
    private readonly log: Logger,
  ) {
    super(deps.drainTimeoutMs, (onSocket) =>
      createDoorServer({ door: 'RESP', tls: deps.tls ?? null, connectionsMax: deps.connectionsMax, handshakeTimeoutMs: deps.flow.frameDeadlineMs, allowHalfOpen: true, log, clock: deps.clock }, onSocket),
    );
    this.commands = new RespCommands({ ...deps.info, connections: () => this.connections.size }, deps.keysPerCommandMax, deps.scanLimits, deps.auth, deps.multiLimits);
  }

  protected accept(socket: Socket): void {
    if (this.connections.size >= this.deps.connectionsMax) {
      this.log.warn({ remote: socket.remoteAddress }, 'RESP connection refused: connectionsMax reached');
      refuse(socket, encodeError('ERR max number of clients reached'), this.deps.flow.closeTimeoutMs, this.deps.clock);
      return;
    }
    this.connections.add(new RespConnection(socket, this.nextId++, { ...this.deps, flow: { ...this.deps.flow, pauses: this.traffic }, commands: this.commands, onClose: (x) => this.connections.delete(x) }));
  }
}

/**
 * Parser bounds from the gateway config: a bulk may exceed valueBytesMax by 64 KiB so a slightly
 * oversized value gets the session's TOO_LARGE error and the connection stays usable (beyond it:
 * `Protocol error: invalid bulk length` and close, like Redis's proto-max-bulk-len);
 * `respArgumentsMax` arguments and `respCommandBytesMax` bytes of arguments per command (at least
 * one largest bulk).
 */
export function respParserLimits(g: Pick<GatewayConfig, 'keyBytesMax' | 'valueBytesMax' | 'respArgumentsMax' | 'respCommandBytesMax'>): RespParserLimits {
  const bulkBytesMax = Math.max(g.keyBytesMax, g.valueBytesMax) + 64 * 1024;
  return { bulkBytesMax, arrayLengthMax: g.respArgumentsMax, commandBytesMax: Math.max(g.respCommandBytesMax, bulkBytesMax) };
}

/** The gateway's RESP listener from its config (the wiring Gateway uses). */
export function createRespServer(o: { gatewayId: string; g: GatewayConfig; paths: KvPaths; view: ClusterView; respPort: number; budget: ByteBudget; log: Logger; tls?: DoorTls | null; auth?: GatewayAuth; watches?: RespConnectionDeps['watches']; clock: Clock; startedAtMs: number }): RespServer {
  const { g, clock } = o;
  return new RespServer(
    {
      paths: o.paths,
      parserLimits: respParserLimits(g),
      inflightMax: g.inflightPerConnectionMax,
      flow: flowLimits(g),
      budget: o.budget,
      keysPerCommandMax: g.keysPerCommandMax,
      scanLimits: { keysReplyMax: g.respKeysReplyMax, cursorsMax: g.respScanCursorsMax },
      multiLimits: { commandsMax: g.respMultiCommandsMax, bytesMax: g.respMultiBytesMax, watchedKeysMax: g.respWatchedKeysMax, attemptsMax: g.respTxnAttemptsMax, txnOpsMax: g.txnOpsMax },
      connectionsMax: g.connectionsMax,
      drainTimeoutMs: g.drainTimeoutMs,
      tls: o.tls,
      auth: o.auth,
      watches: o.watches,
      clock,
      info: { gatewayId: o.gatewayId, version: gatewayVersion(), startedAtMs: o.startedAtMs, respPort: o.respPort, view: o.view, now: () => clock.nowMs() },
    },
    o.log,
  );
}
