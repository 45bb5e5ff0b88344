// store.js: the page's state — the proposals list and one proposal folded from its event stream.

import { diffChange } from './diff.js';
import { ReplyReader } from './reply.js';

/** Statuses in which the pipeline is working on its own (the page shows a spinner-ish badge). */
export const BUSY_STATUSES = new Set(['proposed', 'deploying', 'testing', 'analyzing', 'fixing', 'approved', 'applying']);

/** Statuses a proposal never leaves for review again. */
export const CLOSED_STATUSES = new Set(['applied', 'apply_failed', 'rolled_back', 'rejected', 'unfixable', 'interrupted']);

/** Most console lines kept per proposal; older lines are dropped (the timeline keeps the summaries). */
export const CONSOLE_LIMIT = 5000;

/** The `proposals` topic folded into a map of summaries (kind `proposal` events). */
export class ProposalList {
  constructor() { /** @type {Map<string, object>} */ this.byId = new Map(); }

  apply(ev) {
    if (ev.kind !== 'proposal' || !ev.data || typeof ev.data.id !== 'string') return false;
    this.byId.set(ev.data.id, { ...ev.data, seq: ev.seq });
    return true;
  }

  clear() { this.byId.clear(); }

  /** Newest activity first, like the REST listing. */
  sorted() {
    return [...this.byId.values()].sort((a, b) => (b.updated_at ?? 0) - (a.updated_at ?? 0) || (b.seq ?? 0) - (a.seq ?? 0));
  }
}

/**
 * One proposal, folded from the events of its `proposal:<id>` topic.
 *
 * `apply(event)` returns a list of changes for the view: `{type: 'append'|'update', entry}`
 * for timeline entries, `{type: 'console', lines}` for new console lines, and
 * `{type: 'header'}` when status, revision, reviews or presence changed. Entries are keyed
 * so that later events (test_finished, fix_generated) update the entry an earlier one made.
 */
export class ProposalModel {
  constructor(id) {
    this.id = id;
    this.info = null;             // proposal_created.data.proposal
    this.status = null;
    this.revision = 0;
    this.attempt = 0;
    this.maxAttempts = null;
    this.reason = null;
    /** @type {object[]} timeline entries in order */
    this.entries = [];
    this.entryByKey = new Map();
    /** Content of every file after the latest revision (null = deleted); the base for the next diff. */
    this.files = new Map();
    /** @type {Map<number, {number, changes, diffs}>} */
    this.revisions = new Map();
    /** Reviews per revision: {approvals: string[], quorum, verdicts: [{principal, verdict, comment}]} */
    this.reviews = new Map();
    this.quorum = null;
    this.console = [];
    this.consoleDropped = 0;
    this.presence = [];
    this.lastSeq = 0;
    this.applied = null;          // {revision, commit, approvers}
    /** Fix replies being read while they stream, per attempt (see reply.js). */
    this.readers = new Map();
    /** Per revision: {commit, files: {path: content|null}, omitted: [path]} from GET …/revisions/{n}/base. */
    this.bases = new Map();
  }

  /**
   * The repository's files at revision `number`'s base commit arrived: every revision's diffs are worked out
   * again (a file the proposal had not touched before diffs against the base, not against nothing).
   * Returns the timeline updates for the entries that show revisions.
   */
  setBase(number, base) {
    this.bases.set(number, { commit: base.base_commit, files: base.files ?? {}, omitted: base.omitted ?? [] });
    this.files.clear();
    for (const rev of [...this.revisions.values()].sort((a, b) => a.number - b.number)) {
      rev.diffs = this.diffsOf(rev.number, rev.changes);
      for (const c of rev.changes) this.files.set(c.path, c.action === 'delete' ? null : (c.content ?? ''));
    }
    return this.entries.filter((e) => e.revision).map((entry) => ({ type: 'update', entry }));
  }

  /** A file's content at revision `number`'s base: a string, null when absent there, undefined when unknown. */
  baseFile(number, path) {
    const base = this.bases.get(number);
    if (!base || base.omitted.includes(path) || !(path in base.files)) return undefined;
    return base.files[path];
  }

  diffsOf(number, changes) {
    return changes.map((c) => {
      const before = this.files.has(c.path) ? this.files.get(c.path) : this.baseFile(number, c.path);
      return { path: c.path, action: c.action, ...diffChange(c, before) };
    });
  }

  /**
   * "What will be committed": revision `number`'s whole patch against its base commit — null until the base
   * is known. Unlike the timeline (each revision against the one before), this is the diff the approval commits.
   */
  committed(number) {
    const rev = this.revisions.get(number);
    const base = this.bases.get(number);
    if (!rev || !base) return null;
    const diffs = rev.full.map((c) => ({ path: c.path, action: c.action, ...diffChange(c, this.baseFile(number, c.path)) }));
    return { number, commit: base.commit, diffs };
  }

  /** Marks every fix attempt still shown as "writing" as ended: the state it belonged to is gone. */
  endWritingAttempts(out) {
    for (const e of this.entries) {
      if (e.key.startsWith('fix-') && e.state === 'writing') { e.state = 'ended'; out.push({ type: 'update', entry: e }); }
    }
  }

  get maxAttemptsShown() { return this.maxAttempts ?? this.info?.max_attempts ?? 3; }

  /** Reviews of the revision on screen. */
  currentReviews() {
    return this.reviews.get(this.revision) ?? { approvals: [], quorum: this.quorum, verdicts: [] };
  }

  setPresence(members) {
    this.presence = Array.isArray(members) ? members : [];
    return [{ type: 'header' }];
  }

  /** Folds one event; unknown kinds are ignored (the protocol may add kinds). */
  apply(ev) {
    const out = [];
    const d = ev.data ?? {};
    if (typeof ev.seq === 'number') this.lastSeq = ev.seq;
    const add = (key, entry) => {
      const e = { key, kind: ev.kind, seq: ev.seq, ts: ev.ts, ...entry };
      this.entries.push(e);
      this.entryByKey.set(key, e);
      out.push({ type: 'append', entry: e });
      return e;
    };
    const update = (key, fields, fallback) => {
      const e = this.entryByKey.get(key);
      if (!e) return fallback ? add(key, { ...fallback, ...fields }) : null;
      // The entry now shows the latest step (test_started → test_finished, fix_started → fix_generated).
      Object.assign(e, fields, { kind: ev.kind, ts: ev.ts });
      out.push({ type: 'update', entry: e });
      return e;
    };
    const consoleLines = (lines) => {
      this.console.push(...lines);
      const extra = this.console.length - CONSOLE_LIMIT;
      if (extra > 0) { this.console.splice(0, extra); this.consoleDropped += extra; }
      out.push({ type: 'console', lines });
    };

    switch (ev.kind) {
      case 'proposal_created': {
        this.info = d.proposal ?? {};
        this.status = this.info.status ?? 'proposed';
        this.revision = d.revision?.number ?? this.info.revision ?? 1;
        this.maxAttempts = this.info.max_attempts ?? this.maxAttempts;
        const rev = this.addRevision(this.revision, d.revision?.changes ?? []);
        add('created', { title: this.info.title, author: this.info.author, description: this.info.description, revision: rev });
        out.push({ type: 'header' });
        break;
      }
      case 'status_changed':
        // An attempt still "writing" when the proposal leaves `fixing` was abandoned (unfixable, interrupted…).
        if (d.status !== 'fixing') this.endWritingAttempts(out);
        this.status = d.status;
        if (typeof d.revision === 'number') this.revision = d.revision;
        if (typeof d.attempt === 'number') this.attempt = d.attempt;
        if (typeof d.max_attempts === 'number') this.maxAttempts = d.max_attempts;
        this.reason = d.reason ?? null;
        add(`status-${ev.seq}`, { status: d.status, reason: d.reason, attempt: d.attempt, revisionNo: d.revision });
        out.push({ type: 'header' });
        break;
      case 'sandbox_ready':
        add(`sandbox-${ev.seq}`, { revisionNo: d.revision, isolation: d.isolation, durationMs: d.duration_ms });
        break;
      case 'test_started':
        add(`test-${d.revision}-${ev.seq}`, { revisionNo: d.revision, command: d.command, running: true });
        this.currentTestKey = `test-${d.revision}-${ev.seq}`;
        consoleLines([{ kind: 'header', text: `$ ${d.command ?? 'tests'}   (revision ${d.revision})` }]);
        break;
      case 'test_output': {
        const stream = d.stream === 'stderr' ? 'stderr' : 'stdout';
        const lines = Array.isArray(d.lines) ? d.lines : [];
        consoleLines(lines.map((text) => ({ kind: stream, text: String(text) })));
        break;
      }
      case 'test_finished': {
        const fields = {
          revisionNo: d.revision, running: false, exitCode: d.exit_code, passed: d.passed, failed: d.failed,
          durationMs: d.duration_ms, timedOut: d.timed_out, truncated: d.truncated,
        };
        const key = this.currentTestKey && this.entryByKey.get(this.currentTestKey)?.revisionNo === d.revision
          ? this.currentTestKey : `test-${d.revision}-${ev.seq}`;
        update(key, fields, {});
        this.currentTestKey = null;
        const ok = d.exit_code === 0 && !d.timed_out;
        consoleLines([{ kind: ok ? 'pass' : 'fail', text: `${ok ? 'passed' : 'failed'}: ${d.passed ?? 0} passed, ${d.failed ?? 0} failed` + (d.timed_out ? ', timed out' : '') + (d.duration_ms !== undefined ? ` in ${d.duration_ms} ms` : '') }]);
        break;
      }
      case 'analysis':
        add(`analysis-${ev.seq}`, {
          revisionNo: d.revision, category: d.category, categories: d.categories ?? (d.category ? [d.category] : []),
          rootCause: d.root_cause, locations: d.locations ?? [], messages: d.messages ?? [],
        });
        break;
      case 'fix_started':
        if (typeof d.max_attempts === 'number') this.maxAttempts = d.max_attempts;
        if (typeof d.attempt === 'number') this.attempt = d.attempt;
        this.readers.delete(d.attempt);
        update(`fix-${d.attempt}`, { state: 'writing', fromRevision: d.revision, attempt: d.attempt, maxAttempts: this.maxAttemptsShown, stream: '', streamJSON: false, streamExplanation: null, streamPaths: [] },
          { stream: '' });
        out.push({ type: 'header' });
        break;
      case 'fix_delta': {
        // Ephemeral: appended to the attempt's entry while it is being written.
        const e = this.entryByKey.get(`fix-${d.attempt}`);
        if (e && e.state !== 'writing') break; // already finished; late deltas are noise
        const text = String(d.text ?? '');
        const reader = this.readers.get(d.attempt) ?? new ReplyReader();
        this.readers.set(d.attempt, reader);
        reader.push(text);
        update(`fix-${d.attempt}`, {
          stream: (e?.stream ?? '') + text,
          streamJSON: reader.started, streamExplanation: reader.explanation, streamPaths: [...reader.paths],
        }, { state: 'writing', attempt: d.attempt, maxAttempts: this.maxAttemptsShown, stream: '' });
        break;
      }
      case 'fix_generated': {
        const rev = this.addRevision(d.revision, d.changes ?? []);
        update(`fix-${d.attempt}`, { state: 'generated', attempt: d.attempt, maxAttempts: this.maxAttemptsShown, explanation: d.explanation, revision: rev, revisionNo: d.revision },
          { stream: '' });
        break;
      }
      case 'fix_failed':
        update(`fix-${d.attempt}`, { state: 'failed', attempt: d.attempt, maxAttempts: this.maxAttemptsShown, reason: d.reason }, { stream: '' });
        break;
      case 'unfixable':
        this.endWritingAttempts(out);
        add(`unfixable-${ev.seq}`, { reason: d.reason, explanation: d.explanation });
        break;
      case 'review': {
        const r = this.reviews.get(d.revision) ?? { approvals: [], quorum: null, verdicts: [] };
        r.verdicts.push({ principal: d.principal, verdict: d.verdict, comment: d.comment });
        if (Array.isArray(d.approvals)) r.approvals = d.approvals;
        if (typeof d.quorum === 'number') { r.quorum = d.quorum; this.quorum = d.quorum; }
        this.reviews.set(d.revision, r);
        add(`review-${ev.seq}`, { revisionNo: d.revision, principal: d.principal, verdict: d.verdict, comment: d.comment, approvals: d.approvals, quorum: d.quorum });
        out.push({ type: 'header' });
        break;
      }
      case 'comment':
        add(`comment-${ev.seq}`, { principal: d.principal, text: d.text });
        break;
      case 'applied':
        this.applied = { revision: d.revision, commit: d.commit, approvers: d.approvers ?? [] };
        add(`applied-${ev.seq}`, { revisionNo: d.revision, commit: d.commit, approvers: d.approvers ?? [] });
        out.push({ type: 'header' });
        break;
      case 'apply_failed':
        add(`apply_failed-${ev.seq}`, { reason: d.reason });
        break;
      case 'rolled_back':
        add(`rolled_back-${ev.seq}`, { commit: d.commit, revertCommit: d.revert_commit });
        out.push({ type: 'header' });
        break;
      default:
        break;
    }
    return out;
  }

  /**
   * Records a revision and the diff of each change against the file as it stood before it.
   * Files the proposal never touched before have no known base: a `modify` of such a file
   * is shown whole (see diffChange), `create` as all additions, `delete` as all removals of
   * whatever we knew.
   */
  addRevision(number, changes) {
    const diffs = this.diffsOf(number, changes);
    const full = mergeChanges(this.revisions.get(number - 1)?.full ?? [], changes);
    for (const c of changes) this.files.set(c.path, c.action === 'delete' ? null : (c.content ?? ''));
    const rev = { number, changes, diffs, full };
    this.revisions.set(number, rev);
    return rev;
  }
}

/**
 * A revision's whole patch: the previous revision's, overlaid with this one's changes (a fix sends only what it
 * changes). The same rules as the server's FileChange.merge, so "what will be committed" is what Medic commits.
 */
export function mergeChanges(base, fix) {
  const order = base.map((c) => c.path);
  const byPath = new Map(base.map((c) => [c.path, c]));
  for (const c of fix) {
    const earlier = byPath.get(c.path);
    if (!earlier) { byPath.set(c.path, c); order.push(c.path); continue; }
    if (earlier.action === 'create' && c.action === 'delete') byPath.delete(c.path);
    else if (earlier.action === 'create') byPath.set(c.path, { path: c.path, action: 'create', content: c.content });
    else if (earlier.action === 'delete' && c.action !== 'delete') byPath.set(c.path, { path: c.path, action: 'modify', content: c.content });
    else byPath.set(c.path, c);
  }
  const seen = new Set();
  return order.filter((p) => !seen.has(p) && seen.add(p) && byPath.has(p)).map((p) => byPath.get(p));
}

/** Initials for a presence chip: "alice" → "AL", "Bob Smith" → "BS", "ci-bot" → "CB". */
export function initials(name) {
  const parts = String(name).split(/[\s._-]+/).filter(Boolean);
  if (parts.length >= 2) return (parts[0][0] + parts[1][0]).toUpperCase();
  return String(name).slice(0, 2).toUpperCase();
}

/** The server's status predicates (`GET /api/v1/meta`): what each status allows. The page copies no status lists. */
let statusPredicates = null;
export function setStatusPredicates(statuses) { statusPredicates = statuses ?? null; }
function allows(status, what) { return statusPredicates?.[status]?.[what] === true; }

/** What the review panel allows, and why not — one place so the view and the tests agree. */
export function reviewPermissions({ me, model, live }) {
  const status = model?.status;
  const result = { canReview: false, canApprove: false, canReject: false, canWithdraw: false, canAutoFix: false, canRollback: false, why: '', approveWhy: '' };
  if (!me || !model) { result.why = 'Open a proposal to review it.'; return result; }
  if (me.role === 'viewer') { result.why = 'You are signed in as a viewer: viewers can watch and comment, but only admins can review.'; return result; }
  if (me.role === 'bot') { result.why = 'Bots never review, auto-fix or roll back; only admins can.'; return result; }
  if (me.role !== 'admin') { result.why = `Your role (${me.role}) cannot review.`; return result; }
  if (!live) { result.why = 'Not connected: you can review again as soon as the connection is live.'; return result; }
  result.canAutoFix = status === 'tests_failed' && model.attempt < model.maxAttemptsShown;
  result.canRollback = status === 'applied';
  result.canWithdraw = allows(status, 'withdrawable');
  if (status !== 'awaiting_review') {
    if (allows(status, 'rejectable')) {
      // It will not reach review by itself (unfixable, waiting for a manual fix, interrupted): it can be closed.
      result.canReject = true;
      result.why = 'This proposal will not reach review by itself: reject it (with a comment) or withdraw it.';
      return result;
    }
    // Where it stands is said once, above (statusSentence); here only why the buttons are off.
    result.why = CLOSED_STATUSES.has(status)
      ? 'This proposal is closed: there is nothing left to review.'
      : 'Reviews open when the tests pass and the proposal awaits review.';
    return result;
  }
  const mine = model.currentReviews().verdicts.find((v) => v.principal === me.principal);
  if (mine) { result.why = `You already reviewed revision ${model.revision} (${mine.verdict.replace('_', ' ')}).`; return result; }
  result.canReview = true;
  result.canApprove = true;
  result.canReject = true;
  if (model.info?.author === me.principal) {
    result.canApprove = false;
    result.approveWhy = 'You wrote this proposal: the author\u2019s approval never counts (you may reject or request changes).';
  }
  return result;
}

/** "tests_failed" → "tests failed". */
export function humanStatus(status) {
  return status ? String(status).replace(/_/g, ' ') : 'unknown';
}

/**
 * One sentence saying where the proposal stands, derived from its status alone — the review panel shows
 * it instead of leftover messages from earlier actions, so it can never outlive the state it describes.
 */
export function statusSentence(model) {
  const status = model?.status;
  const attempt = model?.attempt ?? 0;
  const max = model?.maxAttemptsShown ?? 3;
  const commit = model?.applied?.commit;
  switch (status) {
    case 'proposed': return 'It was just filed; the sandbox is being prepared.';
    case 'deploying': return 'The sandbox is being prepared.';
    case 'testing': return 'The tests are running.';
    case 'tests_failed': return attempt < max ? 'The tests failed.' : `The tests failed and all ${max} fix attempts are used.`;
    case 'analyzing': return 'The failure is being analysed.';
    case 'fixing': return `Fix attempt ${attempt} of ${max} is being written.`;
    case 'tests_passed': return 'The tests passed.';
    case 'awaiting_review': return 'The tests pass; it awaits review.';
    case 'changes_requested': return 'Changes were requested; a new fix attempt follows.';
    case 'approved': return 'Approved: the quorum is reached.';
    case 'applying': return 'Approved: it is being applied to the repository.';
    case 'applied': return commit ? `Applied as commit ${String(commit).slice(0, 12)}.` : 'Applied to the repository.';
    case 'apply_failed': return 'Applying it to the repository failed.';
    case 'rolled_back': return 'It was applied and has been rolled back.';
    case 'rejected': return 'It was rejected.';
    case 'unfixable': return 'Medic could not fix it.';
    case 'interrupted': return 'It was interrupted (the server stopped while it ran).';
    case null: case undefined: return 'Loading…';
    default: return `Its status is ${humanStatus(status)}.`;
  }
}
