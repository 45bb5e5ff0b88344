// app.js: the page's shell — one connection, one event store and one router shared by the views of pages/.
//
// The shell signs in, keeps the connection and the identity, records every event's seq, and hands each
// connection callback to every view; the router decides which view owns the main area. A view (see
// pages/index.js) is `{name, routes, section, enter(match), leave(), reset(), render(), renderAlways?(),
// onEvent?(ev), onSubscribed?(topic, ack), onPresence?(p), onTopicReset?(topic), onTopicError?(topic, err)}`.

import { Connection } from './connection.js';
import { ProposalList, setStatusPredicates } from './store.js';
import { HashHistory, Router } from './router.js';
import { PAGES } from './pages/index.js';
import { createSignIn } from './pages/signin.js';

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

const router = new Router();

/** What every view shares: the connection, who is signed in, the event store, navigation and rendering. */
const ctx = {
  $,
  me: null,
  conn: null,
  connState: { state: 'idle' },
  store: {
    list: new ProposalList(),
    /**
     * Every seq processed per topic, for the browser tests and for debugging in the console
     * (`medicPage.seenSeqs('proposal:p_…')`): after a reconnect it must still read 1, 2, 3, … with
     * no hole and no repeat. Bounded so a long-open tab does not grow without limit.
     */
    seen: new Map(),
    proposalsHead: null,   // the `proposals` topic's head when subscribed (null until the ack)
    /** The page opens a proposal by itself at most once per sign-in, and never after the user chose one. */
    autoOpenDone: false,
  },
  errorText,
  token: () => sessionStorage.getItem(TOKEN_KEY),
  route: () => hashHistory.current,
  href: (name, params) => router.href(name, params),
  go: (name, params, opts) => hashHistory.go(router.href(name, params), opts),
  queueRender,
};

const views = PAGES.map((make) => make(ctx));
/** The view that answers each route name ('not-found' included). */
const owner = new Map();
for (const view of views) for (const route of view.routes) { router.add(route); owner.set(route.name, view); }
owner.set('not-found', views.find((v) => v.name === 'not-found'));
let active = null;
const hashHistory = new HashHistory(router, showRoute);
const signin = createSignIn(ctx, { onToken: signIn });
let countdownTimer = null, renderQueued = false, fixDeltaCount = 0;

// ---- routes ----

/** Hands the main area to the view that owns `match`'s route. */
function showRoute(match, { replace, fromLocation }) {
  // The user went somewhere (a click, a typed or pasted address, back/forward): never open anything for them.
  if (!replace && (!fromLocation || match.name !== 'home' || active)) ctx.store.autoOpenDone = true;
  const next = owner.get(match.name);
  if (active && active !== next) active.leave();
  active = next;
  next.enter(match);
  queueRender();
}

// ---- sign-in ----

function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  $('signin').hidden = true;
  $('app').hidden = false;   // the shell shows the connection state while we connect
  connect(token);
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  ctx.conn?.stop();
  ctx.conn = null;
  ctx.me = null;
  active?.leave();
  for (const view of views) view.reset();
  active = null;
  hashHistory.current = null;
  ctx.store.list.clear();
  signin.show('');
  setConnState({ state: 'idle' });
}

// ---- connection ----

function connect(token) {
  ctx.conn?.stop();
  // A new connection replays every topic from 0: start from empty state, not on top of the old one.
  ctx.store.seen.clear();
  ctx.store.proposalsHead = null;
  ctx.store.list.clear();
  for (const view of views) view.reset();
  const each = (method, ...args) => { for (const view of views) view[method]?.(...args); };
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const conn = new Connection({
    url: `${scheme}://${location.host}/ws`,
    token,
    callbacks: {
      onState: setConnState,
      onWelcome,
      onEvent,
      onSubscribed: (topic, ack) => {
        if (topic === 'proposals') ctx.store.proposalsHead = typeof ack?.head === 'number' ? ack.head : 0;
        each('onSubscribed', topic, ack);
      },
      onPresence: (p) => each('onPresence', p),
      onTopicReset: (topic) => each('onTopicReset', topic),
      onTopicError: (topic, err) => each('onTopicError', topic, err),
    },
  });
  ctx.conn = conn;
  conn.subscribe('proposals');
  // The route's view subscribes what it shows (a deep link counts as the user's choice).
  active = null;
  hashHistory.current = null;
  hashHistory.sync({ force: true });
  conn.start();
}

function onWelcome(w) {
  ctx.me = { principal: w.principal, role: w.role };
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
    const response = await fetch('/api/v1/meta', { headers: { Authorization: `Bearer ${ctx.token()}` } });
    if (!response.ok) return;
    setStatusPredicates((await response.json()).statuses);
    queueRender();
  } catch { /* the buttons stay as strict as without it; the next welcome tries again */ }
}

function onEvent(ev) {
  if (typeof ev.seq === 'number') recordSeen(ev.topic, ev.seq);
  if (ev.topic !== 'proposals' && ev.kind === 'fix_delta') fixDeltaCount++;
  for (const view of views) view.onEvent?.(ev);
}

function recordSeen(topic, seq) {
  const list = ctx.store.seen.get(topic) ?? [];
  if (list.length < 100000) list.push(seq);
  ctx.store.seen.set(topic, list);
}

window.medicPage = Object.freeze({
  seenSeqs: (topic) => [...(ctx.store.seen.get(topic) ?? [])],
  connectionState: () => ctx.connState.state,
  notices: () => views.flatMap((v) => v.noticeLog ?? []),
  fixDeltas: () => fixDeltaCount,
  route: () => (hashHistory.current ? { ...hashHistory.current } : null),
  // The extensions the server agreed for the current socket (permessage-deflate, RFC 7692), for the tests.
  socketExtensions: () => ctx.conn?.socket?.extensions ?? null,
});

const STATE_TEXT = { idle: 'Not connected', connecting: 'Connecting…', live: 'Live', unauthorized: 'Signed out' };

function setConnState(s) {
  ctx.connState = s;
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
    signin.show('The server did not accept this token. Check it and sign in again.');
  }
  queueRender();
}

// ---- rendering (batched per frame: a replay of thousands of events repaints once) ----

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

function render() {
  for (const view of views) view.renderAlways?.();
  // Exactly one main section shows: the active view's (before the first route, the list's placeholder).
  const shown = active ?? views[0];
  for (const view of views) if (view.section) $(view.section).hidden = view !== shown;
  shown.render();
}

// ---- start ----

function main() {
  $('sign-out').addEventListener('click', signOut);
  $('conn-retry').addEventListener('click', () => ctx.conn?.retryNow());
  window.addEventListener('online', () => ctx.conn?.retryNow());
  // The skip link moves focus only: following its `#proposal-view` would be read as a route (home).
  document.querySelector('.skip-link').addEventListener('click', (e) => { e.preventDefault(); $('proposal-view').focus(); });
  // A link pasted into a tab that already shows the page changes only the fragment: credentials first
  // (they are taken out of the URL), then the route. Back/forward fire popstate (and hashchange).
  const follow = () => {
    if (signin.fromFragment()) return;
    if (ctx.conn) hashHistory.sync();
  };
  window.addEventListener('hashchange', follow);
  window.addEventListener('popstate', follow);
  if (signin.fromFragment()) return;
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token);
  else signin.show();
}

main();
