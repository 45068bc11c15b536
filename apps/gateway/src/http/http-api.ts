import { Module, ValidationPipe, type DynamicModule, type INestApplication, type NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { nestLogger } from '@cairn/nest-runtime';
import type { Server } from 'node:http';
import type { Server as TlsServer } from 'node:tls';
import { CertificateReloader, tlsServerOptions, watchTlsErrors, type DoorTls } from '../server/tls';
import type { AddressInfo } from 'node:net';
import { ErrorBodyFilter, bodyParserErrors, validationException } from './errors';
import { HTTP_DEPS, type HttpDeps } from './http-deps';
import { KV_PREFIX, TXN_PATH, kvKeyMiddleware, rawBodyMiddleware } from './kv-key';
import { KvController } from './kv.controller';
import { TxnController } from './txn.controller';
import { LeaseController } from './lease.controller';
import { WatchController } from './watch.controller';
import { OpsController } from './ops.controller';
import { MembersController } from './members.controller';
import { ConsoleAssetsService, ConsoleController, ConsoleStatsService } from './console.controller';
import { SnapshotController } from './snapshot.controller';
import { AuthController } from './auth.controller';
import { httpAuthMiddleware } from './http-auth';
import { requestIdMiddleware } from './request-id';
import { json, type NextFunction, type Request, type Response } from 'express';
import { AUTH_BODY_BYTES_MAX, MEMBERS_BODY_BYTES_MAX, applyHttpLimits, bodyLimitMiddleware, httpLimits, pipelineLimitMiddleware, txnBodyBytesMax } from './http-limits';

export { httpLimits } from './http-limits';

/** Limits when HttpDeps has none (tests): the config defaults. */
const DEFAULT_LIMITS = { connectionsMax: 10_000, httpHeaderBytesMax: 16 * 1024, frameDeadlineMs: 30_000, idleTimeoutMs: 300_000, closeTimeoutMs: 2_000, httpInflightPerConnectionMax: 64, connectionReplyBytesMax: 1024 * 1024 };

/** The HTTP door's Nest module: its controllers plus the gateway's shared pieces as HTTP_DEPS. */
@Module({})
export class HttpApiModule {
  static forRoot(deps: HttpDeps): DynamicModule {
    return {
      module: HttpApiModule,
      controllers: [KvController, TxnController, LeaseController, WatchController, OpsController, MembersController, SnapshotController, ConsoleController, AuthController],
      providers: [{ provide: HTTP_DEPS, useValue: deps }, ConsoleAssetsService, ConsoleStatsService],
    };
  }
}

/**
 * The gateway's HTTP API and `/metrics` (docs/http.md): a Nest HTTP application of its own on
 * Express, created in Gateway.start() next to the process's Nest application context (which has
 * no HTTP server) and closed in Gateway.stop(). Body parsing is Cairn's: raw bytes up to
 * `valueBytesMax` on /v1/kv (never JSON), JSON on /v1/txn, the membership and auth routes; bodies over a route's bound are refused from their
 * Content-Length (413, before reading); connections, headers and deadlines are bounded (HttpLimits).
 */
export class HttpApi {
  private app: INestApplication | null = null;
  private reloader: CertificateReloader | null = null;

  /** `tls`: the door speaks HTTPS only (docs/security.md); absent or null: plain HTTP. */
  constructor(
    private readonly deps: HttpDeps,
    private readonly tls: DoorTls | null = null,
  ) {}

  async listen(host: string, port: number): Promise<void> {
    const adapter = new ExpressAdapter();
    adapter.getInstance().disable('x-powered-by');
    const limits = this.deps.limits ?? httpLimits(DEFAULT_LIMITS);
    // Nest hands these to https.createServer as they are (its HttpsOptions type lists fewer fields).
    const httpsOptions: NestApplicationOptions['httpsOptions'] = this.tls ? tlsServerOptions(this.tls, limits.frameDeadlineMs) : undefined;
    const app = await NestFactory.create(HttpApiModule.forRoot(this.deps), adapter, { bodyParser: false, logger: ['error', 'warn'], httpsOptions });
    if (this.deps.log) app.useLogger(nestLogger(this.deps.log));
    const server = app.getHttpServer() as Server;
    if (this.tls) {
      // As the TLV and RESP doors (tls.ts createDoorServer): handshakes in progress bounded too.
      server.maxConnections = 2 * limits.connectionsMax;
      watchTlsErrors(server as Server & TlsServer, 'HTTP', this.deps.log);
      this.reloader = new CertificateReloader(server as Server & TlsServer, this.tls, this.deps.log, undefined, this.deps.clock);
    }
    const tracked = applyHttpLimits(server, limits, this.deps.clock);
    app.use(requestIdMiddleware(this.deps.gatewayId, this.deps.log));
    app.use(pipelineLimitMiddleware(limits, this.deps.budget));
    app.use(kvKeyMiddleware(this.deps.metrics.observer('http')));
    app.use(bodyLimitMiddleware(this.deps.paths.limits.valueBytesMax, limits.closeTimeoutMs, this.deps.clock));
    // Credentials and administrator checks before any body is read (docs/security.md).
    if (this.deps.auth) app.use(httpAuthMiddleware(this.deps.auth.gate));
    app.use(KV_PREFIX, rawBodyMiddleware(this.deps.paths.limits.valueBytesMax));
    // JSON bodies on the membership route only (a few bytes: {"id":"c4","kind":"replica"}).
    const parseJson = json({ limit: MEMBERS_BODY_BYTES_MAX });
    const jsonErrors = bodyParserErrors('the membership body limit', MEMBERS_BODY_BYTES_MAX, 'body');
    app.use('/v1/cluster/members', (req: Request, res: Response, next: NextFunction) => parseJson(req, res, (err?: unknown) => (err ? jsonErrors(err, res) : next())));
    // A txn's JSON whatever its Content-Type (`curl -d` sends form-urlencoded), bounded as bodyLimitMiddleware says.
    const txnBytesMax = txnBodyBytesMax(this.deps.paths.limits.valueBytesMax);
    const parseTxnJson = json({ limit: txnBytesMax, type: () => true });
    const txnJsonErrors = bodyParserErrors('the txn body limit (2 × valueBytesMax)', txnBytesMax, 'body');
    app.use(TXN_PATH, (req: Request, res: Response, next: NextFunction) => parseTxnJson(req, res, (err?: unknown) => (err ? txnJsonErrors(err, res) : next())));
    const parseAuthJson = json({ limit: AUTH_BODY_BYTES_MAX });
    const authJsonErrors = bodyParserErrors('the auth body limit', AUTH_BODY_BYTES_MAX, 'body');
    app.use('/v1/auth', (req: Request, res: Response, next: NextFunction) => parseAuthJson(req, res, (err?: unknown) => (err ? authJsonErrors(err, res) : next())));
    app.useGlobalPipes(new ValidationPipe({ transform: true, whitelist: true, forbidNonWhitelisted: true, exceptionFactory: validationException }));
    app.useGlobalFilters(new ErrorBodyFilter());
    this.deps.metrics.trackConnections('http', tracked.count);
    await app.listen(port, host);
    this.app = app;
    this.reloader?.start();
  }

  /** The bound port (useful with port 0). */
  port(): number {
    if (!this.app) throw new Error('HttpApiListening: listen() first');
    return ((this.app.getHttpServer() as Server).address() as AddressInfo).port;
  }

  /** Stops accepting, lets in-flight requests finish (idle keep-alive connections close at once), then closes. */
  async close(): Promise<void> {
    const app = this.app;
    this.app = null;
    this.reloader?.stop();
    await app?.close();
  }
}
