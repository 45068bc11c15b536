// Cairn web console: every process this gateway knows of, from GET /v1/cluster and the
// configuration in effect (docs/operations.md "Reading the console").
import { html, formatAge, formatBytes } from './api.js';
import { ACTIONS, useMemberActions } from './members.js';

const fmt = (n) => (n === null || n === undefined ? '–' : n.toLocaleString('en-US'));
const clock = (ms) => new Date(ms).toLocaleTimeString('en-GB', { hour12: false });

/** "DOWN since": when this gateway last heard from a process that is not live (browser clock). */
function downSince(p, now) {
  if (p.live) return html`<span class="muted">–</span>`;
  if (p.ageMs === null) return html`<span class="badText">never heard from</span>`;
  return html`<span class="badText">${clock(now - p.ageMs)} (${formatAge(p.ageMs)})</span>`;
}

function RoleBadge({ role }) {
  return html`<span class=${`badge role-${role}`}>${role}</span>`;
}

/** Replicas: those heard from plus members of the configuration never heard from. */
function replicaRows(cluster) {
  const conf = cluster.members;
  const rows = cluster.replicas.map((r) => ({ ...r }));
  for (const id of [...(conf?.voters ?? []), ...(conf?.learners ?? [])]) if (!rows.some((r) => r.id === id)) rows.push({ id, role: 'unreachable', live: false, ageMs: null });
  return rows
    .map((r) => ({ ...r, member: conf?.voters.includes(r.id) ? 'voter' : conf?.learners.includes(r.id) ? 'learner' : conf ? 'not a member' : '?' }))
    .sort((a, b) => a.id.localeCompare(b.id));
}

function storageRows(cluster) {
  const conf = cluster.members;
  const rows = cluster.storage.map((n) => ({ ...n, member: conf ? (conf.storage.includes(n.id) ? 'member' : 'not a member') : '?' }));
  for (const id of conf?.storage ?? []) if (!rows.some((n) => n.id === id)) rows.push({ id, live: false, ageMs: null, member: 'member' });
  return rows.sort((a, b) => a.id.localeCompare(b.id));
}

/** The topology tables: consensus replicas, storage nodes, this gateway. Rows carry the membership buttons. */
export function Topology({ cluster, gateway, onChanged }) {
  const [ui, act, busy] = useMemberActions(onChanged);
  const now = Date.now();
  const leader = cluster.replicas.find((r) => r.role === 'leader');
  const replicas = replicaRows(cluster);
  const storage = storageRows(cluster);
  return html`
    ${ui}
    <table data-testid="replicas">
      <caption>Consensus replicas <span class="muted">(lag: entries behind the leader's log)</span></caption>
      <thead><tr><th>replica</th><th>role</th><th>member</th><th>term</th><th>commit</th><th>last</th><th>applied</th><th>lag</th><th>log</th><th>heartbeat</th><th>DOWN since</th><th></th></tr></thead>
      <tbody>
        ${replicas.map(
          (r) => html`<tr key=${r.id} data-replica=${r.id} data-role=${r.role} data-member=${r.member} class=${r.live ? '' : 'down'}>
            <td class="id">${r.id}</td>
            <td><${RoleBadge} role=${r.role} /></td>
            <td>${r.member}</td>
            <td class="num">${fmt(r.term)}</td>
            <td class="num">${fmt(r.commitIndex)}</td>
            <td class="num">${fmt(r.lastIndex)}</td>
            <td class="num">${fmt(r.appliedIndex)}</td>
            <td class="num">${leader && r.lastIndex !== undefined ? fmt(Math.max(0, leader.lastIndex - r.lastIndex)) : '–'}</td>
            <td class="num">${formatBytes(r.logBytes)}</td>
            <td class="num">${r.ageMs === null ? '–' : formatAge(r.ageMs)}</td>
            <td>${downSince(r, now)}</td>
            <td class="actions">
              ${r.member === 'learner' ? html`<button disabled=${busy} onClick=${() => act(ACTIONS.promote(r.id))}>Promote…</button>` : null}
              ${r.member === 'voter' || r.member === 'learner' ? html`<button class="danger" disabled=${busy} data-testid=${`remove-${r.id}`} onClick=${() => act(ACTIONS.remove(r.id, 'replica'))}>Remove…</button>` : null}
            </td>
          </tr>`,
        )}
      </tbody>
    </table>
    <table data-testid="storage">
      <caption>Storage nodes <span class="muted">(lag: committed entries not yet applied)</span></caption>
      <thead><tr><th>node</th><th>state</th><th>member</th><th>applied</th><th>known commit</th><th>lag</th><th>keys</th><th>data</th><th>heartbeat</th><th>DOWN since</th><th></th></tr></thead>
      <tbody>
        ${storage.map(
          (n) => html`<tr key=${n.id} data-node=${n.id} class=${n.live ? '' : 'down'}>
            <td class="id">${n.id}</td>
            <td><${RoleBadge} role=${n.live ? 'live' : 'down'} /></td>
            <td>${n.member}</td>
            <td class="num">${fmt(n.appliedIndex)}</td>
            <td class="num">${fmt(n.knownCommitIndex)}</td>
            <td class="num">${leader && n.appliedIndex !== undefined ? fmt(Math.max(0, leader.commitIndex - n.appliedIndex)) : '–'}</td>
            <td class="num">${fmt(n.keys)}</td>
            <td class="num">${formatBytes(n.dataBytes)}</td>
            <td class="num">${n.ageMs === null ? '–' : formatAge(n.ageMs)}</td>
            <td>${downSince(n, now)}</td>
            <td class="actions">${n.member === 'member' ? html`<button class="danger" disabled=${busy} onClick=${() => act(ACTIONS.remove(n.id, 'storage'))}>Remove…</button>` : null}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    <table data-testid="gateways">
      <caption>Gateways <span class="muted">(this one: gateways send no heartbeats, so others are not visible here)</span></caption>
      <thead><tr><th>gateway</th><th>state</th><th>TLV conns</th><th>HTTP conns</th><th>RESP conns</th><th>held for clients</th><th>RSS</th><th>uptime</th></tr></thead>
      <tbody>
        <tr data-gateway=${cluster.gateway}>
          <td class="id">${cluster.gateway}</td>
          <td><${RoleBadge} role="live" /></td>
          <td class="num">${fmt(gateway?.connections.tlv)}</td>
          <td class="num">${fmt(gateway?.connections.http)}</td>
          <td class="num">${fmt(gateway?.connections.resp)}</td>
          <td class="num">${formatBytes(gateway?.pendingBytes)}</td>
          <td class="num">${formatBytes(gateway?.rssBytes)}</td>
          <td class="num">${gateway ? formatAge(gateway.uptimeS * 1000) : '–'}</td>
        </tr>
      </tbody>
    </table>`;
}
