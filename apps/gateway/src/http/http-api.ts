import { Module, ValidationPipe, type DynamicModule, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorBodyFilter, validationException } from './errors';
import { HTTP_DEPS, type HttpDeps } from './http-deps';
import { KV_PREFIX, kvKeyMiddleware, rawBodyMiddleware } from './kv-key';
import { KvController } from './kv.controller';
import { OpsController } from './ops.controller';
import { MembersController } from './members.controller';
import { json } from 'express';

/** The HTTP door's Nest module: its controllers plus the gateway's shared pieces as HTTP_DEPS. */
@Module({})
export class HttpApiModule {
  static forRoot(deps: HttpDeps): DynamicModule {
    return {
      module: HttpApiModule,
      controllers: [KvController, OpsController, MembersController],
      providers: [{ provide: HTTP_DEPS, useValue: deps }],
    };
  }
}

/**
 * The gateway's HTTP API and `/metrics` (docs/http.md): a Nest HTTP application of its own on
 * Express, created in Gateway.start() next to the process's Nest application context (which has
 * no HTTP server) and closed in Gateway.stop(). Body parsing is Cairn's: raw bytes up to
 * `valueBytesMax` on /v1/kv only, never JSON.
 */
export class HttpApi {
  private app: INestApplication | null = null;
  private connections = 0;

  constructor(private readonly deps: HttpDeps) {}

  async listen(host: string, port: number): Promise<void> {
    const adapter = new ExpressAdapter();
    adapter.getInstance().disable('x-powered-by');
    const app = await NestFactory.create(HttpApiModule.forRoot(this.deps), adapter, { bodyParser: false, logger: ['error', 'warn'] });
    app.use(kvKeyMiddleware(this.deps.metrics.observer('http')));
    app.use(KV_PREFIX, rawBodyMiddleware(this.deps.paths.limits.valueBytesMax));
    // JSON bodies on the membership route only (a few bytes: {"id":"c4","kind":"replica"}).
    app.use('/v1/cluster/members', json({ limit: '4kb' }));
    app.useGlobalPipes(new ValidationPipe({ transform: true, whitelist: true, forbidNonWhitelisted: true, exceptionFactory: validationException }));
    app.useGlobalFilters(new ErrorBodyFilter());
    const server = app.getHttpServer() as Server;
    server.on('connection', (socket) => {
      this.connections++;
      socket.once('close', () => this.connections--);
    });
    this.deps.metrics.trackConnections('http', () => this.connections);
    await app.listen(port, host);
    this.app = app;
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
    await app?.close();
  }
}
