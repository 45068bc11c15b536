// Cairn web console: a key browser on the HTTP API (GET/PUT/DELETE /v1/kv/{key}, prefix listing
// with GET /v1/kv?prefix=; docs/http.md). Keys and values are shown as UTF-8 text, or hex when not.
import { useState } from 'preact/hooks';
import { html, getKey, putKey, deleteKey, listPrefix, fromBase64, showBytes } from './api.js';
import { useConfirm } from './members.js';

const PAGE_KEYS = 50;
const PREVIEW_CHARS = 80;

/** Get, put and delete one key. */
function KeyEditor({ keyName, setKeyName, onWritten }) {
  const [value, setValue] = useState('');
  const [result, setResult] = useState(null);
  const [busy, setBusy] = useState(false);
  const [dialog, ask] = useConfirm();
  const run = async (what) => {
    setBusy(true);
    try {
      setResult(await what());
    } catch (e) {
      setResult({ error: `${e.code ?? 'ERROR'}: ${e.message}` });
    }
    setBusy(false);
  };
  const get = () =>
    run(async () => {
      const r = await getKey(keyName);
      if (!r) return { text: `${keyName}: not found` };
      const shown = showBytes(r.bytes);
      if (!shown.binary) setValue(shown.text);
      return { text: `${keyName}: ${r.bytes.length} bytes${shown.binary ? ' (binary, shown as hex)' : ''}, revision ${r.revision}, created at ${r.createRevision}, version ${r.version}`, value: shown.text };
    });
  const put = () =>
    run(async () => {
      const r = await putKey(keyName, value);
      onWritten?.();
      return { text: `${keyName}: written at revision ${r.revision}` };
    });
  const del = async () => {
    if (!(await ask(`Delete ${keyName}?`, 'The key and its value are removed on every storage node; this cannot be undone.'))) return;
    await run(async () => {
      const r = await deleteKey(keyName);
      onWritten?.();
      return { text: `${keyName}: deleted at revision ${r.revision}` };
    });
  };
  const noKey = keyName.length === 0;
  return html`
    ${dialog}
    <label>key <input value=${keyName} onInput=${(e) => setKeyName(e.currentTarget.value)} data-testid="key" placeholder="user/42" /></label>
    <label>value (UTF-8 text) <textarea rows="3" value=${value} onInput=${(e) => setValue(e.currentTarget.value)} data-testid="value"></textarea></label>
    <div class="row">
      <button type="button" disabled=${busy || noKey} onClick=${get} data-testid="get">Get</button>
      <button type="button" disabled=${busy || noKey} onClick=${put} data-testid="put">Put</button>
      <button type="button" class="danger" disabled=${busy || noKey} onClick=${del} data-testid="delete">Delete…</button>
    </div>
    ${result
      ? html`<div class="result" data-testid="key-result">
          ${result.error ? html`<p class="badText">${result.error}</p>` : html`<p>${result.text}</p>`}
          ${result.value !== undefined ? html`<pre data-testid="key-value">${result.value}</pre>` : null}
        </div>`
      : null}`;
}

/** Pages of `GET /v1/kv?prefix=` (PAGE_KEYS keys each, "More" follows the token). */
function PrefixList({ onPick, refreshKey }) {
  const [prefix, setPrefix] = useState('');
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const load = async (token) => {
    setError(null);
    try {
      const r = await listPrefix(prefix, PAGE_KEYS, token);
      setPage((p) => ({ revision: r.revision, count: token ? (p?.count ?? r.count) : r.count, token: r.more ? r.token : null, kvs: [...(token ? (p?.kvs ?? []) : []), ...r.kvs] }));
    } catch (e) {
      setError(e.status === 404 || e.status === 400 ? `prefix listing is not available on this gateway (${e.code}: ${e.message})` : `${e.code ?? 'ERROR'}: ${e.message}`);
    }
  };
  return html`
    <form class="row" onSubmit=${(e) => (e.preventDefault(), load(null))} data-refresh=${refreshKey}>
      <input value=${prefix} onInput=${(e) => setPrefix(e.currentTarget.value)} placeholder="prefix (empty: every key)" aria-label="prefix" data-testid="prefix" />
      <button type="submit" data-testid="list">List</button>
    </form>
    ${error ? html`<p class="badText">${error}</p>` : null}
    ${page
      ? html`<p class="muted small" data-testid="list-summary">${page.count.toLocaleString('en-US')} keys with this prefix at revision ${page.revision}; showing ${page.kvs.length}</p>
          <table class="compact keys" data-testid="key-list">
            <thead><tr><th>key</th><th>value</th><th>mod rev</th><th>version</th></tr></thead>
            <tbody>
              ${page.kvs.map((kv) => {
                const k = showBytes(fromBase64(kv.key));
                const v = kv.value === undefined ? null : showBytes(fromBase64(kv.value));
                const preview = v ? (v.text.length > PREVIEW_CHARS ? `${v.text.slice(0, PREVIEW_CHARS)}…` : v.text) : '';
                return html`<tr key=${kv.key}>
                  <td>${k.binary ? html`<span class="muted">${k.text}</span>` : html`<a href="#" onClick=${(e) => (e.preventDefault(), onPick(k.text))}>${k.text}</a>`}</td>
                  <td class="preview">${preview}</td>
                  <td class="num">${kv.mod_revision}</td>
                  <td class="num">${kv.version}</td>
                </tr>`;
              })}
            </tbody>
          </table>
          ${page.token ? html`<button type="button" onClick=${() => load(page.token)}>More</button>` : null}`
      : null}`;
}

export function Keys() {
  const [keyName, setKeyName] = useState('');
  const [writes, setWrites] = useState(0);
  return html`
    <div class="keys-panel">
      <${KeyEditor} keyName=${keyName} setKeyName=${setKeyName} onWritten=${() => setWrites((n) => n + 1)} />
      <h3>Browse by prefix</h3>
      <${PrefixList} onPick=${setKeyName} refreshKey=${writes} />
    </div>`;
}
