import { Body, Controller, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import { LeaseRefusal, Status, txnRequestBytes, type TxnRequest } from '@cairn/protocol';
import type { Request, Response } from 'express';
import { KvSession } from '../paths/kv-session';
import { CairnHttpException } from './errors';
import { HTTP_DEPS, type HttpDeps } from './http-deps';
import { identityOf } from './http-auth';
import { TxnBodyJson, TxnJsonError, txnRequestOf, txnResponseJson } from './txn-json';

/**
 * `POST /v1/txn`: an etcd Txn (docs/http.md "Transactions"; body and answer after etcd's v3 JSON
 * gateway, txn-json.ts). `if` every compare holds `then` the success ops `else` the failure ops,
 * applied atomically at one revision by every storage node (KvSession.txn, as the TLV TXN).
 * 200 `{ header: { revision }, succeeded, responses }` whether the compares held or not (etcd);
 * 400 a malformed body or one over gateway.txnOpsMax; 404 a put's lease does not exist at apply
 * (etcd "requested lease not found"; nothing applied); 413 a key or value over the limits, the
 * encoded txn over valueBytesMax, or refused at apply (txnKeysMax, txnResultBytesMax, a put's
 * lease holding storage.keysPerLeaseMax keys); 401/403 as
 * the key routes (each op checked as etcd checks a Txn); 503 unavailable (outcome unknown: a txn
 * is a write, do not blindly re-send it).
 */
@Controller('v1/txn')
export class TxnController {
  constructor(@Inject(HTTP_DEPS) private readonly deps: HttpDeps) {}

  @Post()
  @HttpCode(200)
  async txn(@Body() body: TxnBodyJson, @Req() req: Request, @Res() res: Response): Promise<void> {
    let request: TxnRequest;
    try {
      request = txnRequestOf(body);
    } catch (e) {
      if (e instanceof TxnJsonError) throw new CairnHttpException(Status.BadRequest, e.message);
      throw e;
    }
    // As on the TLV door, whose TXN value is at most valueBytesMax: the Txn command must fit one Raft entry.
    const bytes = txnRequestBytes(request);
    const { valueBytesMax } = this.deps.paths.limits;
    if (bytes > valueBytesMax) throw new CairnHttpException(Status.TooLarge, `the transaction is ${bytes} bytes encoded; valueBytesMax is ${valueBytesMax}`);
    const r = await new KvSession(this.deps.paths, this.deps.auth?.gate.guardFor(identityOf(req))).txn(request);
    if (r.status === Status.ConditionFailed && r.leaseRefusal !== undefined) throw new CairnHttpException(r.leaseRefusal === LeaseRefusal.NotFound ? Status.NotFound : Status.TooLarge, r.message);
    if (r.status !== Status.Ok || !r.txn) throw new CairnHttpException(r.status === Status.Ok ? Status.Error : r.status, r.message || 'request failed');
    res.status(200).setHeader('X-Cairn-Revision', String(r.revision));
    res.json(txnResponseJson(request, r.txn, r.revision, body.encoding ?? 'utf8'));
  }
}
