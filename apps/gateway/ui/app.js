// Cairn web console: the page (docs/operations.md "Reading the console").
// Polls GET /v1/cluster and GET /v1/cluster/stats once a second; one poll in flight at a time.
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { html, getJson, formatAge } from './api.js';
import { Topology } from './topology.js';
import { Charts } from './charts.js';
import { Members } from './members.js';
import { Keys } from './keys.js';

const POLL_MS = 1000;

/** Polls `path` every POLL_MS; answers `{ data, error, at }` (the last good data is kept through errors). */
function usePoll(path, tick) {
  const [state, setState] = useState({ data: null, error: null, at: 0 });
  useEffect(() => {
    const ctl = new AbortController();
    getJson(path, ctl.signal).then(
      (data) => setState({ data, error: null, at: Date.now() }),
      (error) => {
        if (!ctl.signal.aborted) setState((s) => ({ ...s, error }));
      },
    );
    return () => ctl.abort();
  }, [path, tick]);
  return state;
}

function App() {
  const [tick, setTick] = useState(0);
  const timer = useRef(null);
  useEffect(() => {
    timer.current = setInterval(() => setTick((t) => t + 1), POLL_MS);
    return () => clearInterval(timer.current);
  }, []);
  const cluster = usePoll('/v1/cluster', tick);
  const stats = usePoll('/v1/cluster/stats', tick);
  const refresh = () => setTick((t) => t + 1);
  const c = cluster.data;
  const leader = c?.replicas.find((r) => r.role === 'leader');
  return html`
    <header>
      <h1>Cairn</h1>
      <span class="pill" data-testid="gateway-id">gateway ${c?.gateway ?? '…'}</span>
      <span class=${`pill ${leader ? 'ok' : 'bad'}`} data-testid="leader">${leader ? `leader ${leader.id}` : 'no leader'}</span>
      <span class="pill">term ${c?.term ?? '–'}</span>
      <span class="pill">commit ${leader?.commitIndex ?? '–'}</span>
      ${cluster.error ? html`<span class="pill bad" role="alert">gateway unreachable: ${cluster.error.message}</span>` : html`<span class="muted">updated ${formatAge(Date.now() - cluster.at)} ago</span>`}
    </header>
    <main>
      <section class="card wide">
        <h2>Topology</h2>
        ${c ? html`<${Topology} cluster=${c} gateway=${stats.data?.gateway} onChanged=${refresh} />` : html`<p class="muted">waiting for /v1/cluster…</p>`}
      </section>
      <section class="card wide">
        <h2>Throughput and latency <span class="muted">(this gateway, per door, last ${stats.data ? Math.round((stats.data.samplesMax * stats.data.intervalMs) / 60000) : 5} min)</span></h2>
        <${Charts} stats=${stats.data} />
      </section>
      <section class="card">
        <h2>Membership</h2>
        <${Members} cluster=${c} onChanged=${refresh} />
      </section>
      <section class="card">
        <h2>Keys</h2>
        <${Keys} />
      </section>
    </main>`;
}

const root = document.getElementById('app');
root.textContent = ''; // the static "Loading…" line: Preact renders next to what is there
render(html`<${App} />`, root);
