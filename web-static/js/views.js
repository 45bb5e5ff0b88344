// views.js: DOM rendering — the proposals list, the timeline with diffs, the test console, presence.
//
// Everything is built with createElement/textContent: server data (titles, test output, LLM
// text) is never parsed as HTML, and nothing needs inline styles or scripts under the CSP.

import { BUSY_STATUSES, humanStatus, initials } from './store.js';

/** Creates an element: `el('li', {class: 'x', dataset: {testid: 'y'}}, child, 'text')`. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function formatTime(ts) {
  if (typeof ts !== 'number') return '';
  const d = new Date(ts);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function formatDuration(ms) {
  if (typeof ms !== 'number') return '';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** A status badge; the status name is the text, colour is a hint only. */
export function statusBadge(status, testid, live = true) {
  const s = status ?? 'unknown';
  return el('span', {
    class: `badge status-${s.replace(/[^a-z_]/g, '')}${live && BUSY_STATUSES.has(s) ? ' busy' : ''}`,
    dataset: { status: s, ...(testid ? { testid } : {}) },
  }, humanStatus(s));
}

/**
 * Keeps a container's rows in the order of `items`, rebuilding a row only when its signature changed (a focused
 * link is not swapped under the user): `sig(item)` a string, `make(item)` a fresh row with `dataset.id`.
 */
export function reconcileRows(body, items, sig, make) {
  const existing = new Map([...body.children].map((row) => [row.dataset.id, row]));
  const rows = items.map((item) => {
    const signature = sig(item);
    const old = existing.get(item.id);
    if (old && old.dataset.sig === signature) return old;
    const fresh = make(item);
    fresh.dataset.sig = signature;
    if (old) old.replaceWith(fresh);
    return fresh;
  });
  const keep = new Set(rows);
  for (const row of [...body.children]) if (!keep.has(row)) row.remove();
  rows.forEach((row, i) => { if (body.children[i] !== row) body.insertBefore(row, body.children[i] ?? null); });
}

// ---- proposals list ----

/**
 * Updates the list in place: an item is rebuilt only when its summary changed, so items the
 * user is hovering, focusing or clicking are not swapped under them on every event.
 */
export function renderProposalList(ul, summaries, openId, onOpen) {
  const existing = new Map([...ul.children].map((li) => [li.dataset.id, li]));
  const wanted = summaries.map((p) => {
    const sig = JSON.stringify([p.title, p.status, p.attempt, p.max_attempts, p.revision, p.author, p.repo, p.updated_at, p.id === openId]);
    let li = existing.get(p.id);
    if (!li || li.dataset.sig !== sig) {
      const fresh = proposalItem(p, openId, onOpen);
      if (li) {
        const hadFocus = li.contains(document.activeElement);
        li.replaceChildren(...fresh.childNodes);
        if (hadFocus) li.querySelector('button')?.focus();
      } else li = fresh;
      li.dataset.sig = sig;
    }
    return li;
  });
  const keep = new Set(wanted);
  for (const li of [...ul.children]) if (!keep.has(li)) li.remove();
  wanted.forEach((li, i) => { if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] ?? null); });
}

function proposalItem(p, openId, onOpen) {
  const button = el('button', {
    type: 'button', class: 'proposal-item' + (p.id === openId ? ' open' : ''),
    'aria-current': p.id === openId ? 'true' : undefined,
    dataset: { proposalId: p.id, testid: 'proposal-item' },
    onclick: () => onOpen(p.id),
  },
  el('span', { class: 'item-title', text: p.title ?? p.id }),
  el('span', { class: 'item-meta' },
    statusBadge(p.status, 'proposal-item-status'),
    el('span', { class: 'attempt small', dataset: { testid: 'proposal-item-attempt' }, text: `attempt ${p.attempt ?? 0}/${p.max_attempts ?? '?'}` }),
    el('span', { class: 'muted small', text: `rev ${p.revision ?? 1}` })),
  el('span', { class: 'item-meta muted small' },
    `${p.author ?? ''}${p.repo ? ' · ' + p.repo : ''}`,
    p.updated_at ? el('time', { datetime: new Date(p.updated_at).toISOString(), text: ' · ' + formatTime(p.updated_at) }) : null));
  return el('li', { dataset: { id: p.id } }, button);
}

// ---- presence ----

export function renderPresence(ul, members, me) {
  const others = members.filter((m) => m.principal !== me?.principal);
  if (others.length === 0) {
    ul.replaceChildren(el('li', { class: 'muted small', dataset: { testid: 'presence-alone' }, text: 'only you' }));
    return;
  }
  ul.replaceChildren(...others.map((m) => el('li', {
    class: `avatar role-${m.role}`,
    title: `${m.principal} (${m.role}) since ${formatTime(m.since)}`,
    dataset: { principal: m.principal, testid: 'presence-member' },
  }, el('span', { 'aria-hidden': 'true', text: initials(m.principal) }),
  el('span', { class: 'visually-hidden', text: `${m.principal} (${m.role})` }))));
}

// ---- diff ----

/** A file's diff as a table: old line no, new line no, marker, text. */
export function renderDiff(d) {
  const label = { create: 'created', delete: 'deleted', modify: 'modified', 'unknown-base': 'modified' }[d.kind] ?? d.action;
  const head = el('summary', { class: 'diff-head' },
    el('span', { class: 'diff-path', text: d.path }),
    el('span', { class: `diff-kind kind-${d.action}`, text: label }),
    d.kind === 'unknown-base'
      ? el('span', { class: 'muted small', text: 'original not in the proposal; showing the new content' })
      : el('span', { class: 'diff-stat' }, el('span', { class: 'added', text: `+${d.added}` }), ' ', el('span', { class: 'removed', text: `−${d.removed}` })));
  const rows = [];
  for (const h of d.hunks) {
    if (d.kind === 'modify') rows.push(el('tr', { class: 'hunk' }, el('td', { colspan: '4', text: `@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@` })));
    for (const l of h.lines) {
      const cls = l.op === '+' ? 'add' : l.op === '-' ? 'del' : 'ctx';
      rows.push(el('tr', { class: cls, dataset: { op: l.op } },
        el('td', { class: 'ln', text: l.oldNo ?? '' }),
        el('td', { class: 'ln', text: l.newNo ?? '' }),
        el('td', { class: 'mark', 'aria-label': l.op === '+' ? 'added' : l.op === '-' ? 'removed' : undefined, text: l.op === ' ' ? '' : (l.op === '-' ? '−' : '+') }),
        el('td', { class: 'code', text: l.text })));
    }
  }
  const body = rows.length
    ? el('div', { class: 'diff-scroll' }, el('table', { class: 'diff-table' }, el('tbody', {}, rows)))
    : el('p', { class: 'muted small', text: d.action === 'delete' ? 'File deleted.' : 'No line changes.' });
  return el('details', { class: 'diff', open: true, dataset: { testid: 'diff', path: d.path, action: d.action } }, head, body);
}

/** "What will be committed": a revision's whole patch against its base commit (store.js `committed`). */
export function renderCommitted(box, summary, committed) {
  box.hidden = !committed;
  if (!committed) return;
  const text = `What will be committed: revision ${committed.number} against ${String(committed.commit).slice(0, 12)}`;
  if (summary.textContent === text && box.dataset.shown === text) return;  // keep the user's open/closed diffs
  summary.textContent = text;
  box.dataset.shown = text;
  box.querySelector('.diffs').replaceChildren(...committed.diffs.map(renderDiff));
}

function renderRevisionDiffs(rev) {
  if (!rev || rev.diffs.length === 0) return null;
  return el('div', { class: 'diffs', dataset: { testid: 'revision-diffs', revision: rev.number } }, rev.diffs.map(renderDiff));
}

// ---- timeline ----

const VERDICT_TEXT = { approve: 'approved', reject: 'rejected', request_changes: 'requested changes on' };

/**
 * A fix reply while the model writes it: the explanation as prose and the files as their paths
 * arrive (reply.js reads the JSON as it streams); a reply that is not JSON is shown as written.
 */
function streamingReply(e) {
  const box = el('div', { class: 'llm-live', dataset: { testid: 'fix-live' }, 'aria-live': 'polite' });
  if (!e.stream) {
    box.append(el('p', { class: 'muted llm-prose', dataset: { testid: 'fix-stream' }, text: 'Waiting for the model…' }));
    return box;
  }
  if (!e.streamJSON) {
    box.append(el('pre', { class: 'llm-stream', dataset: { testid: 'fix-stream' }, text: e.stream }));
    return box;
  }
  const prose = e.streamExplanation;
  box.append(el('p', { class: 'llm-prose' + (prose ? '' : ' muted'), dataset: { testid: 'fix-stream' } },
    prose || 'The model is writing its reply…', el('span', { class: 'caret', 'aria-hidden': 'true' })));
  if (e.streamPaths?.length) {
    box.append(el('p', { class: 'small muted', text: 'Files:' }),
      el('ul', { class: 'stream-files', dataset: { testid: 'fix-stream-files' } },
        e.streamPaths.map((p) => el('li', { dataset: { testid: 'fix-stream-file' } }, el('code', { text: p })))));
  }
  return box;
}

/** The content of one timeline entry (the <li> wrapper is managed by TimelineView). */
function entryContent(e) {
  const time = el('time', { class: 'ts muted small', datetime: e.ts ? new Date(e.ts).toISOString() : undefined, text: formatTime(e.ts) });
  const title = (text, ...rest) => el('div', { class: 'entry-title' }, el('strong', { text }), ...rest, time);
  switch (e.kind) {
    case 'proposal_created':
      return [title('Proposed', ` by ${e.author ?? 'unknown'} · revision ${e.revision?.number ?? 1}`),
        renderRevisionDiffs(e.revision)];
    case 'status_changed':
      return [el('div', { class: 'entry-title compact' }, 'Status → ', statusBadge(e.status, undefined, false),
        e.reason ? el('span', { class: 'muted small', text: ` ${e.reason}` }) : null, time)];
    case 'sandbox_ready':
      return [title('Sandbox ready', ` for revision ${e.revisionNo} · ${e.isolation ?? ''} · ${formatDuration(e.durationMs)}`)];
    case 'test_started':
    case 'test_finished': {
      const ok = e.exitCode === 0 && !e.timedOut;
      const result = e.running
        ? el('span', { class: 'badge busy status-testing', text: 'running' })
        : el('span', { class: `badge ${ok ? 'status-tests_passed' : 'status-tests_failed'}`, dataset: { testid: 'test-result' }, text: ok ? 'passed' : (e.timedOut ? 'timed out' : 'failed') });
      return [title(`Test run · revision ${e.revisionNo}`, ' ', result),
        e.command ? el('code', { class: 'small', text: e.command }) : null,
        e.running ? null : el('p', { class: 'small', text: `${e.passed ?? 0} passed, ${e.failed ?? 0} failed · exit ${e.exitCode} · ${formatDuration(e.durationMs)}${e.truncated ? ' · output truncated' : ''}` })];
    }
    case 'analysis':
      return [title('Failure analysis', ` · revision ${e.revisionNo}`),
        el('ul', { class: 'categories', 'aria-label': 'Failure categories' }, e.categories.map((c) => el('li', { class: `category cat-${c}`, dataset: { testid: 'category' }, text: c.replace(/_/g, ' ') }))),
        e.rootCause ? el('p', { class: 'root-cause', dataset: { testid: 'root-cause' } }, el('strong', { text: 'Root cause: ' }), e.rootCause) : null,
        e.locations.length ? el('p', { class: 'small' }, 'At ', e.locations.map((l, i) => [i ? ', ' : '', el('code', { text: `${l.file}:${l.line}` })])) : null,
        e.messages.length ? el('pre', { class: 'messages', text: e.messages.join('\n') }) : null];
    case 'fix_started':
    case 'fix_delta':
    case 'fix_generated':
    case 'fix_failed': {
      const label = `Fix attempt ${e.attempt}/${e.maxAttempts}`;
      const state = e.state === 'writing'
        ? el('span', { class: 'badge busy status-fixing', dataset: { testid: 'fix-state' }, text: 'writing…' })
        : e.state === 'failed' ? el('span', { class: 'badge status-tests_failed', dataset: { testid: 'fix-state' }, text: 'failed' })
          : e.state === 'ended' ? el('span', { class: 'badge status-interrupted', dataset: { testid: 'fix-state' }, text: 'no fix' })
            : el('span', { class: 'badge status-tests_passed', dataset: { testid: 'fix-state' }, text: `revision ${e.revisionNo}` });
      const parts = [title(label, ' ', state)];
      if (e.state === 'writing') parts.push(streamingReply(e));
      else if (!e.explanation && e.streamExplanation) {
        // Ended without a revision (unfixable, interrupted): what the model had written, as prose.
        parts.push(el('p', { class: 'explanation', dataset: { testid: 'fix-stream-final' }, text: e.streamExplanation }));
      } else if (e.state === 'failed' && e.stream && !e.streamJSON) {
        parts.push(el('details', { class: 'raw-reply' }, el('summary', { class: 'small', text: 'The reply as written' }),
          el('pre', { class: 'llm-stream', text: e.stream })));
      }
      if (e.explanation) parts.push(el('p', { class: 'explanation', dataset: { testid: 'fix-explanation' }, text: e.explanation }));
      if (e.reason) parts.push(el('p', { class: 'error-text', text: e.reason }));
      if (e.revision) parts.push(renderRevisionDiffs(e.revision));
      return parts;
    }
    case 'unfixable':
      return [title('Unfixable', ` · ${String(e.reason ?? '').replace(/_/g, ' ')}`), e.explanation ? el('p', { text: e.explanation }) : null];
    case 'review':
      return [title(`${e.principal} ${VERDICT_TEXT[e.verdict] ?? e.verdict} revision ${e.revisionNo}`,
        e.quorum ? el('span', { class: 'muted small', text: ` · ${e.approvals?.length ?? 0}/${e.quorum} approvals` }) : null),
      e.comment ? el('blockquote', { text: e.comment }) : null];
    case 'comment':
      return [title(`${e.principal} commented`), el('p', { class: 'comment-text', text: e.text })];
    case 'applied':
      return [title('Applied', ` revision ${e.revisionNo} as commit `, el('code', { text: e.commit ?? '' })),
        e.approvers.length ? el('p', { class: 'small', text: `Approved by ${e.approvers.join(', ')}` }) : null];
    case 'apply_failed':
      return [title('Apply failed'), el('p', { class: 'error-text', text: e.reason ?? '' })];
    case 'rolled_back':
      return [title('Rolled back', ' commit ', el('code', { text: e.commit ?? '' }), ' with ', el('code', { text: e.revertCommit ?? '' }))];
    default:
      return [title(e.kind)];
  }
}

/** The timeline list; entries are appended or updated in place as events arrive. */
export class TimelineView {
  constructor(ol) { this.ol = ol; this.nodes = new Map(); this.collapsedFor = 0; }

  /**
   * Folds the diffs of superseded revisions once a newer revision exists, so the changes under
   * review are the ones in view. Done once per new revision: a diff the user reopens stays open.
   */
  collapseOlderThan(revision) {
    if (!revision || revision <= this.collapsedFor) return;
    this.collapsedFor = revision;
    for (const box of this.ol.querySelectorAll('[data-testid="revision-diffs"]')) {
      if (Number(box.dataset.revision) < revision) for (const d of box.querySelectorAll('details.diff')) d.open = false;
    }
  }

  reset(entries) {
    this.collapsedFor = 0;
    this.ol.replaceChildren();
    this.nodes.clear();
    for (const e of entries) this.append(e);
  }

  append(e) {
    const li = el('li', { class: `entry kind-${e.kind}`, dataset: { testid: 'timeline-entry', kind: e.kind, seq: e.seq ?? '', key: e.key } });
    li.append(...entryContent(e).filter(Boolean));
    this.nodes.set(e.key, li);
    this.ol.append(li);
  }

  update(e) {
    const li = this.nodes.get(e.key);
    if (!li) { this.append(e); return; }
    // Keep an open/closed diff as the user left it across updates.
    const closed = new Set([...li.querySelectorAll('details.diff:not([open])')].map((d) => d.dataset.path));
    li.className = `entry kind-${e.kind}`;
    li.dataset.kind = e.kind;
    li.replaceChildren(...entryContent(e).filter(Boolean));
    for (const d of li.querySelectorAll('details.diff')) if (closed.has(d.dataset.path)) d.open = false;
  }
}

// ---- console ----

/**
 * The live test console. It follows new output (scrolls to the bottom) until the user
 * scrolls up; scrolling back to the bottom (or "Jump to latest") resumes following.
 */
export class ConsoleView {
  constructor(box, followLabel, jumpButton) {
    this.box = box;
    this.followLabel = followLabel;
    this.jump = jumpButton;
    this.follow = true;
    // Our own scrollToEnd also fires 'scroll', but it leaves the box at the bottom, so only a
    // user scrolling up turns following off, and reaching the bottom again turns it back on.
    box.addEventListener('scroll', () => this.setFollow(this.atBottom()));
    jumpButton.addEventListener('click', () => { this.setFollow(true); this.scrollToEnd(); box.focus(); });
  }

  atBottom() { return this.box.scrollHeight - this.box.scrollTop - this.box.clientHeight < 8; }

  setFollow(on) {
    if (on === this.follow) return;
    this.follow = on;
    this.box.dataset.follow = on ? 'true' : 'false';
    this.followLabel.textContent = on ? 'Following output' : 'Paused — scroll to the bottom to follow';
    this.jump.hidden = on;
  }

  scrollToEnd() {
    this.box.scrollTop = this.box.scrollHeight;
  }

  reset(lines, dropped = 0) {
    this.box.replaceChildren();
    if (dropped) this.box.append(el('div', { class: 'line note', text: `… ${dropped} earlier lines not shown` }));
    this.append(lines);
    this.setFollow(true);
    this.box.dataset.follow = 'true';
    this.scrollToEnd();
  }

  append(lines) {
    if (lines.length === 0) return;
    const frag = document.createDocumentFragment();
    for (const l of lines) frag.append(el('div', { class: `line ${l.kind}`, dataset: { testid: 'console-line' }, text: l.text }));
    this.box.append(frag);
    // Bound the DOM like the model: drop the oldest rows.
    const excess = this.box.childElementCount - 5000;
    for (let i = 0; i < excess; i++) this.box.firstElementChild.remove();
    if (this.follow) this.scrollToEnd();
  }
}
