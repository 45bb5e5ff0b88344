// app.js: the review page's wiring — sign-in, routing, connection callbacks into the store and views, commands.

import { Connection } from './connection.js';
import { ProposalList, ProposalModel, reviewPermissions, humanStatus, setStatusPredicates, statusSentence } from './store.js';
import { ConsoleView, TimelineView, renderCommitted, renderPresence, renderProposalList, statusBadge, el } from './views.js';

const TOKEN_KEY = 'medic.token';
const $ = (id) => document.getElementById(id);

/** Human messages for the error codes a reviewer can meet (README §5). */
const ERROR_TEXT = {
  stale_revision: 'The proposal moved on to a newer revision while you were looking. The page now shows the current revision — please review it again.',
  invalid_state: 'That does not apply in the proposal\u2019s current state.',
  already_reviewed: 'You already reviewed this revision.',
  forbidden: 'Your role is not allowed to do that (and an author\u2019s own approval never counts).',
  not_found: 'This proposal does not exist (or no longer exists).',
  rate_limited: 'Too many commands at once; wait a moment and try again.',
  store_unavailable: 'The server cannot store anything right now; try again shortly.',
  invalid_message: 'The server refused the request as malformed.',
  offline: 'Not connected; try again when the connection is live.',
  disconnected: 'The connection dropped before the server answered.',
  unauthenticated: 'Your sign-in is no longer valid.',
};

function errorText(err) {
  const known = ERROR_TEXT[err?.code];
  return known ? `${known}${err.message && err.code !== 'offline' ? ` (${err.message})` : ''}` : `Error: ${err?.message ?? err}`;
}

const state = {
  me: null,
  conn: null,
  connState: { state: 'idle' },
  list: new ProposalList(),
  openId: null,
  model: null,
  busy: false,   // a review command is in flight
  proposalsHead: null,   // the `proposals` topic's head when subscribed (null until the ack)
  /**
   * The outcome of the last command, bound to the state it speaks about: `{text, kind, proposal, revision,
   * statuses}`. It is shown only while the open proposal is that one, at that revision, in one of those
   * statuses; the first render after the state moves on drops it (no "Rollback requested." after rolled_back).
   */
  notice: null,
  noticeLog: [],   // every notice shown, for the browser tests (medicPage.notices())
  /** The page opens a proposal by itself at most once per sign-in, and never after the user chose one. */
  autoOpenDone: false,
};

let timeline, consoleView, countdownTimer = null, renderQueued = false;

// ---- sign-in ----

/** Reads `#NAME=…` from the fragment and removes it from the URL (it must not linger in the address bar,
 *  history or a copied link). */
function takeFromFragment(name) {
  const params = new URLSearchParams(location.hash.slice(1));
  const value = params.get(name);
  if (!value) return null;
  params.delete(name);
  const rest = params.toString();
  history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
  return value;
}

/** `#token=…` is what `medic serve` prints at first start. */
function takeTokenFromURL() {
  return takeFromFragment('token');
}

/** `#login=CODE` is what `medic login` prints: a single-use code exchanged for a session token. */
async function signInWithCode(code) {
  try {
    const response = await fetch('/api/v1/session', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code }),
    });
    const body = await response.json().catch(() => ({}));
    if (response.ok && typeof body.token === 'string') { signIn(body.token); return; }
    showSignIn(body?.error?.message ?? 'This sign-in link did not work. Run `medic login` on the server for a new one.');
  } catch {
    showSignIn('The server could not be reached to use this sign-in link. Try again.');
  }
}

function showSignIn(message = '') {
  $('app').hidden = true;
  $('identity').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message;
  $('token-input').focus();
}

function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  $('signin').hidden = true;
  $('app').hidden = false;   // the shell shows the connection state while we connect
  connect(token);
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  state.conn?.stop();
  state.conn = null;
  state.me = null;
  closeProposal();
  state.list.clear();
  showSignIn('');
  setConnState({ state: 'idle' });
}

// ---- connection ----

function connect(token) {
  state.conn?.stop();
  // A new connection replays every topic from 0: start from empty state, not on top of the old one.
  seen.clear();
  state.proposalsHead = null;
  state.list.clear();
  state.model = null;
  state.openId = null;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const conn = new Connection({
    url: `${scheme}://${location.host}/ws`,
    token,
    callbacks: {
      onState: setConnState,
      onWelcome,
      onEvent,
      onSubscribed: (topic, ack) => {
        if (topic !== 'proposals') return;
        state.proposalsHead = typeof ack?.head === 'number' ? ack.head : 0;
        maybeAutoOpen(null);
      },
      onPresence: (p) => {
        if (state.model && p.topic === `proposal:${state.model.id}`) { state.model.setPresence(p.members); queueRender(); }
      },
      onTopicReset: (topic) => {
        if (topic === 'proposals') { seen.delete(topic); state.list.clear(); queueRender(); }
        else if (state.model && topic === `proposal:${state.model.id}`) resetModel(state.model.id);
      },
      onTopicError: (topic, err) => {
        if (state.model && topic === `proposal:${state.model.id}`) $('p-error').textContent = errorText(err);
      },
    },
  });
  state.conn = conn;
  conn.subscribe('proposals');
  const routed = routeId();
  if (routed) openProposal(routed);
  conn.start();
}

function onWelcome(w) {
  state.me = { principal: w.principal, role: w.role };
  $('identity-name').textContent = w.principal;
  $('identity-role').textContent = w.role;
  $('identity-role').dataset.role = w.role;
  $('identity').hidden = false;
  $('signin').hidden = true;
  $('app').hidden = false;
  loadMeta();
  queueRender();
}

/** What each status allows, from the server (GET /api/v1/meta), so the buttons follow its rules. */
async function loadMeta() {
  try {
    const response = await fetch('/api/v1/meta', { headers: { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}` } });
    if (!response.ok) return;
    setStatusPredicates((await response.json()).statuses);
    queueRender();
  } catch { /* the buttons stay as strict as without it; the next welcome tries again */ }
}

function onEvent(ev) {
  if (typeof ev.seq === 'number') recordSeen(ev.topic, ev.seq);
  if (ev.topic === 'proposals') {
    if (state.list.apply(ev)) {
      maybeAutoOpen(ev);
      queueRender();
    }
    return;
  }
  const model = state.model;
  if (ev.kind === 'fix_delta') fixDeltaCount++;
  if (!model || ev.topic !== `proposal:${model.id}`) return;
  applyChanges(model.apply(ev));
  if (ev.kind === 'sandbox_ready' && ev.data?.base_commit) fetchBase(model, ev.data.revision);
  queueRender();
}

function applyChanges(changes) {
  for (const change of changes) {
    if (change.type === 'append') timeline.append(change.entry);
    else if (change.type === 'update') timeline.update(change.entry);
    else if (change.type === 'console') consoleView.append(change.lines);
  }
}

/**
 * Fetches the repository's files at a revision's base commit (GET …/revisions/{n}/base) so that modified files
 * show real diffs and the review panel can show what will be committed. Once per revision and proposal.
 */
async function fetchBase(model, revision) {
  const requested = fetchedBases.get(model) ?? new Set();
  fetchedBases.set(model, requested);
  if (!revision || requested.has(revision)) return;
  requested.add(revision);
  try {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const response = await fetch(`/api/v1/proposals/${encodeURIComponent(model.id)}/revisions/${revision}/base`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    if (!response.ok) { requested.delete(revision); return; }
    const base = await response.json();
    if (state.model !== model) return;  // another proposal is open now
    applyChanges(model.setBase(revision, base));
    queueRender();
  } catch {
    requested.delete(revision);  // tried again with the next sandbox_ready or reopen
  }
}
/** Per open proposal's model: the revisions whose base was asked for (a reopened proposal asks again). */
const fetchedBases = new WeakMap();

/**
 * Every seq processed per topic, for the browser tests and for debugging in the console
 * (`medicPage.seenSeqs('proposal:p_…')`): after a reconnect it must still read 1, 2, 3, … with
 * no hole and no repeat. Bounded so a long-open tab does not grow without limit.
 */
const seen = new Map();
function recordSeen(topic, seq) {
  const list = seen.get(topic) ?? [];
  if (list.length < 100000) list.push(seq);
  seen.set(topic, list);
}
window.medicPage = Object.freeze({
  seenSeqs: (topic) => [...(seen.get(topic) ?? [])],
  connectionState: () => state.connState.state,
  notices: () => [...state.noticeLog],
  fixDeltas: () => fixDeltaCount,
  // The extensions the server agreed for the current socket (permessage-deflate, RFC 7692), for the tests.
  socketExtensions: () => state.conn?.socket?.extensions ?? null,
});
let fixDeltaCount = 0;

/**
 * Opens a proposal without being asked when nothing is open and the user has not chosen one: the
 * demo's (filed by `demo-bot`) as soon as it appears, or the only proposal there is — so whoever
 * opens the link `medic serve` printed watches the demo from its first step.
 */
function maybeAutoOpen(ev) {
  if (state.autoOpenDone || state.model || routeId()) return;
  // "The only one" is known once the list's replay is complete (up to the head the subscription reported).
  const seqs = seen.get('proposals') ?? [];
  const replayed = state.proposalsHead !== null && (state.proposalsHead === 0 || (seqs.at(-1) ?? 0) >= state.proposalsHead);
  const only = replayed && state.list.byId.size === 1 ? state.list.byId.keys().next().value : null;
  const demo = ev?.data?.author === 'demo-bot' && ev.data.status === 'proposed' ? ev.data.id : null;
  const id = demo ?? only;
  if (!id) return;
  state.autoOpenDone = true;
  openProposal(id, { replace: true });
}

const STATE_TEXT = { idle: 'Not connected', connecting: 'Connecting…', live: 'Live', unauthorized: 'Signed out' };

function setConnState(s) {
  state.connState = s;
  const box = $('conn-state');
  box.dataset.state = s.state;
  clearInterval(countdownTimer);
  countdownTimer = null;
  const paint = () => {
    let text = STATE_TEXT[s.state] ?? s.state;
    if (s.state === 'reconnecting' || s.state === 'offline') {
      const secs = Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000));
      text = s.state === 'offline' ? `Offline — retrying in ${secs}s` : `Reconnecting in ${secs}s`;
    }
    $('conn-text').textContent = text;
  };
  paint();
  if (s.state === 'reconnecting' || s.state === 'offline') countdownTimer = setInterval(paint, 1000);
  $('conn-retry').hidden = !(s.state === 'reconnecting' || s.state === 'offline');
  if (s.state === 'unauthorized') {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn('The server did not accept this token. Check it and sign in again.');
  }
  queueRender();
}

// ---- routing ----

/** The open proposal lives in the fragment (`#p=<id>`) so it survives reloads and can be linked. */
function routeId() {
  const id = new URLSearchParams(location.hash.slice(1)).get('p');
  return id && /^[A-Za-z0-9_-]{1,64}$/.test(id) ? id : null;
}

function openProposal(id, { replace = false } = {}) {
  if (!replace) state.autoOpenDone = true;   // the user chose: never switch under them
  if (state.model?.id === id) return;
  closeProposal();
  if (location.hash !== `#p=${id}`) history[replace ? 'replaceState' : 'pushState'](null, '', `#p=${id}`);
  resetModel(id);
  state.conn?.subscribe(`proposal:${id}`);
}

function closeProposal() {
  if (state.model) state.conn?.unsubscribe(`proposal:${state.model.id}`);
  state.model = null;
  state.openId = null;
  queueRender();
}

/** A fresh model and empty views for `id` (also after the server reset the topic). */
function resetModel(id) {
  seen.delete(`proposal:${id}`);
  state.model = new ProposalModel(id);
  state.openId = id;
  timeline.reset([]);
  consoleView.reset([]);
  $('p-error').textContent = '';
  state.notice = null;
  $('review-message').textContent = '';
  $('comment-message').textContent = '';
  $('review-comment').value = '';
  queueRender();
}

// ---- rendering (batched per frame: a replay of thousands of events repaints once) ----

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

function render() {
  const proposals = state.list.sorted();
  renderProposalList($('proposal-list'), proposals, state.openId, openProposal);
  $('proposal-count').textContent = proposals.length ? `(${proposals.length})` : '';
  $('proposal-list-empty').hidden = proposals.length > 0;

  const m = state.model;
  $('placeholder').hidden = !!m;
  $('proposal').hidden = !m;
  if (!m) { document.title = 'Medic — review'; return; }

  const summary = state.list.byId.get(m.id);
  $('p-title').textContent = m.info?.title ?? summary?.title ?? m.id;
  const badge = statusBadge(m.status ?? summary?.status, 'proposal-status');
  badge.id = 'p-status';
  $('p-status').replaceWith(badge);
  const fixing = m.status === 'fixing';
  const attemptEl = $('p-attempt');
  attemptEl.textContent = `Attempt ${m.attempt}/${m.maxAttemptsShown}`;
  attemptEl.classList.toggle('active', fixing);
  attemptEl.hidden = m.attempt === 0 && !fixing;
  const meta = [m.id, m.info?.author && `by ${m.info.author}`, (m.info?.repo ?? summary?.repo) && `repo ${m.info?.repo ?? summary?.repo}`, m.revision && `revision ${m.revision}`].filter(Boolean);
  $('p-meta').textContent = meta.join(' · ');
  $('p-description').textContent = m.info?.description ?? '';
  renderPresence($('presence'), m.presence, state.me);
  timeline.collapseOlderThan(m.revision);
  document.title = `${humanStatus(m.status)} · ${m.info?.title ?? m.id} — Medic`;
  const announcement = `${m.info?.title ?? m.id}: ${humanStatus(m.status)}${fixing ? `, attempt ${m.attempt} of ${m.maxAttemptsShown}` : ''}`;
  if ($('announce').textContent !== announcement) $('announce').textContent = announcement;
  renderReviewPanel(m);
}

/** True while `notice` still speaks about the open proposal's current state. */
function noticeHolds(notice, m) {
  return !!(notice && m && notice.proposal === m.id && notice.revision === m.revision && notice.statuses.includes(m.status));
}

function renderReviewPanel(m) {
  const live = state.connState.state === 'live';
  const perms = reviewPermissions({ me: state.me, model: m, live });
  const revisionLine = $('review-revision');
  revisionLine.textContent = m.revision ? `Revision ${m.revision}` : '';
  revisionLine.dataset.revision = String(m.revision || '');
  if (m.revision) revisionLine.append(' · ', el('span', { class: 'muted small', text: 'your review applies to this revision' }));

  const reviews = m.currentReviews();
  // The quorum is known from review events; before the first one, Medic's list summary may carry it.
  const summaryQuorum = state.list.byId.get(m.id)?.quorum;
  const quorum = reviews.quorum ?? m.quorum ?? (typeof summaryQuorum === 'number' ? summaryQuorum : null);
  const count = reviews.approvals.length;
  $('quorum-text').textContent = quorum
    ? `${count} of ${quorum} approval${quorum === 1 ? '' : 's'}`
    : (count ? `${count} approval${count === 1 ? '' : 's'}` : 'No approvals yet');
  $('quorum-text').dataset.approvals = String(count);
  $('quorum-text').dataset.quorum = String(quorum ?? '');
  $('quorum-fill').style.width = quorum ? `${Math.min(100, (100 * count) / quorum)}%` : '0%';
  $('approvers').replaceChildren(...reviews.approvals.map((p) => el('li', { class: 'approver', dataset: { testid: 'approver', principal: p } }, '✓ ', p)));

  const disabled = !perms.canReview || state.busy;
  $('btn-approve').disabled = disabled || !perms.canApprove;
  $('btn-reject').disabled = state.busy || !perms.canReject;
  $('btn-request').disabled = disabled;
  $('review-comment').disabled = !perms.canReview && !perms.canReject && !perms.canWithdraw;
  $('btn-withdraw').hidden = !perms.canWithdraw;
  $('btn-withdraw').disabled = state.busy;
  $('review-why').textContent = perms.why || perms.approveWhy;
  $('review-panel').dataset.canReview = String(perms.canReview);
  $('btn-autofix').hidden = !perms.canAutoFix;
  $('btn-autofix').disabled = state.busy;
  $('btn-rollback').hidden = !perms.canRollback;
  $('btn-rollback').disabled = state.busy;
  $('comment-send').disabled = !live;

  $('review-state').textContent = statusSentence(m);
  $('review-state').dataset.status = m.status ?? '';
  if (state.notice && !state.busy && !noticeHolds(state.notice, m)) state.notice = null;
  const message = $('review-message');
  const text = state.busy ? 'Sending…' : (state.notice?.text ?? '');
  if (message.textContent !== text) message.textContent = text;
  message.dataset.kind = state.busy ? 'pending' : (state.notice?.kind ?? '');
  if (rollbackDialog.open && !(confirming === 'withdraw' ? perms.canWithdraw : perms.canRollback)) closeRollbackDialog();
  renderCommitted($('committed-view'), $('committed-summary'), m.committed(m.revision));
}

// ---- commands ----

function setMessage(id, text, kind) {
  const p = $(id);
  p.textContent = text;
  p.dataset.kind = kind;
}

/**
 * Shows the outcome of a command until the proposal leaves `statuses` (default: the status it is in now)
 * or its revision changes.
 */
function setNotice(text, kind, statuses) {
  const m = state.model;
  state.notice = m ? { text, kind, proposal: m.id, revision: m.revision, statuses: statuses ?? [m.status] } : null;
  if (m) state.noticeLog.push(text);
  if (m) renderReviewPanel(m);
}

/**
 * Sends a review/auto-fix/rollback command and reports its outcome in the panel. `success(ack)` returns
 * `[text, statuses]`: the message and the statuses it stays true in.
 */
async function runCommand(msg, success) {
  if (state.busy || !state.conn) return;
  const m = state.model;
  state.busy = true;
  renderReviewPanel(m);
  let outcome;
  try {
    const ack = await state.conn.command(msg);
    outcome = [...success(ack), 'ok'];
    if (msg.type !== 'auto_fix' && msg.type !== 'rollback') $('review-comment').value = '';
  } catch (err) {
    outcome = [errorText(err), undefined, 'error'];
    if (err.code === 'stale_revision') $('review-revision').focus?.();
  } finally {
    state.busy = false;
  }
  if (state.model !== m) return;   // another proposal is open now: the outcome is not about it
  const [text, statuses, kind] = outcome;
  setNotice(text, kind, statuses);
}

function review(verdict) {
  const m = state.model;
  if (!m) return;
  // Bind the review to the revision on screen, not whatever the model may hold a moment later.
  const revision = Number($('review-revision').dataset.revision);
  const comment = $('review-comment').value.trim();
  if (verdict !== 'approve' && !comment) {
    setNotice(verdict === 'reject' ? 'Write a comment saying why you reject it.' : 'Write a comment saying what should change.', 'error');
    $('review-comment').focus();
    return;
  }
  const msg = { type: verdict, proposal: m.id, revision };
  if (comment) msg.comment = comment;
  runCommand(msg, (ack) => {
    if (verdict === 'approve') {
      // The review event precedes the ack, so the model already knows the approvals if the ack omits them.
      const known = state.model?.id === m.id ? m.reviews.get(revision) : undefined;
      const count = (ack.approvals ?? known?.approvals ?? []).length;
      const q = ack.quorum ?? known?.quorum;
      const progress = q ? ` (${count} of ${q})` : '';
      return ack.status === 'approved' || ack.status === 'applying' || ack.status === 'applied'
        ? [`Approved revision ${revision}: quorum reached${progress}, applying.`, ['awaiting_review', 'approved', 'applying']]
        : [`Approved revision ${revision}${progress}.`, ['awaiting_review']];
    }
    return verdict === 'reject'
      ? [`Rejected revision ${revision}.`, ['awaiting_review', 'rejected']]
      : [`Requested changes on revision ${revision}; a new fix attempt follows.`, ['awaiting_review', 'changes_requested', 'analyzing']];
  });
}

// ---- rollback confirmation ----

const rollbackDialog = $('confirm-rollback');
let rollbackOpener = null;
/** What the confirmation dialog is asking about: 'rollback' or 'withdraw' (one dialog, two questions). */
let confirming = 'rollback';

function openRollbackDialog(kind = 'rollback') {
  const m = state.model;
  if (!m || rollbackDialog.open) return;
  confirming = kind;
  const withdraw = kind === 'withdraw';
  $('confirm-rollback-title').textContent = withdraw ? 'Withdraw this proposal?' : 'Roll back this change?';
  $('confirm-rollback-text').hidden = withdraw;
  $('confirm-withdraw-text').hidden = !withdraw;
  $('confirm-rollback-ok').textContent = withdraw ? 'Withdraw' : 'Roll back';
  rollbackDialog.querySelector('.muted.small').textContent = withdraw ? 'Enter withdraws · Escape cancels' : 'Enter rolls back · Escape cancels';
  rollbackOpener = document.activeElement;
  $('confirm-rollback-commit').textContent = m.applied?.commit ?? 'the applied commit';
  $('confirm-rollback-repo').textContent = m.info?.repo ?? state.list.byId.get(m.id)?.repo ?? 'the repository';
  rollbackDialog.showModal();
  $('confirm-rollback-ok').focus();
}

function closeRollbackDialog() {
  if (rollbackDialog.open) rollbackDialog.close();
  const back = rollbackOpener;
  rollbackOpener = null;
  // Focus returns to where it was (the Roll back button), or to the panel if that button is gone.
  if (back && back.isConnected && !back.hidden && !back.disabled) back.focus();
  else $('review-heading').focus();
}

function confirmRollback() {
  const m = state.model;
  closeRollbackDialog();
  if (!m) return;
  if (confirming === 'withdraw') {
    const reason = $('review-comment').value.trim();
    const msg = { type: 'withdraw', proposal: m.id };
    if (reason) msg.reason = reason;
    runCommand(msg, () => ['Withdrawn.', []]);
    return;
  }
  runCommand({ type: 'rollback', proposal: m.id }, () => ['Rollback requested.', ['applied']]);
}

function bindUI() {
  timeline = new TimelineView($('timeline'));
  consoleView = new ConsoleView($('console'), $('console-follow'), $('console-jump'));

  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('token-input').value.trim();
    if (!token) { $('signin-error').textContent = 'Enter a token.'; return; }
    $('token-input').value = '';
    signIn(token);
  });
  $('sign-out').addEventListener('click', signOut);
  $('conn-retry').addEventListener('click', () => state.conn?.retryNow());
  $('btn-approve').addEventListener('click', () => review('approve'));
  $('btn-reject').addEventListener('click', () => review('reject'));
  $('btn-request').addEventListener('click', () => review('request_changes'));
  $('btn-autofix').addEventListener('click', () => state.model && runCommand({ type: 'auto_fix', proposal: state.model.id },
    () => ['Auto-fix started: a new attempt is being written.', ['tests_failed', 'analyzing', 'fixing']]));
  $('btn-rollback').addEventListener('click', () => state.model && openRollbackDialog('rollback'));
  $('btn-withdraw').addEventListener('click', () => state.model && openRollbackDialog('withdraw'));
  $('confirm-rollback-cancel').addEventListener('click', () => closeRollbackDialog());
  $('confirm-rollback-ok').addEventListener('click', () => confirmRollback());
  rollbackDialog.addEventListener('cancel', (e) => { e.preventDefault(); closeRollbackDialog(); });   // Escape
  rollbackDialog.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && e.target !== $('confirm-rollback-cancel')) { e.preventDefault(); confirmRollback(); }
    else if (e.key === 'Tab') {
      // Focus stays in the dialog: Tab and Shift+Tab cycle through its buttons.
      const items = [...rollbackDialog.querySelectorAll('button:not([disabled])')];
      const i = items.indexOf(document.activeElement);
      e.preventDefault();
      items[(i + (e.shiftKey ? items.length - 1 : 1)) % items.length]?.focus();
    }
  });
  $('comment-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = $('comment-text').value.trim();
    if (!text || !state.model || !state.conn) { setMessage('comment-message', 'Write something first.', 'error'); return; }
    setMessage('comment-message', 'Posting…', 'pending');
    try {
      await state.conn.command({ type: 'comment', proposal: state.model.id, text });
      $('comment-text').value = '';
      setMessage('comment-message', 'Comment posted.', 'ok');
    } catch (err) {
      setMessage('comment-message', errorText(err), 'error');
    }
  });
  window.addEventListener('hashchange', () => {
    const id = routeId();
    state.autoOpenDone = true;
    if (id && state.conn) openProposal(id);
    else if (!id) closeProposal();
  });
  window.addEventListener('popstate', () => {
    const id = routeId();
    if (id && state.conn) openProposal(id);
  });
  window.addEventListener('online', () => state.conn?.retryNow());
}

function main() {
  bindUI();
  const code = takeFromFragment('login');
  const fromURL = takeTokenFromURL();
  const token = fromURL ?? sessionStorage.getItem(TOKEN_KEY);
  if (code) signInWithCode(code);
  else if (token) signIn(token);
  else showSignIn();
  // A link pasted into a tab that already shows the page changes only the fragment.
  window.addEventListener('hashchange', () => {
    const code = takeFromFragment('login');
    const token = code ? null : takeTokenFromURL();
    if (!code && !token) return;
    if (code) signInWithCode(code); else signIn(token);
  });
}

main();
