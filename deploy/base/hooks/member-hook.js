'use strict';
/**
 * Cairn membership follows the StatefulSet (docs/deploy.md, "Scaling"). Run by the pods' lifecycle
 * hooks, from the cairn-hooks ConfigMap, with the image's node and nothing but Node's built-ins:
 *
 *   node member-hook.js join  replica|storage   (postStart)
 *   node member-hook.js leave replica|storage   (preStop)
 *
 * join: a pod whose id is not a member yet is added through the gateway HTTP API
 *   (POST /v1/cluster/members: a replica becomes a learner, catches up, then a voter; docs/http.md).
 *   The process itself started with --join (CAIRN_JOIN=auto: its id is not in the config). When no
 *   gateway answers and the id is in the config, it is an initial member of a cluster that is
 *   forming: nothing to do.
 * leave: only on a scale-down, i.e. when this pod's ordinal is at or beyond the StatefulSet's
 *   spec.replicas read from the Kubernetes API (a restart, a rolling update or an eviction keeps the
 *   member): DELETE /v1/cluster/members/<id> (the leader hands over first). When the API cannot be
 *   read the member is kept (safe: a member that is down costs fault tolerance, not safety) and
 *   `cairn member remove <id>` is the way out.
 *
 * Environment: CAIRN_ID (the pod name), CAIRN_CONFIG (the cluster config file), CAIRN_HTTP
 * (gateway HTTP API host:port), CAIRN_HOOK_TIMEOUT_MS (how long to keep retrying; join 600000,
 * leave 20000 by default), CAIRN_STATEFULSET (default: CAIRN_ID without -<ordinal>).
 * Kubernetes API: KUBERNETES_SERVICE_HOST/PORT and the service account under
 * /var/run/secrets/kubernetes.io/serviceaccount; CAIRN_KUBE_API (a base URL) and CAIRN_KUBE_SA_DIR
 * override them (the entrypoint e2e runs this file against a stand-in API).
 * Exit codes: 0 done or nothing to do, 1 gave up (postStart: the kubelet restarts the container,
 * so the join is retried), 2 usage.
 */
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const path = require('node:path');

/** One HTTP attempt's bound, ms: the membership API may wait for a learner to catch up (memberCatchUpTimeoutMs). */
const ATTEMPT_TIMEOUT_MS = 120_000;
/** Pause between attempts while the gateway or leader is unavailable, ms. */
const RETRY_PAUSE_MS = 1_000;
/** Largest response body read, bytes (a configuration list or a StatefulSet is a few KiB). */
const RESPONSE_BYTES_MAX = 1 << 20;

function log(msg, fields) {
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), hook: 'member', msg, ...fields }) + '\n');
}

/** One HTTP(S) request: resolves { status, body } (body parsed as JSON when it is), rejects on a socket error or timeout. */
function request(url, { method = 'GET', headers = {}, body, ca, timeoutMs }) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(u, { method, headers: { accept: 'application/json', ...headers }, ca, timeout: timeoutMs }, (res) => {
      const chunks = [];
      let bytes = 0;
      res.on('data', (c) => {
        bytes += c.length;
        if (bytes > RESPONSE_BYTES_MAX) req.destroy(new Error(`response over ${RESPONSE_BYTES_MAX} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode, body: parsed });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function members(cairnHttp) {
  return request(`http://${cairnHttp}/v1/cluster/members`, { timeoutMs: 5_000 });
}

function inConfig(configFile, id, kind) {
  const c = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  const list = kind === 'storage' ? c.storage?.nodes : c.consensus?.replicas;
  return (list ?? []).some((m) => m.id === id);
}

/** The ids of `kind` in a GET /v1/cluster/members answer that count as "already in" for join. */
function present(conf, kind) {
  return kind === 'storage' ? conf.storage ?? [] : conf.voters ?? [];
}

async function join(env, kind, deadline) {
  const id = env.CAIRN_ID;
  const initial = inConfig(env.CAIRN_CONFIG, id, kind);
  for (;;) {
    let outcome;
    try {
      const list = await members(env.CAIRN_HTTP);
      if (list.status === 200 && present(list.body, kind).includes(id)) return log('already a member', { id, kind });
      if (list.status !== 200 && initial) return log('initial member, cluster forming: nothing to add', { id, kind, status: list.status });
      const timeoutMs = Math.max(1_000, Math.min(ATTEMPT_TIMEOUT_MS, deadline - Date.now()));
      const r = await request(`http://${env.CAIRN_HTTP}/v1/cluster/members?timeoutMs=${Math.max(100, timeoutMs - 2_000)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id, kind }),
        timeoutMs,
      });
      if (r.status === 200) return log('added', { id, kind, conf: r.body.conf });
      if (r.status === 400 || r.status === 412) throw Object.assign(new Error(`add refused: ${r.status} ${JSON.stringify(r.body)}`), { final: true });
      outcome = `${r.status} ${r.body && r.body.message ? r.body.message : ''}`;
    } catch (e) {
      if (e.final) throw e;
      // No ready gateway behind the Service: the cluster is forming (or down); an initial member
      // forms it by itself. (An initial id scaled down and back up while no gateway answers stays
      // out: it is never ready, and `cairn member add <id>` adds it.)
      if (initial) return log('initial member, no gateway answers: nothing to add', { id, kind, error: e.message });
      outcome = e.message;
    }
    if (Date.now() + RETRY_PAUSE_MS > deadline) throw new Error(`not added before the deadline: ${outcome}`);
    log('add not done yet, retrying', { id, kind, outcome });
    await sleep(RETRY_PAUSE_MS);
  }
}

/** spec.replicas of the StatefulSet, or null when the API cannot tell (then the member is kept). */
async function desiredReplicas(env, statefulSet) {
  const saDir = env.CAIRN_KUBE_SA_DIR || '/var/run/secrets/kubernetes.io/serviceaccount';
  const api = env.CAIRN_KUBE_API || `https://${env.KUBERNETES_SERVICE_HOST}:${env.KUBERNETES_SERVICE_PORT}`;
  try {
    const ns = fs.readFileSync(path.join(saDir, 'namespace'), 'utf8').trim();
    const token = fs.readFileSync(path.join(saDir, 'token'), 'utf8').trim();
    const caFile = path.join(saDir, 'ca.crt');
    const ca = fs.existsSync(caFile) ? fs.readFileSync(caFile) : undefined;
    const r = await request(`${api}/apis/apps/v1/namespaces/${ns}/statefulsets/${statefulSet}`, { headers: { authorization: `Bearer ${token}` }, ca, timeoutMs: 5_000 });
    if (r.status !== 200) return log('StatefulSet not readable: member kept', { statefulSet, status: r.status }), null;
    return r.body.spec?.replicas ?? 1;
  } catch (e) {
    return log('Kubernetes API not reachable: member kept', { statefulSet, error: e.message }), null;
  }
}

async function leave(env, kind, deadline) {
  const id = env.CAIRN_ID;
  const m = /^(.*)-(\d+)$/.exec(id);
  if (!m) throw Object.assign(new Error(`CAIRN_ID ${id} is not <statefulset>-<ordinal>`), { usage: true });
  const statefulSet = env.CAIRN_STATEFULSET || m[1];
  const desired = await desiredReplicas(env, statefulSet);
  if (desired === null) return;
  if (Number(m[2]) < desired) return log('not a scale-down (restart or update): member kept', { id, kind, desired });
  for (;;) {
    let outcome;
    try {
      const timeoutMs = Math.max(1_000, deadline - Date.now());
      const q = `timeoutMs=${Math.max(100, timeoutMs - 1_000)}${kind === 'storage' ? '&kind=storage' : ''}`;
      const r = await request(`http://${env.CAIRN_HTTP}/v1/cluster/members/${encodeURIComponent(id)}?${q}`, { method: 'DELETE', timeoutMs });
      if (r.status === 200) return log('removed (scale-down)', { id, kind, desired, conf: r.body.conf });
      if (r.status === 400 || r.status === 412) return log('removal refused: member kept', { id, kind, status: r.status, body: r.body });
      outcome = `${r.status} ${r.body && r.body.message ? r.body.message : ''}`;
    } catch (e) {
      outcome = e.message;
    }
    if (Date.now() + RETRY_PAUSE_MS > deadline) throw new Error(`not removed before the deadline: ${outcome}`);
    log('removal not done yet, retrying', { id, kind, outcome });
    await sleep(RETRY_PAUSE_MS);
  }
}

async function main(argv, env) {
  const [op, kind] = argv;
  if (!['join', 'leave'].includes(op) || !['replica', 'storage'].includes(kind) || !env.CAIRN_ID || !env.CAIRN_CONFIG || !env.CAIRN_HTTP) {
    process.stderr.write('usage: CAIRN_ID=… CAIRN_CONFIG=… CAIRN_HTTP=host:port node member-hook.js join|leave replica|storage\n');
    return 2;
  }
  const timeoutMs = Number(env.CAIRN_HOOK_TIMEOUT_MS || (op === 'join' ? 600_000 : 20_000));
  try {
    await (op === 'join' ? join : leave)(env, kind, Date.now() + timeoutMs);
    return 0;
  } catch (e) {
    log('gave up', { op, kind, id: env.CAIRN_ID, error: e.message });
    return e.usage ? 2 : 1;
  }
}

main(process.argv.slice(2), process.env).then((code) => process.exit(code));
