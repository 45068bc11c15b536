// Cairn web console: ops/s and p50/p99 latency per front door, from GET /v1/cluster/stats
// (one sample a second, the last 5 minutes), drawn with uPlot.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { html } from './api.js';

const DOORS = [
  { door: 'tlv', label: 'TLV', color: '#2563eb' },
  { door: 'http', label: 'HTTP', color: '#16a34a' },
  { door: 'resp', label: 'RESP', color: '#d97706' },
];
const HEIGHT = 220;

function opsOptions(width) {
  return {
    width,
    height: HEIGHT,
    title: 'requests per second',
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [{}, { label: 'ops/s', size: 60 }],
    series: [{}, ...DOORS.map((d) => ({ label: d.label, stroke: d.color, width: 2, value: (u, v) => (v === null ? '–' : v.toFixed(1)) }))],
  };
}

function latencyOptions(width) {
  return {
    width,
    height: HEIGHT,
    title: 'latency, ms (log scale; estimated from histogram buckets)',
    scales: { x: { time: true }, y: { distr: 3, log: 10 } },
    axes: [{}, { label: 'ms', size: 60 }],
    series: [
      {},
      ...DOORS.flatMap((d) => [
        { label: `${d.label} p50`, stroke: d.color, width: 2, spanGaps: false, value: (u, v) => (v === null ? '–' : v.toFixed(2)) },
        { label: `${d.label} p99`, stroke: d.color, width: 1, dash: [6, 4], spanGaps: false, value: (u, v) => (v === null ? '–' : v.toFixed(2)) },
      ]),
    ],
  };
}

function opsData(s) {
  return [s.t, ...DOORS.map((d) => s.doors[d.door].ops)];
}

function latencyData(s) {
  return [s.t, ...DOORS.flatMap((d) => [s.doors[d.door].p50Ms, s.doors[d.door].p99Ms])];
}

/** One uPlot chart kept across renders: created once, then `setData` on every poll; follows its box's width. */
function Chart({ stats, options, data, testid }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const width = () => Math.max(300, box.current.clientWidth);
    plot.current = new uPlot(options(width()), [[]], box.current);
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: width(), height: HEIGHT }));
    ro.observe(box.current);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);
  useEffect(() => {
    if (plot.current && stats) plot.current.setData(data(stats));
  }, [stats]);
  return html`<div class="chart" ref=${box} data-testid=${testid} data-samples=${stats?.t.length ?? 0}></div>`;
}

const last = (a) => (a.length ? a[a.length - 1] : null);
const show = (v, digits) => (v === null || v === undefined ? '–' : v.toFixed(digits));

/** The two charts and the latest sample per door. */
export function Charts({ stats }) {
  return html`
    <div class="charts">
      <${Chart} stats=${stats} options=${opsOptions} data=${opsData} testid="chart-ops" />
      <${Chart} stats=${stats} options=${latencyOptions} data=${latencyData} testid="chart-latency" />
    </div>
    <table class="compact" data-testid="door-now">
      <thead><tr><th>door</th><th>ops/s</th><th>failures/s</th><th>p50 ms</th><th>p99 ms</th><th>requests in window</th></tr></thead>
      <tbody>
        ${DOORS.map((d) => {
          const s = stats?.doors[d.door];
          const total = s ? s.requests.reduce((n, v) => n + v, 0) : null;
          return html`<tr data-door=${d.door}>
            <td><span class="swatch" style=${`background:${d.color}`}></span>${d.label}</td>
            <td class="num" data-testid=${`ops-${d.door}`}>${s ? show(last(s.ops), 1) : '–'}</td>
            <td class="num">${s ? show(last(s.failures), 1) : '–'}</td>
            <td class="num">${s ? show(last(s.p50Ms), 2) : '–'}</td>
            <td class="num">${s ? show(last(s.p99Ms), 2) : '–'}</td>
            <td class="num" data-testid=${`window-${d.door}`}>${total === null ? '–' : Math.round(total).toLocaleString('en-US')}</td>
          </tr>`;
        })}
      </tbody>
    </table>`;
}
