// js_units.mjs: unit checks of the page's pure modules (diff, seq tracking, backoff, the proposal model) under node.
import assert from 'node:assert/strict';
import { diffLines, hunks, diffChange, splitLines } from '../../web-static/js/diff.js';
import { SeqTracker, backoffDelay, Connection } from '../../web-static/js/connection.js';
import { ProposalModel, ProposalList, reviewPermissions, initials, mergeChanges } from '../../web-static/js/store.js';
import { ReplyReader, readReply } from '../../web-static/js/reply.js';
import { Router, HashHistory, hashSegments, MAX_HASH_LENGTH } from '../../web-static/js/router.js';
import { ROUTES as LIST_ROUTES } from '../../web-static/js/pages/proposal-list.js';
import { ROUTES as DETAIL_ROUTES } from '../../web-static/js/pages/proposal-detail.js';
import { BugList, BugModel, splitEvidence, bugChecklist, bugPermissions, approachFigures } from '../../web-static/js/bugs.js';
import { ROUTES as BUG_LIST_ROUTES } from '../../web-static/js/pages/bug-list.js';
import { ROUTES as BUG_ROUTES } from '../../web-static/js/pages/bug-detail.js';
import { AskList, AskModel, cellText, clip, tableModel, chartModel, formatValue, askPermissions, thinkingText, STEP_ROWS, CELL_LIMIT, MAX_COLUMNS, THINKING_LIMIT } from '../../web-static/js/asks.js';
import { ROUTES as ASK_ROUTES } from '../../web-static/js/pages/ask.js';
import { IncidentList, IncidentModel, criticalIncidents, incidentPermissions, sparkline, eventText, formatDuration, statusSentence, SERIES_LIMIT } from '../../web-static/js/incidents.js';
import { ROUTES as INCIDENT_LIST_ROUTES } from '../../web-static/js/pages/incident-list.js';
import { ROUTES as INCIDENT_ROUTES } from '../../web-static/js/pages/incident-detail.js';

const checks = [];
const check = (name, fn) => checks.push([name, fn]);

check('splitLines ignores one trailing newline', () => {
  assert.deepEqual(splitLines('a\nb\n'), ['a', 'b']);
  assert.deepEqual(splitLines('a\nb'), ['a', 'b']);
  assert.deepEqual(splitLines(''), []);
  assert.deepEqual(splitLines('\n'), ['']);
});

check('diffLines reproduces both sides on random inputs and is minimal on a known case', () => {
  for (let t = 0; t < 3000; t++) {
    const r = () => Array.from({ length: Math.floor(Math.random() * 14) }, () => 'abcd'[Math.floor(Math.random() * 4)]);
    const a = r(), b = r();
    const ops = diffLines(a, b);
    assert.deepEqual(ops.filter((o) => o.op !== '+').map((o) => o.text), a);
    assert.deepEqual(ops.filter((o) => o.op !== '-').map((o) => o.text), b);
  }
  const ops = diffLines([...'abcabba'], [...'cbabac']);
  assert.equal(ops.filter((o) => o.op !== ' ').length, 5); // Myers' paper example: D = 5
});

check('hunks carry diff -u headers and 3 lines of context', () => {
  const a = Array.from({ length: 20 }, (_, i) => String(i));
  const b = [...a];
  b[2] = 'x';
  b.splice(15, 1);
  const hs = hunks(diffLines(a, b));
  assert.deepEqual(hs.map((h) => [h.oldStart, h.oldLines, h.newStart, h.newLines]), [[1, 6, 1, 6], [13, 7, 13, 6]]);
});

check('diffChange: create is all additions, delete all removals, unknown base shows content', () => {
  const c = diffChange({ path: 'n', action: 'create', content: 'a\nb\n' }, undefined);
  assert.equal(c.added, 2); assert.equal(c.removed, 0);
  const d = diffChange({ path: 'n', action: 'delete' }, 'a\nb\nc\n');
  assert.equal(d.removed, 3); assert.equal(d.added, 0);
  const u = diffChange({ path: 'n', action: 'modify', content: 'x\n' }, undefined);
  assert.equal(u.kind, 'unknown-base');
  assert.equal(u.hunks[0].lines.length, 1);
});

check('SeqTracker: new, duplicate, gap', () => {
  const t = new SeqTracker();
  assert.equal(t.check('x', 1), 'new'); t.accept('x', 1);
  assert.equal(t.check('x', 1), 'duplicate');
  assert.equal(t.check('x', 3), 'gap');
  assert.equal(t.check('x', 2), 'new'); t.accept('x', 2);
  assert.equal(t.since('x'), 2);
  t.reset('x'); assert.equal(t.since('x'), 0);
});

check('backoff doubles, caps and jitters within ±20%', () => {
  assert.equal(backoffDelay(0, { random: () => 0.5 }), 500);
  assert.equal(backoffDelay(3, { random: () => 0.5 }), 4000);
  assert.equal(backoffDelay(20, { random: () => 0.5 }), 30000);
  assert.equal(backoffDelay(0, { random: () => 0 }), 400);
  assert.equal(backoffDelay(0, { random: () => 1 }), 600);
});

/** A scripted WebSocket: records sent frames; the test plays the server. */
class FakeSocket {
  static all = [];
  constructor(url, protocol) { this.url = url; this.protocol = protocol; this.sent = []; this.readyState = 0; FakeSocket.all.push(this); }
  send(text) { this.sent.push(JSON.parse(text)); }
  close() { this.readyState = 3; }
  open() { this.readyState = 1; this.onopen(); }
  msg(obj) { this.onmessage({ data: JSON.stringify(obj) }); }
  drop(code = 1001) { this.readyState = 3; this.onclose({ code, reason: '' }); }
}

check('Connection: hello, resubscribe with since = last seq, dedupe, resend commands with the same id', async () => {
  FakeSocket.all = [];
  const events = [];
  const states = [];
  const conn = new Connection({ url: 'ws://x/ws', token: 'T', WebSocketImpl: FakeSocket,
    callbacks: { onEvent: (e) => events.push(e.seq ?? 'eph'), onState: (s) => states.push(s.state) }, backoff: { baseMs: 1, maxMs: 2 } });
  conn.subscribe('proposal:p');
  conn.start();
  let ws = FakeSocket.all[0];
  assert.equal(ws.protocol, 'medic.v1');
  ws.open();
  assert.deepEqual(ws.sent[0], { type: 'hello', token: 'T' });
  ws.msg({ type: 'welcome', principal: 'a', role: 'admin', protocol: 'medic.v1' });
  const sub = ws.sent[1];
  assert.equal(sub.type, 'subscribe'); assert.equal(sub.since, 0);
  ws.msg({ type: 'ack', id: sub.id, topic: 'proposal:p', head: 2 });
  for (const seq of [1, 2, 2]) ws.msg({ type: 'event', topic: 'proposal:p', seq, ts: 1, kind: 'comment', data: {} });
  ws.msg({ type: 'event', topic: 'proposal:p', ts: 1, kind: 'fix_delta', data: {} });
  const approved = conn.command({ type: 'approve', proposal: 'p', revision: 1 });
  const approveId = ws.sent.at(-1).id;
  ws.drop();
  assert.equal(states.at(-1), 'reconnecting');
  await new Promise((r) => setTimeout(r, 20));
  ws = FakeSocket.all[1];
  ws.open();
  ws.msg({ type: 'welcome', principal: 'a', role: 'admin', protocol: 'medic.v1' });
  const resub = ws.sent.find((m) => m.type === 'subscribe');
  assert.equal(resub.since, 2, 'resumes from the last processed seq');
  const resent = ws.sent.find((m) => m.type === 'approve');
  assert.equal(resent.id, approveId, 'in-flight command resent with its id');
  ws.msg({ type: 'ack', id: resub.id, topic: 'proposal:p', head: 3 });
  for (const seq of [2, 3]) ws.msg({ type: 'event', topic: 'proposal:p', seq, ts: 1, kind: 'comment', data: {} });
  ws.msg({ type: 'ack', id: approveId, proposal: 'p', revision: 1, status: 'approved', approvals: ['a'], quorum: 1 });
  assert.equal((await approved).status, 'approved');
  assert.deepEqual(events, [1, 2, 'eph', 3]);
  conn.stop();
});

check('Connection: since_beyond_head resets the topic and replays from 0; 4001 stops', async () => {
  FakeSocket.all = [];
  const resets = [];
  const states = [];
  const conn = new Connection({ url: 'ws://x/ws', token: 'T', WebSocketImpl: FakeSocket,
    callbacks: { onTopicReset: (t) => resets.push(t), onState: (s) => states.push(s.state) }, backoff: { baseMs: 1, maxMs: 2 } });
  conn.seqs.accept('proposals', 9);
  conn.subscribe('proposals');
  conn.start();
  const ws = FakeSocket.all[0];
  ws.open();
  ws.msg({ type: 'welcome', principal: 'a', role: 'admin', protocol: 'medic.v1' });
  const sub = ws.sent[1];
  assert.equal(sub.since, 9);
  ws.msg({ type: 'error', id: sub.id, code: 'since_beyond_head', message: 'x' });
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(resets, ['proposals']);
  assert.equal(ws.sent.at(-1).since, 0);
  ws.drop(4001);
  assert.equal(states.at(-1), 'unauthorized');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(FakeSocket.all.length, 1, 'no reconnect after 4001');
});

check('ProposalModel folds a run: revisions diff against the previous one, fix entry updated in place', () => {
  const m = new ProposalModel('p');
  const ev = (seq, kind, data) => m.apply({ type: 'event', topic: 'proposal:p', seq, ts: seq, kind, data });
  ev(1, 'proposal_created', { proposal: { id: 'p', title: 'T', author: 'bot', status: 'proposed', revision: 1, max_attempts: 3 },
    revision: { number: 1, changes: [{ path: 'a.py', action: 'create', content: 'x = 1\ny = 2\n' }] } });
  ev(2, 'test_started', { revision: 1, command: 'pytest' });
  const out = ev(3, 'test_output', { revision: 1, stream: 'stdout', lines: ['one', 'two'] });
  assert.deepEqual(out.map((c) => c.type), ['console']);
  ev(4, 'test_finished', { revision: 1, exit_code: 1, passed: 0, failed: 1, duration_ms: 5, timed_out: false, truncated: false });
  assert.equal(m.entries.filter((e) => e.kind === 'test_started' || e.kind === 'test_finished').length, 1);
  ev(5, 'fix_started', { revision: 1, attempt: 1, max_attempts: 3 });
  m.apply({ type: 'event', topic: 'proposal:p', ts: 6, kind: 'fix_delta', data: { attempt: 1, text: 'Hel' } });
  m.apply({ type: 'event', topic: 'proposal:p', ts: 6, kind: 'fix_delta', data: { attempt: 1, text: 'lo' } });
  assert.equal(m.entryByKey.get('fix-1').stream, 'Hello');
  ev(6, 'fix_generated', { attempt: 1, revision: 2, explanation: 'E', changes: [{ path: 'a.py', action: 'modify', content: 'x = 1\ny = 3\n' }] });
  const fix = m.entryByKey.get('fix-1');
  assert.equal(fix.state, 'generated');
  assert.equal(fix.revision.diffs[0].added, 1);
  assert.equal(fix.revision.diffs[0].removed, 1);
  ev(7, 'status_changed', { status: 'awaiting_review', revision: 2, attempt: 1, max_attempts: 3 });
  ev(8, 'review', { revision: 2, principal: 'alice', verdict: 'approve', approvals: ['alice'], quorum: 2 });
  assert.deepEqual(m.currentReviews().approvals, ['alice']);
  const alice = reviewPermissions({ me: { principal: 'alice', role: 'admin' }, model: m, live: true });
  assert.equal(alice.canReview, false, 'already reviewed');
  const bob = reviewPermissions({ me: { principal: 'bob', role: 'admin' }, model: m, live: true });
  assert.equal(bob.canApprove, true);
  const author = reviewPermissions({ me: { principal: 'bot', role: 'admin' }, model: m, live: true });
  assert.equal(author.canApprove, false); assert.equal(author.canReview, true);
  const viewer = reviewPermissions({ me: { principal: 'v', role: 'viewer' }, model: m, live: true });
  assert.equal(viewer.canReview, false); assert.match(viewer.why, /viewer/);
  ev(9, 'status_changed', { status: 'fixing', revision: 2, attempt: 1, max_attempts: 3 });
  assert.equal(reviewPermissions({ me: { principal: 'bob', role: 'admin' }, model: m, live: true }).canReview, false);
});

check('ProposalList keeps the newest summary per id, newest first; initials', () => {
  const l = new ProposalList();
  l.apply({ seq: 1, kind: 'proposal', data: { id: 'a', updated_at: 1, status: 'proposed' } });
  l.apply({ seq: 2, kind: 'proposal', data: { id: 'b', updated_at: 2, status: 'proposed' } });
  l.apply({ seq: 3, kind: 'proposal', data: { id: 'a', updated_at: 3, status: 'testing' } });
  assert.deepEqual(l.sorted().map((p) => [p.id, p.status]), [['a', 'testing'], ['b', 'proposed']]);
  assert.equal(initials('alice'), 'AL');
  assert.equal(initials('ci-bot'), 'CB');
});

// ---- ReplyReader: the fix reply read while it streams ----

const REPLY = {
  unfixable: false,
  explanation: 'Say "hi"\\ then\nnewline, tab\t, é and 😀 and \u2028 — the "quoted" {braces} [brackets], commas, and : colons.',
  changes: [
    { path: 'app/cache.py', action: 'modify', content: 'x = "{\\"explanation\\": \\"fake\\"}"\n"path": "nope"\n' },
    { action: 'create', path: 'tests/test_é "q".py', content: '[[[{{{' },
    { path: 'gone.txt', action: 'delete' },
  ],
};

/** Splits `text` into pieces at the given cut points. */
const cut = (text, points) => {
  const out = []; let last = 0;
  for (const p of [...points].sort((a, b) => a - b)) { out.push(text.slice(last, p)); last = p; }
  out.push(text.slice(last));
  return out;
};

check('ReplyReader: a whole reply decodes exactly like JSON.parse (explanation, every path, unfixable)', () => {
  for (const text of [JSON.stringify(REPLY), JSON.stringify(REPLY, null, 2), JSON.stringify(REPLY).replace(/[^\x20-\x7e]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))]) {
    const r = readReply(text);
    assert.equal(r.explanation, REPLY.explanation);
    assert.equal(r.explanationDone, true);
    assert.deepEqual(r.paths, REPLY.changes.map((c) => c.path));
    assert.equal(r.unfixable, false);
    assert.equal(r.finished, true);
  }
});

check('ReplyReader: every split of the reply into two or three deltas (escapes and \\u cut anywhere) decodes the same', () => {
  const text = JSON.stringify(REPLY).replace(/é/g, '\\u00e9').replace(/😀/g, '\\ud83d\\ude00');
  for (let i = 0; i <= text.length; i++) {
    const r = new ReplyReader();
    for (const piece of cut(text, [i])) r.push(piece);
    assert.equal(r.explanation, REPLY.explanation, `split at ${i}`);
    assert.deepEqual(r.paths, REPLY.changes.map((c) => c.path), `split at ${i}`);
  }
  for (let t = 0; t < 2000; t++) {
    const r = new ReplyReader();
    const points = Array.from({ length: 1 + Math.floor(Math.random() * 40) }, () => Math.floor(Math.random() * text.length));
    for (const piece of cut(text, points)) {
      r.push(piece);
      // While streaming the visible explanation is always a prefix of the final one (never raw escapes).
      if (r.explanation !== null) assert.ok(REPLY.explanation.startsWith(r.explanation), JSON.stringify(r.explanation));
      for (const [k, p] of r.paths.entries()) assert.ok(REPLY.changes[k].path.startsWith(p));
    }
    assert.equal(r.explanation, REPLY.explanation);
  }
});

check('ReplyReader: one character at a time shows the explanation growing and files as they arrive', () => {
  const text = JSON.stringify(REPLY);
  const r = new ReplyReader();
  const seenPaths = new Set();
  let grew = 0, last = '';
  for (const c of text) {
    r.push(c);
    if ((r.explanation ?? '') !== last) { grew++; last = r.explanation; }
    if (r.pathsDone) seenPaths.add(r.paths[r.pathsDone - 1]);
  }
  assert.ok(grew > 50);
  assert.deepEqual([...seenPaths], REPLY.changes.map((c) => c.path));
});

check('ReplyReader: garbage, fences, prose, truncation and non-strings never throw and never leak raw JSON', () => {
  const r1 = readReply('Sure! Here is the fix:\n```json\n{"explanation": "It was \\"off\\" by one.", "changes": []}\n```\nHope that helps');
  assert.equal(r1.explanation, 'It was "off" by one.');
  assert.equal(r1.finished, true);
  const r2 = readReply('{"explanation": "unterminated \\u00');
  assert.equal(r2.explanation, 'unterminated ');
  const r3 = readReply('{"explanation": "bad \\uZZ9 escape \\q"}');
  assert.equal(r3.explanation, 'bad \\uZZ9 escape q');
  const r4 = readReply('{"changes": [{"path": 42}, {"path": ["x"]}, {"content": "\\"path\\": \\"no\\""}], "explanation": null}');
  assert.deepEqual(r4.paths, [], 'a path that is not a string, and a "path" inside content, are not files');
  assert.equal(r4.explanation, null);
  const r5 = readReply('{"nested": {"explanation": "not this one"}, "explanation": "this one"}');
  assert.equal(r5.explanation, 'this one');
  const r6 = readReply('not JSON at all');
  assert.equal(r6.started, false); assert.equal(r6.explanation, null);
  const r7 = readReply('{"unfixable": true, "explanation": "cannot", "changes": []}');
  assert.equal(r7.unfixable, true);
  // Random bytes and random JSON-ish noise.
  const alphabet = '{}[]":,\\u0123abcXYZ \n\t-.e9';
  for (let t = 0; t < 3000; t++) {
    const r = new ReplyReader();
    for (let k = 0; k < 5; k++) r.push(Array.from({ length: Math.floor(Math.random() * 30) }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join(''));
    assert.ok(r.explanation === null || typeof r.explanation === 'string');
  }
  const r8 = new ReplyReader(); r8.push(undefined); r8.push(null); r8.push(7);
  assert.equal(r8.started, false);
});

check('ProposalModel: fix_delta shows the parsed explanation and files; unfixable and status changes end "writing"', () => {
  const m = new ProposalModel('p');
  let seq = 0;
  const ev = (kind, data) => m.apply({ seq: kind === 'fix_delta' ? undefined : ++seq, ts: 1, kind, data });
  ev('proposal_created', { proposal: { title: 't', author: 'bot', status: 'proposed' }, revision: { number: 1, changes: [] } });
  ev('status_changed', { status: 'fixing', revision: 1, attempt: 1, max_attempts: 3 });
  ev('fix_started', { revision: 1, attempt: 1, max_attempts: 3 });
  const text = JSON.stringify({ unfixable: true, explanation: 'No "redis" here.\nSorry.', changes: [{ path: 'a.py', action: 'create', content: '"x"' }] });
  for (let i = 0; i < text.length; i += 7) ev('fix_delta', { attempt: 1, text: text.slice(i, i + 7) });
  const e = m.entryByKey.get('fix-1');
  assert.equal(e.state, 'writing');
  assert.equal(e.streamExplanation, 'No "redis" here.\nSorry.');
  assert.deepEqual(e.streamPaths, ['a.py']);
  ev('unfixable', { reason: 'llm_gave_up', explanation: 'No "redis" here.' });
  assert.equal(m.entryByKey.get('fix-1').state, 'ended', 'the attempt is no longer "writing" after unfixable');
  ev('status_changed', { status: 'unfixable', revision: 1, attempt: 1, max_attempts: 3 });
  assert.equal(m.entryByKey.get('fix-1').state, 'ended');
  // A status change away from fixing also ends an attempt left writing (e.g. the server restarted).
  const m2 = new ProposalModel('q');
  m2.apply({ seq: 1, kind: 'fix_started', data: { revision: 1, attempt: 1, max_attempts: 3 } });
  m2.apply({ seq: 2, kind: 'status_changed', data: { status: 'interrupted', revision: 1, attempt: 1 } });
  assert.equal(m2.entryByKey.get('fix-1').state, 'ended');
});

check('ProposalModel: a base from the server turns "original unknown" into real diffs, and shows what will be committed', () => {
  const m = new ProposalModel('p');
  const ev = (seq, kind, data) => m.apply({ type: 'event', topic: 'proposal:p', seq, ts: seq, kind, data });
  ev(1, 'proposal_created', { proposal: { id: 'p', title: 'T', author: 'bot', status: 'proposed', revision: 1 },
    revision: { number: 1, changes: [{ path: 'app.py', action: 'modify', content: 'a\nB\nc\n' }, { path: 'old.py', action: 'delete' }] } });
  assert.equal(m.revisions.get(1).diffs[0].kind, 'unknown-base');
  assert.equal(m.committed(1), null, 'nothing to commit-view before the base is known');
  const updates = m.setBase(1, { revision: 1, base_commit: 'abc123', files: { 'app.py': 'a\nb\nc\n', 'old.py': 'gone\n' }, omitted: [] });
  assert.ok(updates.some((u) => u.type === 'update' && u.entry.key === 'created'), 'the created entry is redrawn');
  const [modified, deleted] = m.revisions.get(1).diffs;
  assert.equal(modified.kind, 'modify');
  assert.deepEqual([modified.added, modified.removed], [1, 1]);
  assert.deepEqual([deleted.added, deleted.removed], [0, 1]);
  // A fix that touches a new file diffs it against its own base; the committed view is the whole patch.
  ev(2, 'fix_generated', { attempt: 1, revision: 2, explanation: 'E', changes: [{ path: 'app.py', action: 'modify', content: 'a\nB\nc\nd\n' }, { path: 'lib.py', action: 'modify', content: 'y\n' }] });
  assert.equal(m.revisions.get(2).diffs[1].kind, 'unknown-base');
  m.setBase(2, { revision: 2, base_commit: 'def456', files: { 'app.py': 'a\nb\nc\n', 'old.py': 'gone\n', 'lib.py': 'x\n' }, omitted: [] });
  const fixDiffs = m.revisions.get(2).diffs;
  assert.deepEqual([fixDiffs[0].added, fixDiffs[0].removed], [1, 0], 'against revision 1, not the base');
  assert.deepEqual([fixDiffs[1].added, fixDiffs[1].removed], [1, 1], 'first touched: against the base');
  const committed = m.committed(2);
  assert.equal(committed.commit, 'def456');
  // The whole patch of revision 2: old.py's deletion from revision 1 included.
  assert.deepEqual(committed.diffs.map((d) => [d.path, d.added, d.removed]), [['app.py', 2, 1], ['old.py', 0, 1], ['lib.py', 1, 1]]);
  // An omitted (binary or large) file stays "unknown" rather than diffing against nothing.
  m.setBase(2, { revision: 2, base_commit: 'def456', files: { 'app.py': 'a\nb\nc\n' }, omitted: ['lib.py'] });
  assert.equal(m.revisions.get(2).diffs[1].kind, 'unknown-base');
});

check('mergeChanges follows the server\'s FileChange.merge', () => {
  const c = (path, action, content) => ({ path, action, ...(content === undefined ? {} : { content }) });
  const merged = mergeChanges(
    [c('a', 'create', '1'), c('b', 'modify', '2'), c('d', 'delete'), c('e', 'create', 'x')],
    [c('a', 'modify', '3'), c('d', 'create', '4'), c('f', 'create', '5'), c('e', 'delete'), c('b', 'delete')]);
  assert.deepEqual(merged, [c('a', 'create', '3'), c('b', 'delete'), c('d', 'modify', '4'), c('f', 'create', '5')]);
});

// ---- router ----

/** The page's own route table (the list and detail views' declared routes, in registry order). */
function pageRouter() {
  const r = new Router();
  for (const route of [...LIST_ROUTES, ...DETAIL_ROUTES]) r.add(route);
  return r;
}

check('router: path and legacy forms name the same routes', () => {
  const r = pageRouter();
  assert.deepEqual(r.match(''), { name: 'home', params: {} });
  assert.deepEqual(r.match('#'), { name: 'home', params: {} });
  assert.deepEqual(r.match('#/proposals'), { name: 'proposals', params: {} });
  assert.deepEqual(r.match('#/proposals/'), { name: 'proposals', params: {} });
  assert.deepEqual(r.match('#/proposals/p_ab-1'), { name: 'proposal', params: { id: 'p_ab-1' } });
  assert.deepEqual(r.match('#p=p_ab-1'), { name: 'proposal', params: { id: 'p_ab-1' } });
  assert.deepEqual(r.match('#p=p_1&token=x'), { name: 'proposal', params: { id: 'p_1' } });
  assert.deepEqual(r.match('#token=x'), { name: 'home', params: {} }, 'credentials alone are not a place');
  assert.equal(r.href('proposal', { id: 'p_1' }), '#p=p_1');
  assert.equal(r.href('proposals'), '#/proposals');
});

check('router: unknown shapes are not found, hostile or long ids are invalid', () => {
  const r = pageRouter();
  for (const h of ['#/bugs', '#/proposals/p_1/extra', '#/nope/x', '#//x/y/z']) {
    assert.deepEqual(r.match(h), { name: 'not-found', params: {}, reason: 'unknown' }, h);
  }
  const hostile = ['<img src=x onerror=alert(1)>', '%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E', 'a'.repeat(65), 'p 1',
    '..', 'p_1%00', '%E0%A4%A', '"><script>', 'p_1?x=<b>', '\u0441'];
  for (const id of hostile) {
    const m = r.match('#/proposals/' + id);
    assert.equal(m.name, 'not-found', id);
    assert.equal(m.reason, 'invalid', id);
    assert.equal(r.match('#p=' + encodeURIComponent(id)).name, 'not-found', id);
  }
  assert.equal(r.match('#/proposals/' + 'a'.repeat(64)).name, 'proposal', '64 characters is the limit, inclusive');
  assert.equal(hashSegments('#/' + 'a'.repeat(MAX_HASH_LENGTH)), null);
  assert.equal(r.match('#/' + 'a'.repeat(MAX_HASH_LENGTH)).name, 'not-found');
  assert.throws(() => r.href('proposal', { id: '<b>' }), /bad id/);
  assert.throws(() => r.add({ name: 'home', pattern: '/x' }), /twice/);
});

check('HashHistory: push, replace, back (location-driven) and same-place dedupe', () => {
  const r = pageRouter();
  const entries = [''];
  let index = 0;
  const win = {
    location: { get hash() { return entries[index]; } },
    history: {
      pushState: (_s, _t, href) => { entries.splice(index + 1); entries.push(href); index++; },
      replaceState: (_s, _t, href) => { entries[index] = href; },
    },
  };
  const seen = [];
  const h = new HashHistory(r, (m, opts) => seen.push([m.name, m.params.id ?? null, opts.replace, opts.fromLocation]), win);
  h.sync();
  h.go('#p=p_1', { replace: true });
  h.go('#p=p_2');
  h.go('#/proposals/p_2');   // the same place in the other spelling: not a change
  assert.deepEqual(entries, ['#p=p_1', '#p=p_2']);
  index = 0;   // the browser's back button
  h.sync();
  h.sync();
  assert.deepEqual(seen, [['home', null, false, true], ['proposal', 'p_1', true, false], ['proposal', 'p_2', false, false],
    ['proposal', 'p_1', false, true]]);
});

// ---- bugs (bugs.js) ----

check('splitEvidence: a line of --- separates items; blank edges and empty blocks go, indentation stays', () => {
  assert.deepEqual(splitEvidence(''), []);
  assert.deepEqual(splitEvidence('   \n\n'), []);
  assert.deepEqual(splitEvidence('one line'), ['one line']);
  assert.deepEqual(splitEvidence('Traceback:\n  File "a.py", line 4\n---\nsecond\n\n---\n\n---\nthird  \n'),
    ['Traceback:\n  File "a.py", line 4', 'second', 'third']);
  assert.deepEqual(splitEvidence('a\r\n --- \r\nb'), ['a', 'b']);             // CRLF, spaces around the marker
  assert.deepEqual(splitEvidence('a\n----\nb\n--- x'), ['a\n----\nb\n--- x']); // only a line of exactly --- splits
  assert.deepEqual(splitEvidence('\n\n    indented\n'), ['    indented']);
});

check('BugList: an older summary never replaces a newer one; newest report first', () => {
  const l = new BugList();
  assert.equal(l.apply({ kind: 'bug', data: { id: 'b-1', status: 'fixing', created_at: 1, updated_at: 5 } }), true);
  assert.equal(l.merge({ id: 'b-1', status: 'analyzing', created_at: 1, updated_at: 2 }), false);
  assert.equal(l.byId.get('b-1').status, 'fixing');
  l.merge({ id: 'b-2', status: 'analyzing', created_at: 3, updated_at: 3 });
  assert.equal(l.apply({ kind: 'proposal', data: { id: 'p' } }), false);
  assert.deepEqual(l.sorted().map((b) => b.id), ['b-2', 'b-1']);
});

/** A full run as the contract's events, in order (what the fake server scripts). */
function bugRun() {
  let seq = 0;
  const ev = (kind, data) => ({ topic: 'bug:b-1', seq: ++seq, kind, data });
  return {
    reported: [ev('bug_reported', { id: 'b-1', repo: 'r', title: 'T', description: 'd', severity: 'high', evidence: ['e'], approaches: 3, author: 'alice' }),
      ev('status_changed', { status: 'analyzing' })],
    analysed: [ev('bug_analysis', { summary: 's', locations: [{ file: 'app/auth.py', line: 45, why: 'w' }], causes: ['c'], located: [] }),
      ev('status_changed', { status: 'reproducing' }), ev('reproducer_written', { attempt: 1, path: 'tests/t.py', explanation: 'x' })],
    reproduced: [ev('reproducer_verified', { path: 'tests/t.py', fails_on_base: true, output: 'FAILED' }), ev('status_changed', { status: 'fixing' })],
    started: [1, 2, 3].map((n) => ev('approach_started', { approach: n, strategy: `s${n}`, explanation: '', changes: [{ path: 'a.py', action: 'modify' }], files: n, lines: 2 * n })),
    testing: [ev('approach_status', { approach: 1, status: 'testing', attempt: 1, max_attempts: 2 }),
      ev('test_started', { approach: 1, revision: 1, command: 'pytest' }),
      ev('test_output', { approach: 1, revision: 1, stream: 'stdout', lines: ['<b>x</b>'] }),
      ev('test_finished', { approach: 1, revision: 1, exit_code: 1, passed: 11, failed: 1, duration_ms: 9 })],
    settled: [ev('approach_status', { approach: 1, status: 'failed', attempt: 2, max_attempts: 2, reason: 'breaks t' }),
      ev('approach_status', { approach: 2, status: 'qualified', attempt: 1, max_attempts: 2 }),
      ev('approach_status', { approach: 3, status: 'qualified', attempt: 1, max_attempts: 2 }),
      ev('approaches_ranked', { winner: 2, why: 'smallest', approaches: [
        { approach: 1, qualified: false, reason: 'breaks', files: 1, lines: 2, attempts: 2, tests_passed: 11, tests_failed: 1, duration_ms: 900, base_duration_ms: 800, breaking: ['t::x'] },
        { approach: 2, qualified: true, reason: 'smallest', files: 2, lines: 4, attempts: 1, tests_passed: 12, tests_failed: 0, duration_ms: 840, base_duration_ms: 800, breaking: [] },
        { approach: 3, qualified: true, reason: 'bigger', files: 3, lines: 6, attempts: 1, tests_passed: 12, tests_failed: 0, duration_ms: 700, base_duration_ms: 800, breaking: [] }] })],
    proposed: [ev('bug_proposed', { proposal: 'p_1', approach: 2 }), ev('status_changed', { status: 'proposed' })],
  };
}

check('bugChecklist follows a full run step by step', () => {
  const run = bugRun();
  const m = new BugModel('b-1');
  const texts = () => bugChecklist(m).map((i) => `${i.state}:${i.text}`);
  run.reported.forEach((e) => m.apply(e));
  assert.deepEqual(texts().slice(0, 2), ['running:Analyzing the bug…', 'pending:Find the location']);
  run.analysed.forEach((e) => m.apply(e));
  assert.deepEqual(texts().slice(0, 3), ['done:Analyzed bug', 'done:Found location: app/auth.py:45', 'running:Reproducing the bug…']);
  run.reproduced.forEach((e) => m.apply(e));
  assert.equal(texts()[2], 'done:Reproduced the bug');
  assert.equal(texts()[3], 'running:Generating 3 potential fixes…');
  run.started.forEach((e) => m.apply(e));
  assert.equal(texts()[3], 'done:Generated 3 potential fixes');
  run.testing.forEach((e) => m.apply(e));
  assert.deepEqual(texts().slice(4, 7), ['running:Testing fix #1 in sandbox…', 'pending:Test fix #2 (queued)', 'pending:Test fix #3 (queued)']);
  run.settled.forEach((e) => m.apply(e));
  assert.deepEqual(texts().slice(4), ['fail:Fix #1 failed: breaks t', 'done:Fix #2 passes all tests', 'done:Fix #3 passes all tests',
    'running:Fix #2 ranked best; making the proposal…']);
  run.proposed.forEach((e) => m.apply(e));
  assert.equal(texts().at(-1), 'done:Fix #2 passes all tests, ready to review');
  // Medic tests the winner's proposal again: review is ready when the proposal awaits it.
  m.apply({ topic: 'bug:b-1', seq: 90, kind: 'proposal_status', data: { proposal: 'p_1', status: 'testing' } });
  assert.equal(texts().at(-1), 'running:Fix #2 passes all tests; its proposal is being checked (testing)…');
  m.apply({ topic: 'bug:b-1', seq: 91, kind: 'proposal_status', data: { proposal: 'p_1', status: 'awaiting_review' } });
  assert.equal(texts().at(-1), 'done:Fix #2 passes all tests, ready to review');
  m.apply({ topic: 'bug:b-1', seq: 92, kind: 'proposal_status', data: { proposal: 'p_1', status: 'rejected' } });
  assert.equal(texts().at(-1), "warn:Fix #2's proposal is rejected");
  m.apply({ topic: 'bug:b-1', seq: 99, kind: 'bug_fixed', data: { proposal: 'p_1', commit: 'abcdef0123456789' } });
  assert.equal(texts().at(-1), 'done:Fix #2 applied as commit abcdef012345');
});

check('bugChecklist: not reproduced, no approach qualified, interrupted', () => {
  const m = new BugModel('b-1');
  const run = bugRun();
  [...run.reported, ...run.analysed].forEach((e) => m.apply(e));
  m.apply({ topic: 'bug:b-1', seq: 50, kind: 'reproducer_rejected', data: { reason: 'passed on base' } });
  assert.equal(m.reproduced, false);
  assert.deepEqual(bugChecklist(m)[2], { key: 'reproduced', state: 'warn', text: 'Not reproduced: passed on base' });
  m.apply({ topic: 'bug:b-1', seq: 51, kind: 'bug_unfixed', data: { reasons: [] } });
  m.apply({ topic: 'bug:b-1', seq: 52, kind: 'status_changed', data: { status: 'unfixed' } });
  assert.deepEqual(bugChecklist(m).at(-1), { key: 'result', state: 'fail', text: 'No approach qualified' });
  const i = new BugModel('b-2');
  run.reported.forEach((e) => i.apply(e));
  i.apply({ topic: 'bug:b-2', seq: 3, kind: 'status_changed', data: { status: 'interrupted', reason: 'restart' } });
  assert.equal(bugChecklist(i)[0].state, 'pending');
  assert.equal(bugChecklist(i).at(-1).text, 'Interrupted (restart): an admin can resume it');
});

check('approach figures, console, diffs and who may choose or resume', () => {
  const run = bugRun();
  const m = new BugModel('b-1');
  Object.values(run).flat().forEach((e) => m.apply(e));
  const one = approachFigures(m, 1), two = approachFigures(m, 2), three = approachFigures(m, 3);
  assert.equal(one.tests, '11/12 passed');
  assert.deepEqual(one.breaking, ['t::x']);
  assert.equal(one.attempt, '2/2');
  assert.equal(two.tests, '12/12 passed');
  assert.equal(two.reproducer, 'passes');
  assert.equal(two.size, '2 files, 4 lines');
  assert.equal(two.duration, '+40 ms vs base (+5%)');
  assert.equal(three.duration, '−100 ms vs base (−13%)');
  assert.equal(two.winner, true); assert.equal(three.winner, false);
  // Test output is kept as text per approach, with the run's header and result.
  assert.deepEqual(m.approaches.get(1).console.map((l) => l.text), ['$ pytest   (revision 1)', '<b>x</b>', 'failed: 11 passed, 1 failed']);
  // approach_started names paths only: the diff says the content is missing until the detail (or a fix) brings it.
  assert.equal(m.diffs(2)[0].missing, true);
  m.setDetail({ id: 'b-1', approaches: [{ approach: 2, revisions: [{ number: 1, changes: [{ path: 'a.py', action: 'modify', content: 'x\ny\n' }] }] }] });
  assert.equal(m.diffs(2)[0].kind, 'unknown-base');
  assert.equal(m.diffs(2)[0].hunks[0].lines.length, 2);
  m.apply({ topic: 'bug:b-1', seq: 200, kind: 'fix_generated', data: { approach: 2, attempt: 2, revision: 2, changes: [{ path: 'n.py', action: 'create', content: 'z\n' }] } });
  assert.deepEqual(m.patch(2).map((c) => c.path), ['a.py', 'n.py']);
  // Admins may choose another qualified approach of a proposed bug; never the current one, a failed one, or as a bot.
  const admin = bugPermissions({ role: 'admin' }, m);
  assert.equal(admin.canChoose(3), true);
  assert.equal(admin.canChoose(2), false);
  assert.equal(admin.canChoose(1), false);
  assert.equal(bugPermissions({ role: 'bot' }, m).canChoose(3), false);
  assert.equal(bugPermissions({ role: 'admin' }, m, false).canChoose(3), false);
  assert.equal(bugPermissions({ role: 'bot' }, m).canReport, true);
  assert.equal(bugPermissions({ role: 'viewer' }, m).canReport, false);
  assert.equal(admin.canResume, false);
  m.apply({ topic: 'bug:b-1', seq: 201, kind: 'status_changed', data: { status: 'interrupted' } });
  assert.equal(bugPermissions({ role: 'admin' }, m).canResume, true);
  assert.equal(bugPermissions({ role: 'viewer' }, m).canResume, false);
});

check('fix_delta streams per approach attempt and stops with the attempt', () => {
  const m = new BugModel('b-1');
  m.apply({ topic: 'bug:b-1', seq: 1, kind: 'fix_started', data: { approach: 1, attempt: 2, max_attempts: 2 } });
  m.apply({ topic: 'bug:b-1', kind: 'fix_delta', data: { approach: 1, attempt: 2, text: '{"expl' } });
  m.apply({ topic: 'bug:b-1', kind: 'fix_delta', data: { approach: 1, attempt: 2, text: 'anation"' } });
  assert.equal(m.approaches.get(1).deltas.get(2), '{"explanation"');
  assert.equal(m.approaches.get(1).writing, 2);
  m.apply({ topic: 'bug:b-1', seq: 2, kind: 'fix_generated', data: { approach: 1, attempt: 2, revision: 2, changes: [] } });
  assert.equal(m.approaches.get(1).writing, null);
  m.apply({ topic: 'bug:b-1', kind: 'fix_delta', data: { approach: 1, attempt: 1, text: 'late' } });
  assert.equal(m.approaches.get(1).deltas.get(1), undefined);   // a late delta is dropped
  assert.equal(m.approaches.get(1).writing, null);
});

check('Medic\'s shapes: a first refused reproducer is retried, approach_details fill the figures, asking, chosen, proposal status', () => {
  const m = new BugModel('b-1');
  const run = bugRun();
  [...run.reported, ...run.analysed].forEach((e) => m.apply(e));
  m.apply({ topic: 'bug:b-1', seq: 40, kind: 'reproducer_rejected', data: { attempt: 1, path: 'tests/t.py', reason: 'it passed' } });
  assert.equal(m.reproduced, null, 'a first refusal is not the verdict');
  assert.deepEqual(bugChecklist(m)[2], { key: 'reproduced', state: 'running', text: 'Reproducing the bug (second try; the first was refused: it passed)…' });
  m.apply({ topic: 'bug:b-1', seq: 41, kind: 'reproducer_rejected', data: { attempt: 2, path: 'tests/t.py', reason: 'again' } });
  assert.equal(m.reproduced, false);
  assert.equal(bugChecklist(m)[2].text, 'Not reproduced: again');
  // An approach being asked for is not yet "generated".
  m.apply({ topic: 'bug:b-1', seq: 42, kind: 'status_changed', data: { status: 'fixing' } });
  m.apply({ topic: 'bug:b-1', seq: 43, kind: 'approach_status', data: { approach: 1, status: 'asking', attempt: 0, max_attempts: 3 } });
  assert.equal(bugChecklist(m)[3].text, 'Generating 3 potential fixes…');
  assert.deepEqual(bugChecklist(m)[4], { key: 'approach-1', state: 'running', text: 'Writing fix #1…' });
  m.apply({ topic: 'bug:b-1', seq: 44, kind: 'approach_started', data: { approach: 1, strategy: 's', summary: 'short', explanation: 'long', changes: [{ path: 'a.py', action: 'modify', content: 'x\n' }] } });
  assert.equal(bugChecklist(m)[3].text, 'Generating 3 potential fixes (1 so far)…');
  assert.equal(m.diffs(1)[0].kind, 'unknown-base');
  // The detail's approach_details (Medic's approachJSON) bring size, tests and breaking before any ranking.
  m.setDetail({ id: 'b-1', approaches: 3, reproduced: false, reproducer_reason: 'again', approach_details: [
    { approach: 1, strategy: 's', summary: 'short', status: 'failed', qualified: false, files: 2, lines: 7, attempts: 3, max_attempts: 3,
      tests_passed: 4, tests_failed: 1, duration_ms: null, base_duration_ms: 100, reproducer_passes: null, breaking: ['t::y'], changes: [] }] });
  assert.equal(m.requested, 3);
  const f = approachFigures(m, 1);
  assert.deepEqual([f.size, f.tests, f.breaking, f.duration, f.reproducer], ['2 files, 7 lines', '4/5 passed', ['t::y'], null, 'none (bug not reproduced)']);
  m.apply({ topic: 'bug:b-1', seq: 45, kind: 'approach_status', data: { approach: 1, status: 'failed', attempt: 3, max_attempts: 3, reason: 'gave up', breaking: ['t::y'] } });
  assert.equal(approachFigures(m, 1).attempt, '3/3');
  m.apply({ topic: 'bug:b-1', seq: 46, kind: 'bug_proposed', data: { proposal: 'p_2', approach: 2 } });
  m.apply({ topic: 'bug:b-1', seq: 47, kind: 'proposal_status', data: { proposal: 'p_2', status: 'awaiting_review' } });
  m.apply({ topic: 'bug:b-1', seq: 48, kind: 'proposal_status', data: { proposal: 'p_old', status: 'withdrawn' } });
  assert.equal(m.proposalStatus, 'awaiting_review');
  m.apply({ topic: 'bug:b-1', seq: 49, kind: 'approach_chosen', data: { approach: 3, principal: 'bob', replaces: 'p_2' } });
  assert.deepEqual(m.chosenBy, { approach: 3, principal: 'bob', replaces: 'p_2' });
  // Base-phase events (no approach) are not an approach's.
  m.apply({ topic: 'bug:b-1', seq: 50, kind: 'test_output', data: { phase: 'base', lines: ['base run'] } });
  assert.deepEqual([...m.approaches.keys()], [1]);
});

check('the model\'s replies stream: the analysis (purpose) and an approach before approach_started', () => {
  const m = new BugModel('b-1');
  bugRun().reported.forEach((e) => m.apply(e));
  m.apply({ topic: 'bug:b-1', kind: 'fix_delta', data: { purpose: 'bug_analysis', attempt: 1, text: '{"summary": "reg' } });
  m.apply({ topic: 'bug:b-1', kind: 'fix_delta', data: { purpose: 'bug_analysis', attempt: 1, text: 'ister()' } });
  assert.deepEqual(m.live, { purpose: 'bug_analysis', text: '{"summary": "register()' });
  assert.equal(m.approaches.size, 0);
  m.apply({ topic: 'bug:b-1', seq: 3, kind: 'bug_analysis', data: { summary: 's', locations: [], causes: [] } });
  assert.equal(m.live, null);
  m.apply({ topic: 'bug:b-1', seq: 4, kind: 'status_changed', data: { status: 'fixing' } });
  m.apply({ topic: 'bug:b-1', kind: 'fix_delta', data: { approach: 1, attempt: 1, text: 'Lower-casing' } });
  const a = m.approaches.get(1);
  assert.deepEqual([a.status, a.writing, a.deltas.get(1)], ['asking', 1, 'Lower-casing']);
  assert.deepEqual(bugChecklist(m).find((i) => i.key === 'approach-1'), { key: 'approach-1', state: 'running', text: 'Writing fix #1…' });
  m.apply({ topic: 'bug:b-1', seq: 5, kind: 'approach_started', data: { approach: 1, strategy: 's', changes: [] } });
  assert.equal(a.writing, null);
  m.apply({ topic: 'bug:b-1', kind: 'fix_delta', data: { approach: 1, attempt: 1, text: 'late' } });
  assert.equal(a.deltas.get(1), 'Lower-casing');
});

check('bug routes: #/bugs and #/bugs/<id>, hostile ids refused', () => {
  const r = new Router();
  for (const route of [...LIST_ROUTES, ...DETAIL_ROUTES, ...BUG_LIST_ROUTES, ...BUG_ROUTES]) r.add(route);
  assert.deepEqual(r.match('#/bugs'), { name: 'bugs', params: {} });
  assert.deepEqual(r.match('#/bugs/b-abc123'), { name: 'bug', params: { id: 'b-abc123' } });
  assert.equal(r.match('#/bugs/%3Cimg%20src%3Dx%3E').name, 'not-found');
  assert.equal(r.href('bug', { id: 'b-1' }), '#/bugs/b-1');
});

check('asks: cellText never throws and clip cuts at code points with an ellipsis', () => {
  assert.equal(cellText(null), 'NULL');
  assert.equal(cellText(undefined), 'NULL');
  assert.equal(cellText(3.5), '3.5');
  assert.equal(cellText(false), 'false');
  assert.equal(cellText({ a: [1] }), '{"a":[1]}');
  const cyclic = {}; cyclic.self = cyclic;
  assert.equal(cellText(cyclic), '?');
  assert.equal(cellText('<img src=x>'), '<img src=x>');   // text, shown with textContent
  assert.equal(clip('abc', 5), 'abc');
  assert.equal(clip('abcdef', 4), 'abc…');
  assert.equal(clip('😀😀😀😀😀', 3), '😀😀…');         // no half surrogate pair
  assert.equal(Array.from(clip('x'.repeat(10000))).length, CELL_LIMIT);
});

check('asks: tableModel limits rows, columns and cell length and counts what it hides', () => {
  const columns = Array.from({ length: MAX_COLUMNS + 5 }, (_, i) => `c${i}`);
  const rows = Array.from({ length: 50 }, (_, r) => columns.map((_, c) => (c === 0 ? r : c === 1 ? null : 'y'.repeat(500))));
  const t = tableModel(columns, rows, { rowLimit: STEP_ROWS, rowCount: 1234 });
  assert.equal(t.columns.length, MAX_COLUMNS);
  assert.equal(t.hiddenColumns, 5);
  assert.equal(t.rows.length, STEP_ROWS);
  assert.equal(t.hiddenRows, 1234 - STEP_ROWS);
  assert.deepEqual(t.rows[3][0], { text: '3', full: '3', numeric: true, null: false });
  assert.equal(t.rows[0][1].text, 'NULL');
  assert.equal(t.rows[0][1].null, true);
  assert.equal(Array.from(t.rows[0][2].text).length, CELL_LIMIT);
  assert.equal(t.rows[0][2].full.length, 500);
  // A row_count below the rows given (or missing) counts the rows; garbage never throws.
  assert.equal(tableModel(['a'], [[1], [2]], { rowLimit: 1, rowCount: 1 }).hiddenRows, 1);
  assert.deepEqual(tableModel(null, 'x'), { columns: [], rows: [], hiddenRows: 0, hiddenColumns: 0, total: 0 });
  assert.deepEqual(tableModel(['a', 'b'], [null, [1]]).rows.map((r) => r.map((c) => c.text)), [['NULL', 'NULL'], ['1', 'NULL']]);
});

check('asks: chartModel needs the server\'s chart naming two columns of numbers and scales to the largest |value|', () => {
  const answer = { columns: ['region', 'avg'], rows: [['Tokyo', 50], ['Lagos', 200], ['Paris', null], ['Oslo', -100]],
    chart: { label_column: 'region', value_column: 'avg' } };
  const c = chartModel(answer);
  assert.deepEqual(c.bars.map((b) => [b.label, b.value, b.fraction, b.negative]),
    [['Tokyo', 50, 0.25, false], ['Lagos', 200, 1, false], ['Oslo', -100, 0.5, true]]);   // NULL skipped, order kept
  assert.equal(c.max, 200);
  assert.equal(c.hidden, 0);
  assert.equal(chartModel({ ...answer, chart: undefined }), null);                        // no chart unless the server says
  assert.equal(chartModel({ ...answer, chart: { label_column: 'region', value_column: 'nope' } }), null);
  assert.equal(chartModel({ ...answer, chart: { label_column: 'avg', value_column: 'avg' } }), null);
  assert.equal(chartModel({ ...answer, rows: [['a', '12']] }), null);                     // a string is not a number
  assert.equal(chartModel({ ...answer, rows: [['a', Infinity]] }), null);
  assert.equal(chartModel({ ...answer, rows: [['a', null]] }), null);                     // nothing to draw
  const zero = chartModel({ ...answer, rows: [['a', 0], ['b', 0]] });
  assert.deepEqual(zero.bars.map((b) => b.fraction), [0, 0]);                              // no division by zero
  // Too many bars: the largest values are kept, in the answer's order, and the rest counted.
  const many = chartModel({ ...answer, rows: Array.from({ length: 40 }, (_, i) => [`r${i}`, i]) }, 30);
  assert.equal(many.bars.length, 30);
  assert.equal(many.hidden, 10);
  assert.deepEqual(many.bars.map((b) => b.value), Array.from({ length: 30 }, (_, i) => i + 10));
  assert.equal(many.bars.at(-1).fraction, 1);
  // A hostile label is kept as text (clipped), never interpreted.
  assert.equal(chartModel({ ...answer, rows: [['<script>x</script>', 1]] }).bars[0].label, '<script>x</script>');
});

check('asks: formatValue groups thousands and keeps at most two decimals for large numbers', () => {
  assert.equal(formatValue(236), '236');
  assert.equal(formatValue(29936), '29,936');
  assert.equal(formatValue(3045.333), '3,045.33');
  assert.equal(formatValue(0.12345), '0.1235');
  assert.equal(formatValue('Tokyo'), 'Tokyo');
  assert.equal(formatValue(null), 'NULL');
  assert.equal(formatValue(NaN), 'NaN');
});

check('asks: thinkingText shows the final reply\'s sentence once it is whole JSON, anything else as it is', () => {
  assert.equal(thinkingText('{"answer":"This counts users.","sql":"SELECT count(*) FROM users"}'), 'This counts users.');
  assert.equal(thinkingText('  {"answer": "A"}\n'), 'A');
  assert.equal(thinkingText('{"answer":"This cou'), '{"answer":"This cou');   // still streaming
  assert.equal(thinkingText('{"sql":"SELECT 1"}'), '{"sql":"SELECT 1"}');
  assert.equal(thinkingText('{"answer": 5}'), '{"answer": 5}');
  assert.equal(thinkingText('I will look at the tables.'), 'I will look at the tables.');
  assert.equal(thinkingText('{not json}'), '{not json}');
  assert.equal(thinkingText(null), '');
});

check('asks: permissions — admins and bots ask, admins mark an answered ask', () => {
  const answered = { status: 'answered', answer: { sql: 'SELECT 1' } };
  assert.deepEqual(askPermissions({ role: 'admin' }, answered), { canAsk: true, canMark: true });
  assert.deepEqual(askPermissions({ role: 'bot' }, answered), { canAsk: true, canMark: false });
  assert.deepEqual(askPermissions({ role: 'viewer' }, answered), { canAsk: false, canMark: false });
  assert.deepEqual(askPermissions({ role: 'admin' }, { status: 'thinking', answer: null }), { canAsk: true, canMark: false });
  assert.deepEqual(askPermissions(null, null), { canAsk: false, canMark: false });
});

check('AskModel folds an ask: streamed text per round, tools, SQL with result or refusal, answer; garbage ignored', () => {
  const m = new AskModel('a-1');
  const ev = (seq, kind, data) => m.apply({ topic: 'ask:a-1', seq, ts: 1000 + seq, kind, data });
  ev(1, 'ask_created', { id: 'a-1', question: 'How many?', source: 'users', author: 'alice' });
  ev(2, 'status_changed', { status: 'thinking' });
  m.apply({ topic: 'ask:a-1', kind: 'ask_thinking', data: { round: 1, text: 'Let me ' } });
  m.apply({ topic: 'ask:a-1', kind: 'ask_thinking', data: { round: 1, text: 'look.' } });
  ev(3, 'tool_called', { round: 1, name: 'list_tables', input: {} });
  ev(4, 'sql_proposed', { round: 1, sql: 'DELETE FROM users', source: 'users' });
  ev(5, 'sql_refused', { round: 1, sql: 'DELETE FROM users', code: 'not_read_only', reason: 'only reading' });
  ev(6, 'sql_proposed', { round: 2, sql: 'SELECT count(*) FROM users', source: 'users' });
  assert.equal(m.steps()[1].queries[0].result, null);   // running
  ev(7, 'sql_result', { round: 2, columns: ['n'], rows: [[5]], row_count: 1, truncated: false, duration_ms: 2, masked: [] });
  assert.equal(m.question, 'How many?');
  assert.equal(m.createdAt, 1001);
  assert.deepEqual(m.steps().map((s) => s.round), [1, 2]);
  assert.equal(m.steps()[0].thinking, 'Let me look.');
  assert.deepEqual(m.steps()[0].tools, [{ name: 'list_tables', input: {} }]);
  assert.deepEqual(m.steps()[0].queries[0].refusal, { code: 'not_read_only', reason: 'only reading' });
  assert.deepEqual(m.steps()[1].queries[0].result.rows, [[5]]);
  assert.equal(m.status, 'thinking');
  ev(8, 'answer', { text: 't', sql: 'SELECT count(*) FROM users', columns: ['n'], rows: [[5]], row_count: 1, value: 5 });
  ev(9, 'status_changed', { status: 'answered' });
  assert.equal(m.status, 'answered');
  assert.equal(m.answer.value, 5);
  // Unknown kinds and malformed data change nothing and never throw.
  assert.equal(m.apply({ kind: 'nonsense', data: {} }), false);
  m.apply({ kind: 'ask_thinking', data: { round: 1, text: 42 } });
  assert.equal(m.apply({ kind: 'sql_result', data: null }), false);
  assert.equal(m.apply({ kind: 'sql_proposed', data: { round: 'x', sql: 'SELECT 1' } }), false);
  m.apply(null);
  assert.deepEqual(m.steps().map((s) => s.round), [1, 2]);
  assert.equal(m.steps()[0].thinking, 'Let me look.');
  // The thinking text is bounded.
  const big = new AskModel('a-2');
  for (let i = 0; i < 10; i++) big.apply({ kind: 'ask_thinking', data: { round: 1, text: 'x'.repeat(THINKING_LIMIT / 4) } });
  assert.equal(big.steps()[0].thinking.length, THINKING_LIMIT);
  assert.ok(big.steps()[0].thinking.startsWith('…'));
  // A failure.
  const f = new AskModel('a-3');
  f.apply({ seq: 1, kind: 'ask_failed', data: { reason: 'source users is down' } });
  assert.equal(f.status, 'failed');
  assert.equal(f.failure, 'source users is down');
});

check('AskModel.setDetail fills what events have not said; AskList keeps the newest summary, newest first', () => {
  const m = new AskModel('a-1');
  m.setDetail({ id: 'a-1', question: 'Q', source: 'users', status: 'answered', answer: { value: 1 }, created_at: 5, mark: { correct: false, comment: 'no' } });
  assert.equal(m.question, 'Q');
  assert.equal(m.status, 'answered');
  assert.deepEqual(m.answer, { value: 1 });
  assert.deepEqual(m.mark, { correct: false, comment: 'no' });
  const e = new AskModel('a-2');
  e.apply({ seq: 1, kind: 'status_changed', data: { status: 'thinking' } });
  e.setDetail({ status: 'answered', answer: { value: 2 } });      // events win once they came
  assert.equal(e.status, 'thinking');
  assert.equal(e.answer, null);
  const list = new AskList();
  assert.equal(list.apply({ kind: 'ask', data: { id: 'a-1', question: 'old', created_at: 1, updated_at: 1 } }), true);
  list.merge({ id: 'a-2', question: 'new', created_at: 2, updated_at: 2 });
  assert.equal(list.merge({ id: 'a-1', question: 'stale', updated_at: 0 }), false);
  list.apply({ kind: 'ask', data: { id: 'a-1', status: 'answered', updated_at: 3 } });
  assert.deepEqual(list.sorted().map((a) => [a.id, a.question, a.status ?? null]), [['a-2', 'new', null], ['a-1', 'old', 'answered']]);
  assert.equal(list.apply({ kind: 'bug', data: { id: 'b-1' } }), false);
  assert.equal(list.merge({ id: 5 }), false);
});

check('ask routes: #/ask and #/ask/<id>, hostile ids refused', () => {
  const r = new Router();
  for (const route of [...LIST_ROUTES, ...DETAIL_ROUTES, ...BUG_LIST_ROUTES, ...BUG_ROUTES, ...ASK_ROUTES]) r.add(route);
  assert.deepEqual(r.match('#/ask'), { name: 'ask', params: {} });
  assert.deepEqual(r.match('#/ask/a-0123456789'), { name: 'ask-detail', params: { id: 'a-0123456789' } });
  assert.equal(r.match('#/ask/%3Cimg%20src%3Dx%3E').name, 'not-found');
  assert.equal(r.match('#/ask/a-1/extra').name, 'not-found');
  assert.equal(r.href('ask-detail', { id: 'a-1' }), '#/ask/a-1');
});

check('incidents: the list puts incidents not closed first, newest opened first; a stale summary never wins', () => {
  const l = new IncidentList();
  l.merge({ id: 'i-1', status: 'healed', opened_at: 300, updated_at: 10 });
  l.merge({ id: 'i-2', status: 'open', opened_at: 100, updated_at: 10 });
  l.merge({ id: 'i-3', status: 'fixing', opened_at: 200, updated_at: 10 });
  assert.deepEqual(l.sorted().map((i) => i.id), ['i-3', 'i-2', 'i-1']);
  assert.equal(l.apply({ kind: 'incident', data: { id: 'i-3', status: 'open', updated_at: 5 } }), false);
  assert.equal(l.byId.get('i-3').status, 'fixing');
  assert.equal(l.apply({ kind: 'incident', data: { id: 'i-3', status: 'healed', updated_at: 20 } }), true);
  assert.deepEqual(l.sorted().map((i) => i.id), ['i-2', 'i-1', 'i-3']);
});

check('incidents: the banner takes critical incidents that still need attention, not muted or closed ones', () => {
  const l = new IncidentList();
  for (const [id, severity, status] of [['i-a', 'critical', 'open'], ['i-b', 'critical', 'muted'], ['i-c', 'critical', 'healed'],
    ['i-d', 'high', 'open'], ['i-e', 'critical', 'regressed'], ['i-f', 'critical', 'watching'], ['i-g', 'critical', 'resolved']]) {
    l.merge({ id, severity, status, opened_at: id.charCodeAt(2) });
  }
  assert.deepEqual(criticalIncidents(l).map((i) => i.id), ['i-f', 'i-e', 'i-a']);
});

check('incidents: only admins get actions, each in the statuses the server accepts; rollback only when regressed with a fix', () => {
  const admin = { principal: 'alice', role: 'admin' };
  const none = incidentPermissions({ principal: 'v', role: 'viewer' }, { status: 'open' });
  assert.deepEqual([none.canAcknowledge, none.canFileBug, none.canMute, none.canResolve, none.canRollback], [false, false, false, false, false]);
  assert.match(none.why, /Only admins/);
  assert.equal(incidentPermissions({ principal: 'b', role: 'bot' }, { status: 'open' }).canResolve, false);
  const open = incidentPermissions(admin, { status: 'open' });
  assert.deepEqual([open.canAcknowledge, open.canFileBug, open.canMute, open.canResolve, open.canRollback], [true, true, true, true, false]);
  const fixing = incidentPermissions(admin, { status: 'fixing', bug: 'b-1' });
  assert.deepEqual([fixing.canAcknowledge, fixing.canFileBug, fixing.canMute, fixing.canResolve], [false, false, true, true]);
  const healed = incidentPermissions(admin, { status: 'healed' });
  assert.deepEqual([healed.canAcknowledge, healed.canFileBug, healed.canMute, healed.canResolve], [false, true, false, false]);
  assert.equal(incidentPermissions(admin, { status: 'regressed', proposal: 'p-1' }).canRollback, true);
  assert.equal(incidentPermissions(admin, { status: 'regressed', proposal: null }).canRollback, false);
  assert.equal(incidentPermissions(admin, { status: 'open' }, false).canAcknowledge, false);
});

check('incidents: the sparkline scales to the highest of values, baseline and threshold, y down, and survives odd input', () => {
  const g = sparkline([[0, 0], [1, 10], [2, 5]], { width: 100, height: 50, pad: 0, baseline: 2, threshold: 3 });
  assert.equal(g.points, '0,50 50,0 100,25');
  assert.equal(g.baselineY, 40);
  assert.equal(g.thresholdY, 35);
  assert.deepEqual(g.last, { x: 100, y: 25, value: 5 });
  const flat = sparkline([[0, 0]], { width: 100, height: 50, pad: 0 });
  assert.equal(flat.points, '50,50');
  assert.equal(flat.top, 1);
  const empty = sparkline([], { baseline: null });
  assert.equal(empty.points, '');
  assert.equal(empty.last, null);
  assert.equal(empty.baselineY, null);
});

check('incidents: the model folds the topic — buckets extend the series (bounded), repeats are ignored, statuses follow', () => {
  const m = new IncidentModel('i-1');
  m.setDetail({ incident: { id: 'i-1', status: 'fixing', severity: 'critical', series: [[1000, 40], [2000, 50]], updated_at: 10 }, events: [] });
  m.apply({ seq: 1, ts: 5, kind: 'incident_opened', data: { id: 'i-1', status: 'open', kind: 'new_error', service: 'demo-app', severity: 'critical', series: [[1000, 40]] } });
  assert.equal(m.status, 'fixing');   // the detail read later is newer than the opening event
  m.apply({ seq: 2, ts: 20, kind: 'bucket', data: { bucket_start: 3000, value: 7 } });
  m.apply({ seq: 2, ts: 20, kind: 'bucket', data: { bucket_start: 4000, value: 99 } });   // a repeat
  assert.deepEqual(m.points(), [[1000, 40], [2000, 50], [3000, 7]]);
  m.apply({ seq: 3, ts: 30, kind: 'fix_applied', data: { proposal: 'p-9', commit: 'abc' } });
  assert.equal(m.status, 'watching');
  m.apply({ seq: 4, ts: 40, kind: 'healed', data: { time_to_heal_ms: 42000, fix_to_heal_ms: 20000, window_ms: 20000 } });
  assert.equal(m.status, 'healed');
  assert.equal(statusSentence(m.info), 'Healed in 42 s.');
  assert.deepEqual(m.timeline.map((e) => e.kind), ['incident_opened', 'fix_applied', 'healed']);   // no line per bucket
  for (let i = 0; i < SERIES_LIMIT + 50; i++) m.apply({ seq: 10 + i, ts: 50, kind: 'bucket', data: { bucket_start: 10000 + i, value: 1 } });
  assert.equal(m.points().length, SERIES_LIMIT);
  assert.equal(m.points()[0][0], 10000 + 50);
  // A summary of the incidents topic moves the status; an older one does not.
  assert.equal(m.mergeSummary({ id: 'i-1', status: 'regressed', proposal: 'p-9', updated_at: 100 }), true);
  assert.equal(m.mergeSummary({ id: 'i-1', status: 'open', updated_at: 1 }), false);
  assert.equal(m.mergeSummary({ id: 'i-2', status: 'open', updated_at: 1000 }), false);
  assert.equal(m.status, 'regressed');
});

check('incidents: timeline texts keep hostile log text as plain strings and say what happened', () => {
  const hostile = '<img src=x onerror="window.pwned=1">';
  assert.equal(eventText({ kind: 'incident_resolved', data: { by: hostile, reason: hostile } }), `Resolved by ${hostile}: ${hostile}`);
  assert.equal(eventText({ kind: 'bucket', data: { bucket_start: 1, value: 2 } }), null);
  assert.equal(eventText({ kind: 'bug_filed', data: { bug: 'b-1', automatic: true, by: 'medic:monitor' } }), 'Bug b-1 filed automatically');
  assert.equal(eventText({ kind: 'anomaly', data: { kind: 'error_rate', value: 0.25, baseline: 0.01, severity: 'high' } }),
    'Seen again: 25.0 % against a baseline of 1.0 % (severity high)');
  assert.equal(eventText({ kind: 'healed', data: { time_to_heal_ms: 125000, fix_to_heal_ms: 20000 } }), 'Healed in 2 min 5 s (20 s after the fix)');
  assert.equal(eventText({ kind: 'incident_reopened', data: { reason: null } }), 'Reopened: ');
  assert.equal(formatDuration(-1), '');
  assert.equal(formatDuration(7_260_000), '2 h 1 min');
});

check('incident routes: #/incidents and #/incidents/<id>, hostile ids refused', () => {
  const r = new Router();
  for (const route of [...INCIDENT_LIST_ROUTES, ...INCIDENT_ROUTES]) r.add(route);
  assert.deepEqual(r.match('#/incidents'), { name: 'incidents', params: {} });
  assert.deepEqual(r.match('#/incidents/i-7kq2mx9dwe'), { name: 'incident', params: { id: 'i-7kq2mx9dwe' } });
  assert.equal(r.match('#/incidents/%3Cimg%20src%3Dx%3E').name, 'not-found');
  assert.equal(r.href('incident', { id: 'i-1' }), '#/incidents/i-1');
});

let failed = 0;
for (const [name, fn] of checks) {
  try { await fn(); console.log(`ok   ${name}`); } catch (e) { failed++; console.log(`FAIL ${name}\n${e.stack}`); }
}
process.exit(failed ? 1 : 0);
