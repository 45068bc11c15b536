// Cairn web console: the gateway's HTTP API as the page uses it (docs/http.md).
import { h } from 'preact';
import htm from 'htm';

/** htm bound to Preact: html`<div>…</div>`. */
export const html = htm.bind(h);

/** An error answer of the gateway: `{ error: CODE, message }` plus the HTTP status. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function failure(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON (a proxy's page): the status says enough
  }
  return new ApiError(res.status, body?.error ?? `HTTP_${res.status}`, body?.message ?? res.statusText);
}

/** GET a JSON route. */
export async function getJson(path, signal) {
  const res = await fetch(path, { signal, headers: { accept: 'application/json' }, cache: 'no-store' });
  if (!res.ok) throw await failure(res);
  return res.json();
}

/** Send a JSON (or empty) body; answers the JSON reply. */
export async function sendJson(method, path, body) {
  const init = { method, headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (!res.ok) throw await failure(res);
  return res.json();
}

/** `/v1/kv/{key}` of a text key: every UTF-8 byte the URL needs escaped is %XX (the gateway decodes %XX to bytes). */
export function kvPath(key) {
  return `/v1/kv/${encodeURIComponent(key)}`;
}

/** GET one key: null when absent, else its bytes and metadata (headers of docs/http.md). */
export async function getKey(key) {
  const res = await fetch(kvPath(key), { cache: 'no-store' });
  if (res.status === 404) return null;
  if (!res.ok) throw await failure(res);
  const num = (name) => Number(res.headers.get(name) ?? 0);
  return {
    bytes: new Uint8Array(await res.arrayBuffer()),
    revision: num('x-cairn-revision'),
    createRevision: num('cairn-create-revision'),
    version: num('cairn-version'),
  };
}

/** PUT a UTF-8 text value; answers `{ revision }`. */
export async function putKey(key, text) {
  const res = await fetch(kvPath(key), { method: 'PUT', body: new TextEncoder().encode(text), headers: { 'content-type': 'application/octet-stream' } });
  if (!res.ok) throw await failure(res);
  return res.json();
}

/** DELETE a key; answers `{ revision }`. */
export async function deleteKey(key) {
  const res = await fetch(kvPath(key), { method: 'DELETE' });
  if (!res.ok) throw await failure(res);
  return res.json();
}

/** One page of a prefix listing (`GET /v1/kv?prefix=`): keys and values are base64 in the answer. */
export async function listPrefix(prefix, limit, token) {
  const q = new URLSearchParams({ prefix, limit: String(limit) });
  if (token) q.set('token', token);
  return getJson(`/v1/kv?${q}`);
}

export function fromBase64(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes as the page shows them: UTF-8 text when they are, else hex (`0x…`). */
export function showBytes(bytes) {
  try {
    return { text: utf8.decode(bytes), binary: false };
  } catch {
    return { text: `0x${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`, binary: true };
  }
}

/** 1234567 → "1.2 MB". */
export function formatBytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** Milliseconds as "850 ms", "12.3 s", "4 min 10 s". */
export function formatAge(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
