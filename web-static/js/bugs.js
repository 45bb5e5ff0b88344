// bugs.js: the bug workflow's state (bug-spec: `report_bug`, topics `bugs` and `bug:<id>`) — the bugs list, one
// bug folded from its events, and the pure helpers the bug views share: evidence splitting, the live checklist,
// what the signed-in role may do, the figures of an approach card. No DOM here, so node checks it (js_units.mjs).
//
// Everything the server sends is data: titles, evidence, model text and test output are kept as strings and shown
// with textContent by the views.

import { SummaryList } from './summary-list.js';
import { diffChange } from './diff.js';
import { mergeChanges } from './store.js';

export const SEVERITIES = ['low', 'medium', 'high', 'critical'];
/** Most console lines kept per approach (older ones are dropped and counted). */
export const APPROACH_CONSOLE_LIMIT = 2000;
/** Most characters of a streaming fix reply kept per attempt. */
const DELTA_LIMIT = 64 * 1024;

/**
 * The evidence textarea as `report_bug.evidence`: blocks separated by a line holding only `---` become separate
 * items; blank lines around a block are dropped (indentation inside it is kept: stack traces), empty blocks vanish.
 */
export function splitEvidence(text) {
  const blocks = [[]];
  for (const line of String(text ?? '').replace(/\r\n?/g, '\n').split('\n')) {
    if (line.trim() === '---') blocks.push([]);
    else blocks[blocks.length - 1].push(line);
  }
  return blocks
    .map((lines) => lines.join('\n').replace(/^(?:[ \t]*\n)+/, '').replace(/\s+$/, ''))
    .filter((block) => block.trim() !== '');
}

/** The `bugs` topic (kind `bug`, the summary) and `GET /api/v1/bugs` folded into one map of summaries. */
/** The bugs known to the page (`bugs` topic + REST list). */
export class BugList extends SummaryList {
  constructor() { super('bug'); }
}

/** Bug-level kinds whose `approach` field names an approach without being one of its events. */
const BUG_LEVEL = new Set(['bug_proposed', 'approaches_ranked', 'approach_chosen', 'bug_fixed', 'bug_unfixed']);

function newApproach(n) {
  return {
    n, strategy: '', summary: '', explanation: '', status: 'queued', attempt: 0, maxAttempts: null, reason: null,
    files: null, lines: null, duplicateOf: null, breaking: [],
    started: false,       // approach_started (or approach_duplicate) arrived: the model wrote it
    detail: null,         // its row of the REST detail (`approach_details`): figures the events do not carry
    /** @type {Map<number, object[]>} changes per revision (a fix sends only what it changes) */
    revisions: new Map(),
    tests: null,          // the last test_finished: {passed, failed, durationMs, exitCode, timedOut}
    running: false,       // a test run is in progress
    reproducerPassed: null,
    console: [], consoleDropped: 0,
    /** @type {Map<number, string>} the fix reply as it streams, per attempt (fix_delta) */
    deltas: new Map(),
    writing: null,        // the attempt being written, or null
  };
}

/**
 * One bug, folded from the events of its `bug:<id>` topic (and the REST detail for what events do not carry).
 * `apply(ev)` is idempotent per seq only through the connection (which drops repeats); unknown kinds are ignored.
 */
export class BugModel {
  constructor(id) {
    this.id = id;
    this.summary = null;    // from GET /api/v1/bugs/<id> or the list
    this.report = null;     // bug_reported.data (or the detail's `report`)
    this.status = null;
    this.reason = null;
    this.reproduced = null; // true | false | null
    this.analysis = null;   // {summary, locations, causes, located}
    this.reproducer = null; // {state: 'writing'|'verified'|'rejected', attempt, path, explanation, output, reason}
    /** @type {Map<number, object>} */
    this.approaches = new Map();
    this.ranking = null;    // approaches_ranked.data
    this.proposal = null;   // {id, approach}
    this.unfixed = null;    // [{approach, reason}]
    this.fixed = null;      // {proposal, commit}
    this.proposalStatus = null;  // the current proposal's status (proposal_status)
    this.chosenBy = null;   // approach_chosen: {approach, principal, replaces}
    /** The model's reply while it streams for the bug itself (fix_delta with a `purpose`, no approach): {purpose, text}. */
    this.live = null;
    this.lastSeq = 0;
  }

  approach(n) {
    const key = Number(n);
    if (!this.approaches.has(key)) this.approaches.set(key, newApproach(key));
    return this.approaches.get(key);
  }

  /** Approaches in number order. */
  sortedApproaches() { return [...this.approaches.values()].sort((a, b) => a.n - b.n); }

  get title() { return this.report?.title ?? this.summary?.title ?? this.id; }
  get requested() { return this.report?.approaches ?? this.summary?.approaches ?? null; }

  /**
   * The REST detail (`GET /api/v1/bugs/<id>`): the summary fields, the report, and what an approach's revisions
   * contain (approach_started lists paths only). Events stay authoritative: the detail fills gaps, never overwrites.
   */
  setDetail(detail) {
    if (!detail || typeof detail !== 'object') return;
    this.summary = { ...this.summary, ...detail };
    if (!this.report && detail.report && typeof detail.report === 'object') this.report = detail.report;
    if (this.status === null && typeof detail.status === 'string') this.status = detail.status;
    if (this.reproduced === null && typeof detail.reproduced === 'boolean') this.reproduced = detail.reproduced;
    if (!this.reproducer && detail.reproduced === false && typeof detail.reproducer_reason === 'string') {
      this.reproducer = { state: 'rejected', reason: detail.reproducer_reason };
    }
    if (!this.analysis && detail.analysis && Array.isArray(detail.analysis.locations)) this.analysis = detail.analysis;
    if (!this.ranking && detail.ranking && Array.isArray(detail.ranking.approaches)) this.ranking = detail.ranking;
    if (!this.proposal && typeof detail.proposal === 'string') {
      this.proposal = { id: detail.proposal, approach: detail.chosen_approach ?? null };
    }
    // Medic's detail lists them as `approach_details` (`approaches` is the count asked for); an array there is read too.
    const rows = Array.isArray(detail.approach_details) ? detail.approach_details : (Array.isArray(detail.approaches) ? detail.approaches : []);
    for (const a of rows) {
      const n = a?.approach ?? a?.number;
      if (typeof n !== 'number') continue;
      const mine = this.approach(n);
      mine.detail = a;
      if (!mine.summary && typeof a.summary === 'string') mine.summary = a.summary;
      if (!mine.strategy && typeof a.strategy === 'string') mine.strategy = a.strategy;
      if (mine.status === 'queued' && typeof a.status === 'string') mine.status = a.status;
      const revisions = Array.isArray(a.revisions) ? a.revisions : (Array.isArray(a.changes) ? [{ number: 1, changes: a.changes }] : []);
      revisions.forEach((r, i) => {
        const number = typeof r?.number === 'number' ? r.number : (typeof r?.revision === 'number' ? r.revision : i + 1);
        const changes = Array.isArray(r?.changes) ? r.changes : [];
        const known = mine.revisions.get(number);
        if (!known || (!hasContent(known) && hasContent(changes))) mine.revisions.set(number, changes);
      });
    }
  }

  /** Folds one event. */
  apply(ev) {
    const d = ev.data ?? {};
    if (typeof ev.seq === 'number') this.lastSeq = ev.seq;
    const a = typeof d.approach === 'number' && !BUG_LEVEL.has(ev.kind) ? this.approach(d.approach) : null;
    const say = (kind, text) => {
      a.console.push({ kind, text: String(text) });
      const extra = a.console.length - APPROACH_CONSOLE_LIMIT;
      if (extra > 0) { a.console.splice(0, extra); a.consoleDropped += extra; }
    };
    switch (ev.kind) {
      case 'bug_reported':
        this.report = { ...d };
        if (this.status === null) this.status = 'analyzing';
        break;
      case 'status_changed':
        if (a) { a.status = d.status; break; }
        this.status = d.status;
        this.reason = d.reason ?? null;
        break;
      case 'bug_analysis':
        this.live = null;
        this.analysis = {
          summary: String(d.summary ?? ''),
          locations: Array.isArray(d.locations) ? d.locations : [],
          causes: Array.isArray(d.causes) ? d.causes : [],
          located: Array.isArray(d.located) ? d.located : [],
        };
        break;
      case 'reproducer_written':
        this.live = null;
        this.reproducer = { state: 'writing', attempt: d.attempt ?? 1, path: d.path, explanation: d.explanation, content: d.content };
        break;
      case 'reproducer_verified':
        this.reproducer = { ...this.reproducer, state: 'verified', path: d.path ?? this.reproducer?.path, output: d.output };
        this.reproduced = true;
        break;
      case 'reproducer_rejected':
        // `attempt: 1` is a first try refused: the model is asked once more. Otherwise the bug goes on unreproduced.
        if (d.attempt === 1) {
          this.reproducer = { ...this.reproducer, state: 'retrying', path: d.path ?? this.reproducer?.path, reason: d.reason };
          break;
        }
        this.reproducer = { ...this.reproducer, state: 'rejected', path: d.path ?? this.reproducer?.path, reason: d.reason };
        this.reproduced = false;
        break;
      case 'approach_started':
        if (!a) break;
        a.started = true;
        a.writing = null;   // the approach's own reply is complete
        a.strategy = String(d.strategy ?? '');
        a.summary = String(d.summary ?? '');
        a.explanation = String(d.explanation ?? '');
        a.files = d.files ?? null;
        a.lines = d.lines ?? null;
        if (Array.isArray(d.changes) && (!a.revisions.has(1) || hasContent(d.changes))) a.revisions.set(1, d.changes);
        break;
      case 'approach_duplicate':
        if (!a) break;
        a.started = true;
        a.status = 'duplicate';
        a.duplicateOf = d.duplicate_of ?? null;
        a.reason = d.reason ?? null;
        break;
      case 'approach_status':
        if (!a) break;
        a.status = d.status;
        if (typeof d.attempt === 'number') a.attempt = d.attempt;
        if (typeof d.max_attempts === 'number') a.maxAttempts = d.max_attempts;
        if (d.reason !== undefined) a.reason = d.reason;
        if (Array.isArray(d.breaking)) a.breaking = d.breaking.map(String);
        if (d.status !== 'fixing') a.writing = null;
        break;
      case 'sandbox_ready':
        if (a) say('note', `sandbox ready for revision ${d.revision ?? '?'}${d.isolation ? ` (${d.isolation})` : ''}`);
        break;
      case 'test_started':
        if (!a) break;
        a.running = true;
        say('header', `$ ${d.command ?? 'tests'}   (revision ${d.revision ?? '?'})`);
        break;
      case 'test_output':
        if (!a) break;
        for (const line of Array.isArray(d.lines) ? d.lines : []) say(d.stream === 'stderr' ? 'stderr' : 'stdout', line);
        break;
      case 'test_finished': {
        if (!a) break;
        a.running = false;
        a.tests = { passed: d.passed ?? 0, failed: d.failed ?? 0, durationMs: d.duration_ms, exitCode: d.exit_code, timedOut: !!d.timed_out };
        if (typeof d.reproducer_passed === 'boolean') a.reproducerPassed = d.reproducer_passed;
        const ok = d.exit_code === 0 && !d.timed_out;
        say(ok ? 'pass' : 'fail', `${ok ? 'passed' : 'failed'}: ${d.passed ?? 0} passed, ${d.failed ?? 0} failed${d.timed_out ? ', timed out' : ''}`);
        break;
      }
      case 'analysis':
        if (a && d.root_cause) say('note', `analysis: ${d.root_cause}`);
        break;
      case 'fix_started':
        if (!a) break;
        if (typeof d.attempt === 'number') { a.attempt = d.attempt; a.writing = d.attempt; a.deltas.set(d.attempt, ''); }
        if (typeof d.max_attempts === 'number') a.maxAttempts = d.max_attempts;
        say('note', `fix attempt ${d.attempt ?? '?'} started`);
        break;
      case 'fix_delta': {
        if (!a) {
          // The bug's own requests (analysis, reproducer) stream too; kept until their event arrives.
          if (typeof d.purpose !== 'string' || typeof d.text !== 'string') break;
          const before = this.live?.purpose === d.purpose ? this.live.text : '';
          const text = before + d.text;
          this.live = { purpose: d.purpose, text: text.length > DELTA_LIMIT ? text.slice(text.length - DELTA_LIMIT) : text };
          break;
        }
        if (typeof d.attempt !== 'number') break;
        // The approach's reply itself streams before approach_started (attempt 1); fix attempts after fix_started.
        if (!a.started && a.writing === null && d.attempt === 1 && a.deltas.size === 0) {
          a.writing = 1;
          if (a.status === 'queued') a.status = 'asking';
        }
        if (a.writing !== d.attempt) break;   // a late delta of a finished attempt
        const text = (a.deltas.get(d.attempt) ?? '') + String(d.text ?? '');
        a.deltas.set(d.attempt, text.length > DELTA_LIMIT ? text.slice(text.length - DELTA_LIMIT) : text);
        break;
      }
      case 'fix_generated':
        if (!a) break;
        if (typeof d.revision === 'number' && Array.isArray(d.changes)) a.revisions.set(d.revision, d.changes);
        a.writing = null;
        say('note', `fix attempt ${d.attempt ?? '?'} wrote revision ${d.revision ?? '?'}${d.explanation ? `: ${d.explanation}` : ''}`);
        break;
      case 'fix_failed':
        if (!a) break;
        a.writing = null;
        say('fail', `fix attempt ${d.attempt ?? '?'} failed: ${d.reason ?? ''}`);
        break;
      case 'unfixable':
        if (!a) break;
        a.writing = null;
        say('fail', `unfixable: ${d.explanation ?? d.reason ?? ''}`);
        break;
      case 'approaches_ranked':
        this.ranking = { approaches: Array.isArray(d.approaches) ? d.approaches : [], winner: d.winner ?? null, why: String(d.why ?? '') };
        for (const row of this.ranking.approaches) {
          if (typeof row?.approach !== 'number') continue;
          const mine = this.approach(row.approach);
          if (!mine.strategy && row.strategy) mine.strategy = String(row.strategy);
          const passes = row.reproducer_passes ?? row.reproducer_passed;
          if (typeof passes === 'boolean') mine.reproducerPassed = passes;
        }
        break;
      case 'bug_proposed':
        this.proposal = { id: d.proposal, approach: d.approach ?? null };
        this.proposalStatus = null;
        this.unfixed = null;
        break;
      case 'approach_chosen':
        this.chosenBy = { approach: d.approach, principal: d.principal, replaces: d.replaces };
        break;
      case 'proposal_status':
        if (d.proposal === this.proposal?.id) this.proposalStatus = d.status ?? null;
        break;
      case 'bug_unfixed':
        this.unfixed = Array.isArray(d.reasons) ? d.reasons : [];
        break;
      case 'bug_fixed':
        this.fixed = { proposal: d.proposal, commit: d.commit };
        break;
      default:
        break;
    }
  }

  /** An approach's whole patch (its revisions merged in order), for the diff view. */
  patch(n) {
    const a = this.approaches.get(n);
    if (!a) return [];
    let full = [];
    for (const number of [...a.revisions.keys()].sort((x, y) => x - y)) full = mergeChanges(full, a.revisions.get(number));
    return full;
  }

  /**
   * The patch as diffs. The repository's base content never comes with a bug's events, so a modified file shows
   * its new content whole (like a proposal's first revision), a created file as additions; a change whose content
   * was not sent is marked `missing`.
   */
  diffs(n) {
    return this.patch(n).map((c) => {
      if (c.action !== 'delete' && typeof c.content !== 'string') return { path: c.path, action: c.action, missing: true, kind: c.action, hunks: [], added: 0, removed: 0 };
      return { path: c.path, action: c.action, ...diffChange(c, undefined) };
    });
  }

  /** The qualified approaches (by approach_status or the ranking). */
  qualified(n) {
    const row = this.ranking?.approaches.find((r) => r.approach === n);
    if (row) return !!row.qualified;
    return this.approaches.get(n)?.status === 'qualified';
  }
}

function hasContent(changes) {
  return Array.isArray(changes) && changes.some((c) => typeof c?.content === 'string');
}

/** A proposal's statuses on its way to review (the winner's proposal is tested again on its own). */
const PROPOSAL_CHECKING = new Set(['proposed', 'deploying', 'testing', 'tests_failed', 'analyzing', 'fixing', 'tests_passed', 'changes_requested']);
const BUSY_APPROACH = new Set(['deploying', 'testing', 'analyzing', 'fixing']);
const LATE_STATUSES = new Set(['fixing', 'proposed', 'fixed', 'unfixed']);

/**
 * The live checklist (the customer's plan): one item per step, `{key, state, text}` with state `done`, `running`,
 * `warn`, `fail`, `skip` or `pending`. Derived from the model alone, so it can never disagree with the events.
 */
export function bugChecklist(m) {
  const items = [];
  const status = m.status;
  const stopped = status === 'interrupted';
  const item = (key, state, text) => items.push({ key, state, text });

  // 1. Analysis.
  if (m.analysis) item('analyzed', 'done', 'Analyzed bug');
  else item('analyzed', status === 'analyzing' ? 'running' : 'pending', status === 'analyzing' ? 'Analyzing the bug…' : 'Analyze the bug');

  // 2. Location.
  const where = m.analysis?.locations?.[0];
  if (where) item('location', 'done', `Found location: ${where.file}${where.line ? `:${where.line}` : ''}`);
  else if (m.analysis) item('location', 'warn', 'No location found');
  else item('location', 'pending', 'Find the location');

  // 3. Reproduction.
  const r = m.reproducer;
  if (r?.state === 'verified' || (m.reproduced === true && r?.state !== 'rejected')) item('reproduced', 'done', 'Reproduced the bug');
  else if (r?.state === 'retrying' && !stopped) item('reproduced', 'running', `Reproducing the bug (second try; the first was refused: ${r.reason ?? ''})…`);
  else if (r?.state === 'rejected' || m.reproduced === false) item('reproduced', 'warn', `Not reproduced: ${r?.reason ?? 'no failing test could be written'}`);
  else if (status === 'reproducing') {
    item('reproduced', 'running', (r?.attempt ?? 1) > 1 ? 'Reproducing the bug (second try)…' : 'Reproducing the bug…');
  } else item('reproduced', 'pending', 'Reproduce the bug');

  // 4. Approaches generated.
  const count = [...m.approaches.values()].filter((a) => a.started).length;
  const requested = m.requested;
  const plural = (n) => `${n} potential fix${n === 1 ? '' : 'es'}`;
  if (count && (m.ranking || m.proposal || m.unfixed || (requested && count >= requested) || (LATE_STATUSES.has(status) && status !== 'fixing'))) {
    item('generated', 'done', `Generated ${plural(count)}`);
  } else if (status === 'fixing') {
    item('generated', 'running', `Generating ${plural(requested ?? count)}${count ? ` (${count} so far)` : ''}…`);
  } else item('generated', count ? 'done' : 'pending', count ? `Generated ${plural(count)}` : 'Generate potential fixes');

  // 5. One line per approach.
  for (const a of m.sortedApproaches()) {
    const key = `approach-${a.n}`;
    const label = `fix #${a.n}`;
    if (a.status === 'qualified') item(key, 'done', `Fix #${a.n} passes all tests`);
    else if (a.status === 'failed') item(key, 'fail', `Fix #${a.n} failed${a.reason ? `: ${a.reason}` : ''}`);
    else if (a.status === 'duplicate') item(key, 'skip', `Fix #${a.n} duplicates fix #${a.duplicateOf ?? '?'}`);
    else if (stopped || a.status === 'interrupted') item(key, 'pending', `Testing ${label} stopped`);
    else if (a.status === 'asking') item(key, 'running', `Writing fix #${a.n}…`);
    else if (a.status === 'fixing') item(key, 'running', `Fix #${a.n}: writing attempt ${a.attempt}${a.maxAttempts ? `/${a.maxAttempts}` : ''}…`);
    else if (a.status === 'analyzing') item(key, 'running', `Fix #${a.n} failed a test; analysing why…`);
    else if (BUSY_APPROACH.has(a.status)) item(key, 'running', `Testing ${label} in sandbox…`);
    else item(key, 'pending', `Test ${label} (queued)`);
  }

  // 6. The outcome.
  const winner = m.proposal?.approach ?? m.ranking?.winner ?? null;
  if (m.fixed || status === 'fixed') item('result', 'done', `Fix #${winner ?? '?'} applied${m.fixed?.commit ? ` as commit ${String(m.fixed.commit).slice(0, 12)}` : ''}`);
  else if (m.proposal && status !== 'unfixed') {
    // The proposal made from the winner runs its own pipeline (proposal_status): "ready to review" once it waits for it.
    const ps = m.proposalStatus;
    const fix = `Fix #${winner ?? '?'}`;
    if (!ps || ps === 'awaiting_review') item('result', 'done', `${fix} passes all tests, ready to review`);
    else if (PROPOSAL_CHECKING.has(ps)) item('result', 'running', `${fix} passes all tests; its proposal is being checked (${ps.replace(/_/g, ' ')})…`);
    else if (ps === 'approved' || ps === 'applying') item('result', 'running', `${fix} was approved; applying it…`);
    else if (ps === 'applied') item('result', 'done', `${fix} applied`);
    else item('result', 'warn', `${fix}'s proposal is ${ps.replace(/_/g, ' ')}`);
  }
  else if (m.unfixed || status === 'unfixed') item('result', 'fail', 'No approach qualified');
  else if (stopped) item('result', 'warn', `Interrupted${m.reason ? ` (${m.reason})` : ''}: an admin can resume it`);
  else if (m.ranking?.winner) item('result', 'running', `Fix #${m.ranking.winner} ranked best; making the proposal…`);
  else item('result', 'pending', 'Pick the best fix');
  return items;
}

/** What the signed-in principal may do with bugs (the server decides; this only hides what it would refuse). */
export function bugPermissions(me, model, live = true) {
  const admin = me?.role === 'admin';
  return {
    canReport: me?.role === 'admin' || me?.role === 'bot',
    canResume: admin && live && model?.status === 'interrupted',
    /** "Use this approach instead": another qualified approach of a proposed bug. */
    canChoose: (n) => admin && live && !!model && model.status === 'proposed' && model.qualified(n)
      && (model.proposal?.approach ?? model.summary?.chosen_approach ?? model.ranking?.winner) !== n,
  };
}

function formatMs(ms) {
  const abs = Math.abs(ms);
  return abs < 1000 ? `${abs} ms` : `${(abs / 1000).toFixed(1)} s`;
}

/** The figures an approach card shows, as text (pure). */
export function approachFigures(m, n) {
  const a = m.approaches.get(n) ?? newApproach(n);
  const row = m.ranking?.approaches.find((r) => r.approach === n) ?? a.detail ?? null;
  const passed = a.tests?.passed ?? row?.tests_passed;
  const failed = a.tests?.failed ?? row?.tests_failed;
  const tests = typeof passed === 'number' ? `${passed}/${passed + (failed ?? 0)} passed` : (a.running ? 'running…' : '—');
  let reproducer;
  if (a.reproducerPassed === true) reproducer = 'passes';
  else if (a.reproducerPassed === false) reproducer = 'fails';
  else if (m.reproduced === false) reproducer = 'none (bug not reproduced)';
  else if (m.reproduced === true && (a.status === 'qualified' || row?.qualified)) reproducer = 'passes';
  else reproducer = '—';
  const files = row?.files ?? a.files;
  const lines = row?.lines ?? a.lines;
  const size = typeof files === 'number' ? `${files} file${files === 1 ? '' : 's'}${typeof lines === 'number' ? `, ${lines} line${lines === 1 ? '' : 's'}` : ''}` : '—';
  let duration = null;
  if (row && typeof row.duration_ms === 'number' && typeof row.base_duration_ms === 'number') {
    const delta = row.duration_ms - row.base_duration_ms;
    const pct = row.base_duration_ms > 0 ? ` (${delta >= 0 ? '+' : '−'}${Math.round(Math.abs(100 * delta) / row.base_duration_ms)}%)` : '';
    duration = `${delta >= 0 ? '+' : '−'}${formatMs(delta)} vs base${pct}`;
  }
  const chosen = m.proposal?.approach ?? null;
  return {
    attempt: `${a.attempt || row?.attempts || 0}/${a.maxAttempts ?? row?.max_attempts ?? '?'}`,
    tests, reproducer, size, duration,
    breaking: Array.isArray(row?.breaking) ? row.breaking.map(String) : a.breaking,
    winner: m.ranking?.winner === n,
    chosen: chosen === n,
    rankReason: row?.reason ? String(row.reason) : null,
  };
}
