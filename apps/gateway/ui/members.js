// Cairn web console: membership changes through POST/DELETE /v1/cluster/members (docs/http.md),
// each confirmed in a modal dialog first.
import { useRef, useState } from 'preact/hooks';
import { html, sendJson } from './api.js';

/**
 * A confirmation dialog: `ask(title, text)` resolves true when confirmed, false when cancelled.
 * Answers `[dialog element, ask]`.
 */
export function useConfirm() {
  const ref = useRef(null);
  const [what, setWhat] = useState({ title: '', text: '' });
  const resolver = useRef(null);
  const ask = (title, text) =>
    new Promise((resolve) => {
      resolver.current = resolve;
      setWhat({ title, text });
      queueMicrotask(() => ref.current?.showModal());
    });
  const close = (ok) => {
    ref.current?.close();
    resolver.current?.(ok);
    resolver.current = null;
  };
  const dialog = html`
    <dialog ref=${ref} class="confirm" data-testid="confirm-dialog" onCancel=${() => close(false)}>
      <h3>${what.title}</h3>
      <p>${what.text}</p>
      <div class="row end">
        <button type="button" onClick=${() => close(false)}>Cancel</button>
        <button type="button" class="danger" data-testid="confirm-ok" onClick=${() => close(true)}>Confirm</button>
      </div>
    </dialog>`;
  return [dialog, ask];
}

/** A member id as the gateway accepts it; `-` escaped for the `v` flag browsers give `pattern`. */
const MEMBER_ID_PATTERN = '[A-Za-z0-9_\\-]{1,64}';

/** The request and what the dialog says about it. */
export const ACTIONS = {
  add: (id, kind) => ({
    title: `Add ${kind === 'storage' ? 'storage node' : 'replica'} ${id}?`,
    text:
      kind === 'storage'
        ? `${id} joins the configuration's storage nodes (start it first with --join).`
        : `${id} (started first with --join) joins as a learner, catches up, then is promoted to voter. The request waits up to consensus.memberCatchUpTimeoutMs.`,
    run: () => sendJson('POST', '/v1/cluster/members', { id, kind }),
  }),
  promote: (id) => ({
    title: `Promote learner ${id}?`,
    text: `Asks again to add ${id}: once it has caught up with the leader it becomes a voter (the quorum grows with it).`,
    run: () => sendJson('POST', '/v1/cluster/members', { id, kind: 'replica' }),
  }),
  remove: (id, kind) => ({
    title: `Remove ${kind === 'storage' ? 'storage node' : 'replica'} ${id}?`,
    text:
      kind === 'storage'
        ? `${id} leaves the configuration's storage nodes; the gateway stops reading from it.`
        : `${id} leaves the Raft configuration (a leader hands over first). Removing voters can cost the cluster its quorum: keep a majority of the remaining voters up.`,
    run: () => sendJson('DELETE', `/v1/cluster/members/${encodeURIComponent(id)}${kind === 'storage' ? '?kind=storage' : ''}`),
  }),
};

/**
 * Runs membership actions one at a time, each after confirmation. Answers `[ui, act]`: `ui` holds
 * the dialog and the last outcome, `act(action)` starts one (an ACTIONS entry).
 */
export function useMemberActions(onChanged) {
  const [dialog, ask] = useConfirm();
  const [state, setState] = useState({ busy: null, outcome: null });
  const act = async (action) => {
    if (state.busy || !(await ask(action.title, action.text))) return;
    setState({ busy: action.title, outcome: null });
    try {
      const r = await action.run();
      setState({ busy: null, outcome: { ok: true, text: `${r.message || 'done'} (configuration at index ${r.confIndex})` } });
    } catch (e) {
      setState({ busy: null, outcome: { ok: false, text: `${e.code ?? 'ERROR'}: ${e.message}` } });
    }
    onChanged?.();
  };
  const ui = html`
    ${dialog}
    ${state.busy ? html`<p class="muted" data-testid="member-busy">${state.busy.replace(/\?$/, '')}… (waiting for the change to commit)</p>` : null}
    ${state.outcome ? html`<p class=${state.outcome.ok ? 'okText' : 'badText'} data-testid="member-outcome">${state.outcome.text}</p>` : null}`;
  return [ui, act, !!state.busy];
}

/** The configuration in effect and a form to add a member. */
export function Members({ cluster, onChanged }) {
  const [ui, act, busy] = useMemberActions(onChanged);
  const [id, setId] = useState('');
  const [kind, setKind] = useState('replica');
  const m = cluster?.members;
  const submit = (e) => {
    e.preventDefault();
    if (/^[A-Za-z0-9_-]{1,64}$/.test(id)) act(ACTIONS.add(id, kind));
  };
  return html`
    ${m
      ? html`<dl class="conf" data-testid="conf">
          <dt>voters</dt><dd>${m.voters.join(', ') || '–'}</dd>
          <dt>learners</dt><dd>${m.learners.join(', ') || '–'}</dd>
          <dt>storage</dt><dd>${m.storage.join(', ') || '–'}</dd>
          <dt>config index</dt><dd>${m.confIndex} ${m.committed ? '(committed)' : html`<span class="badText">(not yet committed)</span>`}</dd>
        </dl>`
      : html`<p class="muted">no live replica has reported the configuration</p>`}
    <form class="row" onSubmit=${submit}>
      <input placeholder="id, e.g. c4" value=${id} onInput=${(e) => setId(e.currentTarget.value.trim())} pattern=${MEMBER_ID_PATTERN} required aria-label="member id" data-testid="member-id" />
      <select value=${kind} onChange=${(e) => setKind(e.currentTarget.value)} aria-label="member kind">
        <option value="replica">replica (learner → voter)</option>
        <option value="storage">storage node</option>
      </select>
      <button type="submit" disabled=${busy}>Add…</button>
    </form>
    <p class="muted small">Remove and promote: the buttons on each row of the topology. Start a new process with <code>--join</code> before adding it.</p>
    ${ui}`;
}
