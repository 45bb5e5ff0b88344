// js_units.mjs: unit checks of the page's pure modules (diff, seq tracking, backoff, the proposal model) under node.
import assert from 'node:assert/strict';
import { diffLines, hunks, diffChange, splitLines } from '../../web-static/js/diff.js';
import { SeqTracker, backoffDelay, Connection } from '../../web-static/js/connection.js';
import { ProposalModel, ProposalList, reviewPermissions, initials } from '../../web-static/js/store.js';

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

let failed = 0;
for (const [name, fn] of checks) {
  try { await fn(); console.log(`ok   ${name}`); } catch (e) { failed++; console.log(`FAIL ${name}\n${e.stack}`); }
}
process.exit(failed ? 1 : 0);
