// pages/bug-detail.js: one bug (`#/bugs/<id>`) — the report, the live checklist, the approaches side by side (each
// with its figures, its diff and its test console on demand), the analysis and the reproducer, the winner's proposal
// (reviewed in the proposal view) and the admin commands `choose_approach` and `resume_bug`.
//
// The bug is folded from its `bug:<id>` topic (replayed from 0, resumed from the last seq after a reconnect) plus
// GET /api/v1/bugs/<id> for what events do not carry. The report, evidence, model text and test output are untrusted:
// everything is built with createElement/textContent.

import { BugModel, bugChecklist, bugPermissions, approachFigures, SEVERITIES } from '../bugs.js';
import { humanStatus } from '../store.js';
import { el, renderDiff, statusBadge } from '../views.js';
import { instanceView } from '../instance-view.js';

export const ROUTES = [{ name: 'bug', pattern: '/bugs/:id' }];

/** replaceChildren without the nulls (which it would write as the text "null"). */
const fill = (node, ...kids) => node.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false));

const ICON = { done: '✅', running: '🔄', warn: '⚠', fail: '❌', skip: '➖', pending: '○' };

const BUG_ERRORS = {
  not_found: 'This bug does not exist (or no longer exists).',
  invalid_state: 'That does not apply in the bug\u2019s current state.',
  forbidden: 'Only admins can do that.',
};

export function createBugDetail(ctx) {
  const { $ } = ctx;
  const view = { name: 'bug-detail', routes: ROUTES, section: 'bug', model: null, busy: false, noticeLog: [] };
  /** Per approach: its card's persistent parts (the toggles keep their state across renders). */
  let cards = new Map();
  const { state, topic, reloadSoon, run } = instanceView(ctx, view, {
    kind: 'bug', path: (id) => `/api/v1/bugs/${encodeURIComponent(id)}`, Model: BugModel, messageId: 'bug-message',
    errors: BUG_ERRORS, what: 'bug',
    onFresh: () => { cards = new Map(); $('bug-approaches').replaceChildren(); },
  });

  view.reset = () => { view.model = null; cards = new Map(); };

  view.onEvent = (ev) => {
    if (!view.model || ev.topic !== topic()) return;
    view.model.apply(ev);
    // The REST detail carries what events do not (an approach's size, file contents if approach_started named paths
    // only): read again shortly after an approach starts or finishes.
    if (ev.kind === 'approach_started' || (ev.kind === 'approach_status' && ['qualified', 'failed', 'duplicate'].includes(ev.data?.status))) reloadSoon();
    ctx.queueRender();
  };

  // ---- commands ----

  function choose(n) {
    run({ type: 'choose_approach', bug: view.model.id, approach: n },
      (ack) => `Approach #${ack.approach ?? n} chosen${ack.proposal ? `: proposal ${ack.proposal} replaces the previous one` : ''}.`);
  }

  $('bug-resume').addEventListener('click', () => view.model && run({ type: 'resume_bug', bug: view.model.id }, () => 'Resumed: the bug continues where it stopped.'));

  // ---- rendering ----

  view.render = () => {
    const m = view.model;
    if (!m) return;
    const perms = bugPermissions(ctx.me, m, ctx.connState.state === 'live');
    const status = m.status ?? m.summary?.status;
    $('bug-title').textContent = m.title;
    const badge = statusBadge(status, 'bug-status');
    badge.id = 'bug-status';
    $('bug-status').replaceWith(badge);
    const severity = m.report?.severity ?? m.summary?.severity;
    $('bug-severity').textContent = severity ? `severity: ${severity}` : '';
    $('bug-severity').className = `severity severity-${SEVERITIES.includes(severity) ? severity : 'unknown'}`;
    $('bug-not-reproduced').hidden = m.reproduced !== false;
    const meta = [m.id, (m.report?.author ?? m.summary?.author) && `reported by ${m.report?.author ?? m.summary?.author}`,
      (m.report?.repo ?? m.summary?.repo) && `repo ${m.report?.repo ?? m.summary?.repo}`,
      m.requested && `${m.requested} approach${m.requested === 1 ? '' : 'es'}`].filter(Boolean);
    $('bug-meta').textContent = meta.join(' · ');
    $('bug-description').textContent = m.report?.description ?? '';
    renderEvidence(m);
    $('bug-error').textContent = state.loadError;
    document.title = `${humanStatus(status)} · ${m.title} — Medic`;

    renderChecklist(m);
    renderLive(m);
    renderProposal(m);
    $('bug-resume').hidden = !perms.canResume;
    $('bug-resume').disabled = view.busy;
    renderApproaches(m, perms);
    renderAnalysis(m);
    renderReproducer(m);
  };

  function renderEvidence(m) {
    const items = Array.isArray(m.report?.evidence) ? m.report.evidence : [];
    const sig = JSON.stringify(items);
    const box = $('bug-evidence');
    if (box.dataset.sig === sig) return;
    box.dataset.sig = sig;
    fill(box, ...(items.length ? [el('h3', { text: `Evidence (${items.length})` })] : []),
      ...items.map((text, i) => el('pre', { class: 'evidence', dataset: { testid: 'bug-evidence-item', index: i }, text: String(text) })));
  }

  function renderChecklist(m) {
    const items = bugChecklist(m);
    const sig = JSON.stringify(items);
    const ol = $('bug-checklist');
    if (ol.dataset.sig === sig) return;
    ol.dataset.sig = sig;
    fill(ol, ...items.map((it) => el('li', { class: `check check-${it.state}`, dataset: { testid: 'bug-check', key: it.key, state: it.state } },
      el('span', { class: 'check-icon', 'aria-hidden': 'true', text: ICON[it.state] ?? '' }),
      el('span', { class: 'visually-hidden', text: `${it.state}: ` }),
      el('span', { class: 'check-text', dataset: { testid: 'bug-check-text' }, text: it.text }))));
    const last = items.filter((it) => it.state !== 'pending').at(-1);
    const announcement = last ? `${m.title}: ${last.text}` : '';
    if (announcement && $('announce').textContent !== announcement) $('announce').textContent = announcement;
  }

  /** The model's reply for the analysis or the reproducer, as it streams (only while that step runs). */
  function renderLive(m) {
    const step = { bug_analysis: 'analyzing', bug_reproducer: 'reproducing' }[m.live?.purpose];
    const text = m.live && (!step || m.status === step) ? m.live.text : '';
    const box = $('bug-live');
    box.hidden = !text;
    $('bug-live-label').textContent = m.live?.purpose === 'bug_reproducer' ? 'The model is writing the reproducer:' : 'The model is writing its analysis:';
    if ($('bug-live-text').textContent !== text) $('bug-live-text').textContent = text;
  }

  function renderProposal(m) {
    const box = $('bug-proposal');
    const p = m.proposal ?? (typeof m.summary?.proposal === 'string' ? { id: m.summary.proposal, approach: m.summary.chosen_approach } : null);
    const sig = JSON.stringify([p, m.fixed, m.proposalStatus, m.chosenBy]);
    if (box.dataset.sig === sig) return;
    box.dataset.sig = sig;
    if (!p?.id) { fill(box); return; }
    let link;
    try { link = el('a', { href: ctx.href('proposal', { id: p.id }), dataset: { testid: 'bug-proposal-link' }, text: `Review proposal ${p.id}` }); } catch { link = el('code', { text: String(p.id) }); }
    fill(box, el('strong', { text: `Fix #${p.approach ?? '?'} is proposed: ` }), link,
      m.proposalStatus && !m.fixed ? el('span', { class: 'muted', dataset: { testid: 'bug-proposal-status' }, text: ` · ${humanStatus(m.proposalStatus)}` }) : null,
      m.fixed ? el('span', { class: 'muted', text: ` · applied as ${String(m.fixed.commit ?? '').slice(0, 12)}` }) : null,
      m.chosenBy?.approach === p.approach && m.chosenBy.principal
        ? el('span', { class: 'muted small', dataset: { testid: 'bug-chosen-by' }, text: ` · chosen by ${m.chosenBy.principal} instead of ${m.chosenBy.replaces ?? 'the ranking\u2019s winner'}` }) : null);
  }

  function renderAnalysis(m) {
    const box = $('bug-analysis');
    const a = m.analysis;
    const sig = JSON.stringify(a);
    if (box.dataset.sig === sig) return;
    box.dataset.sig = sig;
    if (!a) { fill(box, el('p', { class: 'muted', text: 'Not analysed yet.' })); return; }
    fill(box,
      el('p', { class: 'description', dataset: { testid: 'bug-analysis-summary' }, text: a.summary }),
      a.locations.length ? el('h4', { text: 'Suspected locations' }) : null,
      a.locations.length ? el('ul', { class: 'locations', dataset: { testid: 'bug-locations' } }, a.locations.map((l) => el('li', {},
        el('code', { text: `${l?.file ?? '?'}${l?.line ? `:${l.line}` : ''}` }), l?.why ? ` — ${l.why}` : ''))) : null,
      a.causes.length ? el('h4', { text: 'Possible causes' }) : null,
      a.causes.length ? el('ul', { dataset: { testid: 'bug-causes' } }, a.causes.map((c) => el('li', { text: String(c) }))) : null);
  }

  function renderReproducer(m) {
    const box = $('bug-reproducer');
    const r = m.reproducer;
    const sig = JSON.stringify([r, m.reproduced]);
    if (box.dataset.sig === sig) return;
    box.dataset.sig = sig;
    if (!r) {
      fill(box, el('p', { class: 'muted', text: m.reproduced === false ? 'Not reproduced.' : 'No reproducer yet.' }));
      return;
    }
    const state = {
      writing: 'being checked on the unchanged code…', verified: 'fails on the unchanged code, as it should',
      retrying: 'was refused; the model writes a second one…', rejected: 'rejected',
    }[r.state];
    fill(box,
      el('p', {}, r.path ? el('code', { text: String(r.path) }) : null, ` ${state ?? ''}`, r.attempt > 1 ? el('span', { class: 'muted', text: ` (attempt ${r.attempt})` }) : null),
      r.explanation ? el('p', { class: 'explanation', text: String(r.explanation) }) : null,
      r.state === 'rejected' ? el('p', { class: 'flag-warn', dataset: { testid: 'bug-reproducer-reason' }, text: `Not reproduced: ${r.reason ?? ''}` }) : null,
      r.state === 'retrying' ? el('p', { class: 'muted small', text: `Refused: ${r.reason ?? ''}` }) : null,
      typeof r.content === 'string' && r.state !== 'rejected' ? el('details', { class: 'raw-reply' }, el('summary', { class: 'small', text: 'The test' }),
        el('pre', { class: 'messages', dataset: { testid: 'bug-reproducer-content' }, text: r.content })) : null,
      r.output ? el('pre', { class: 'messages', dataset: { testid: 'bug-reproducer-output' }, text: String(r.output) }) : null);
  }

  // ---- approach cards ----

  function renderApproaches(m, perms) {
    const grid = $('bug-approaches');
    const why = m.ranking?.why;
    $('bug-ranking-why').textContent = why ? `Ranking: ${why}` : '';
    $('bug-approaches-empty').hidden = m.approaches.size > 0;
    for (const a of m.sortedApproaches()) {
      let card = cards.get(a.n);
      if (!card) {
        card = makeCard(a.n);
        cards.set(a.n, card);
        grid.append(card.root);
      }
      updateCard(m, a, card, perms);
    }
  }

  function makeCard(n) {
    const diffButton = el('button', { type: 'button', class: 'button secondary small', 'aria-expanded': 'false', dataset: { testid: 'approach-diff-toggle' }, text: 'Show diff' });
    const consoleButton = el('button', { type: 'button', class: 'button secondary small', 'aria-expanded': 'false', dataset: { testid: 'approach-console-toggle' }, text: 'Show console' });
    const chooseButton = el('button', { type: 'button', class: 'button primary small', hidden: true, dataset: { testid: 'approach-choose' }, text: 'Use this approach instead' });
    const head = el('div', { class: 'approach-head' });
    const diffBox = el('div', { class: 'diffs', hidden: true, dataset: { testid: 'approach-diff' } });
    const lines = el('div', { class: 'console approach-console', role: 'log', tabindex: '0', 'aria-label': `Test output of fix #${n}`, dataset: { testid: 'approach-console' } });
    const stream = el('pre', { class: 'llm-stream', hidden: true, dataset: { testid: 'approach-stream' } });
    const consoleBox = el('div', { hidden: true, dataset: { testid: 'approach-console-box' } }, lines, stream);
    const root = el('article', { class: 'card approach-card', dataset: { testid: 'approach-card', approach: n } },
      head, el('div', { class: 'button-row' }, diffButton, consoleButton, chooseButton), diffBox, consoleBox);
    const card = { n, root, head, diffBox, consoleBox, lines, stream, diffButton, consoleButton, chooseButton, rendered: 0, headSig: null, diffSig: null };
    diffButton.addEventListener('click', () => {
      diffBox.hidden = !diffBox.hidden;
      diffButton.setAttribute('aria-expanded', String(!diffBox.hidden));
      diffButton.textContent = diffBox.hidden ? 'Show diff' : 'Hide diff';
      ctx.queueRender();
    });
    consoleButton.addEventListener('click', () => {
      consoleBox.hidden = !consoleBox.hidden;
      consoleButton.setAttribute('aria-expanded', String(!consoleBox.hidden));
      consoleButton.textContent = consoleBox.hidden ? 'Show console' : 'Hide console';
      if (!consoleBox.hidden) lines.scrollTop = lines.scrollHeight;
    });
    chooseButton.addEventListener('click', () => choose(n));
    return card;
  }

  function updateCard(m, a, card, perms) {
    const f = approachFigures(m, a.n);
    card.root.dataset.status = a.status;
    card.root.classList.toggle('winner', f.winner);
    const headSig = JSON.stringify([f, a.status, a.strategy, a.summary, a.explanation, a.reason, a.duplicateOf]);
    if (card.headSig !== headSig) {
      card.headSig = headSig;
      const figure = (label, value, testid) => [el('dt', { text: label }), el('dd', { dataset: { testid }, text: value })];
      fill(card.head,
        el('div', { class: 'title-row' },
          el('h4', { text: `Fix #${a.n}` }),
          statusBadge(a.status, 'approach-status'),
          f.winner ? el('span', { class: 'badge winner-badge', dataset: { testid: 'approach-winner' }, text: '★ winner' }) : null,
          f.chosen && !f.winner ? el('span', { class: 'badge winner-badge', dataset: { testid: 'approach-chosen' }, text: 'chosen' }) : null),
        el('p', { class: 'strategy', dataset: { testid: 'approach-strategy' }, text: a.strategy || 'Strategy not known yet' }),
        a.summary ? el('p', { class: 'small approach-summary', dataset: { testid: 'approach-summary' }, text: a.summary }) : null,
        a.explanation && a.explanation !== a.strategy && a.explanation !== a.summary
          ? el('details', { class: 'raw-reply small' }, el('summary', { text: 'The model\u2019s explanation' }), el('p', { class: 'muted approach-explanation', text: a.explanation })) : null,
        el('dl', { class: 'figures' },
          figure('Fix attempts', f.attempt, 'approach-attempt'),
          figure('Tests', f.tests, 'approach-tests'),
          figure('Reproducer', f.reproducer, 'approach-reproducer'),
          figure('Diff size', f.size, 'approach-size'),
          f.duration ? figure('Duration', f.duration, 'approach-duration') : null),
        f.breaking.length ? el('div', { class: 'breaking' }, el('strong', { text: 'Breaking changes:' }),
          el('ul', { dataset: { testid: 'approach-breaking' } }, f.breaking.map((t) => el('li', {}, el('code', { text: t }))))) : null,
        a.reason && a.status !== 'qualified' ? el('p', { class: 'error-text', dataset: { testid: 'approach-reason' }, text: a.reason }) : null,
        a.duplicateOf ? el('p', { class: 'muted small', text: `Same change as fix #${a.duplicateOf}.` }) : null,
        f.rankReason && a.status !== 'failed' ? el('p', { class: 'muted small', dataset: { testid: 'approach-rank-reason' }, text: f.rankReason }) : null);
    }
    const canChoose = perms.canChoose(a.n);
    card.chooseButton.hidden = !canChoose;
    card.chooseButton.disabled = view.busy;

    // The diff: rebuilt only while shown and when the patch changed.
    if (!card.diffBox.hidden) {
      const diffs = m.diffs(a.n);
      const diffSig = JSON.stringify(diffs.map((d) => [d.path, d.action, d.added, d.removed, d.hunks.length, d.missing]));
      if (card.diffSig !== diffSig) {
        card.diffSig = diffSig;
        fill(card.diffBox, ...(diffs.length ? diffs.map((d) => (d.missing
          ? el('div', { class: 'diff', dataset: { testid: 'diff', path: d.path, action: d.action } },
            el('div', { class: 'diff-head' }, el('span', { class: 'diff-path', text: d.path }), el('span', { class: `diff-kind kind-${d.action}`, text: d.action }),
              el('span', { class: 'muted small', text: 'content not sent yet' })))
          : renderDiff(d))) : [el('p', { class: 'muted small', text: 'No changes known yet.' })]));
      }
    }

    // The console: new lines are appended (the box keeps the user's scroll position when not at the bottom).
    const total = a.consoleDropped + a.console.length;
    if (total !== card.rendered) {
      const fresh = Math.min(total - card.rendered, a.console.length);
      const box = card.lines;
      const follow = box.scrollHeight - box.scrollTop - box.clientHeight < 8;
      const frag = document.createDocumentFragment();
      for (const l of a.console.slice(a.console.length - fresh)) frag.append(el('div', { class: `line ${l.kind}`, dataset: { testid: 'approach-console-line' }, text: l.text }));
      box.append(frag);
      const excess = box.childElementCount - 2000;
      for (let i = 0; i < excess; i++) box.firstElementChild.remove();
      card.rendered = total;
      if (follow) box.scrollTop = box.scrollHeight;
    }
    const streaming = a.writing !== null ? a.deltas.get(a.writing) ?? '' : '';
    card.stream.hidden = !streaming;
    if (card.stream.textContent !== streaming) card.stream.textContent = streaming;
  }

  return view;
}
