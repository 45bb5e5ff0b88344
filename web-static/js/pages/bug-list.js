// pages/bug-list.js: the bugs list (`#/bugs`) — rows from GET /api/v1/bugs kept live by the `bugs` topic, and the
// "Report a bug" form (admins and bots) that sends `report_bug` and opens the new bug on its ack.
// Every string from the server (titles, repos, error messages) is shown with textContent.

import { BugList, SEVERITIES, splitEvidence, bugPermissions } from '../bugs.js';
import { el, formatTime, reconcileRows, statusBadge } from '../views.js';

export const ROUTES = [{ name: 'bugs', pattern: '/bugs' }];

/** GET /api/v1/repos answers `{"repos": ["name", …]}`; objects with a `name` are accepted too. */
export function repoNames(body) {
  const list = Array.isArray(body?.repos) ? body.repos : [];
  return list.map((r) => (typeof r === 'string' ? r : r?.name)).filter((r) => typeof r === 'string' && r !== '');
}

export function createBugList(ctx) {
  const { $ } = ctx;
  const view = { name: 'bug-list', routes: ROUTES, section: 'bugs', list: new BugList() };
  let subscribed = false;
  let busy = false;
  let loadError = '';

  const auth = () => ({ headers: { Authorization: `Bearer ${ctx.token()}` } });

  async function load() {
    try {
      const response = await fetch('/api/v1/bugs?limit=200', auth());
      const body = await response.json().catch(() => ({}));
      if (!response.ok) { loadError = body.message ?? `The bugs could not be read (HTTP ${response.status}).`; return; }
      loadError = '';
      for (const summary of Array.isArray(body.bugs) ? body.bugs : []) view.list.merge(summary);
    } catch {
      loadError = 'The bugs could not be read.';
    } finally {
      ctx.queueRender();
    }
  }

  async function loadRepos() {
    const select = $('bug-form-repo');
    try {
      const response = await fetch('/api/v1/repos', auth());
      if (!response.ok) return;
      const names = repoNames(await response.json());
      const keep = select.value;
      select.replaceChildren(...names.map((name) => el('option', { value: name, text: name })));
      if (names.includes(keep)) select.value = keep;
    } catch { /* the select stays empty and the form says so */ }
    $('bug-form-error').textContent = select.options.length ? '' : 'No repository is configured.';
  }

  view.enter = () => {
    // Subscribed while shown: each visit replays the topic from 0 (summaries merge by updated_at).
    if (!subscribed && ctx.conn) { ctx.store.seen.delete('bugs'); ctx.conn.subscribe('bugs'); subscribed = true; }
    load();
  };
  view.leave = () => {
    if (subscribed && ctx.conn) ctx.conn.unsubscribe('bugs');
    subscribed = false;
    closeForm();
  };
  view.reset = () => { view.list.clear(); subscribed = false; loadError = ''; };

  view.onEvent = (ev) => {
    if (ev.topic !== 'bugs') return;
    if (view.list.apply(ev)) ctx.queueRender();
  };
  view.onTopicReset = (topic) => { if (topic === 'bugs') { ctx.store.seen.delete(topic); view.list.clear(); load(); } };
  view.onTopicError = (topic, err) => { if (topic === 'bugs') { loadError = ctx.errorText(err); ctx.queueRender(); } };

  // ---- the report form ----

  function openForm() {
    $('bug-form').hidden = false;
    $('bug-report-open').setAttribute('aria-expanded', 'true');
    $('bug-form-error').textContent = '';
    loadRepos();
    $('bug-form-title').focus();
  }

  function closeForm() {
    $('bug-form').hidden = true;
    $('bug-report-open').setAttribute('aria-expanded', 'false');
  }

  /** The form as a `report_bug` command (without the id the connection adds). */
  function formCommand() {
    const approaches = Number($('bug-form-approaches').value);
    const msg = {
      type: 'report_bug',
      repo: $('bug-form-repo').value,
      title: $('bug-form-title').value.trim(),
      description: $('bug-form-description').value,
      severity: $('bug-form-severity').value,
      evidence: splitEvidence($('bug-form-evidence').value),
      approaches: Number.isInteger(approaches) ? approaches : 3,
    };
    return msg;
  }

  async function submit() {
    if (busy || !ctx.conn) return;
    const msg = formCommand();
    const error = $('bug-form-error');
    if (!msg.repo) { error.textContent = 'Choose a repository.'; return; }
    if (!msg.title) { error.textContent = 'Give the bug a title.'; $('bug-form-title').focus(); return; }
    busy = true;
    $('bug-submit').disabled = true;
    error.textContent = '';
    $('bug-form-status').textContent = 'Sending…';
    try {
      const ack = await ctx.conn.command(msg);
      $('bug-form-status').textContent = '';
      $('bug-form').reset();
      closeForm();
      if (typeof ack.bug === 'string') ctx.go('bug', { id: ack.bug });
    } catch (err) {
      $('bug-form-status').textContent = '';
      // The server's own words say what to change (unknown repo and the configured ones, oversized evidence…).
      error.textContent = err?.code === 'invalid_message' && err.message ? `The server refused the report: ${err.message}` : ctx.errorText(err);
    } finally {
      busy = false;
      $('bug-submit').disabled = false;
    }
  }

  $('bug-form-severity').replaceChildren(...SEVERITIES.map((s) => el('option', { value: s, text: s, selected: s === 'medium' })));
  $('bug-report-open').addEventListener('click', () => ($('bug-form').hidden ? openForm() : closeForm()));
  $('bug-form-cancel').addEventListener('click', () => { closeForm(); $('bug-report-open').focus(); });
  $('bug-form').addEventListener('submit', (e) => { e.preventDefault(); submit(); });

  // ---- rendering ----

  function row(b) {
    let link = null;
    try { link = ctx.href('bug', { id: b.id }); } catch { /* not an id: shown without a link */ }
    let proposalLink = null;
    if (typeof b.proposal === 'string') {
      try { proposalLink = el('a', { href: ctx.href('proposal', { id: b.proposal }), dataset: { testid: 'bug-row-proposal' }, text: b.proposal }); } catch { proposalLink = b.proposal; }
    }
    const reproduced = b.reproduced === false
      ? el('span', { class: 'flag-warn', dataset: { testid: 'bug-row-not-reproduced' }, text: '⚠ not reproduced' })
      : el('span', { class: b.reproduced ? '' : 'muted', text: b.reproduced ? 'yes' : '—' });
    return el('tr', { dataset: { testid: 'bug-row', id: b.id, status: b.status ?? '', reproduced: String(b.reproduced ?? 'null') } },
      el('td', { class: 'bug-title-cell' }, link ? el('a', { href: link, dataset: { testid: 'bug-row-title' }, text: b.title ?? b.id }) : (b.title ?? b.id)),
      el('td', { text: b.repo ?? '' }),
      el('td', {}, el('span', { class: `severity severity-${SEVERITIES.includes(b.severity) ? b.severity : 'unknown'}`, text: b.severity ?? '' })),
      el('td', {}, statusBadge(b.status, 'bug-row-status')),
      el('td', { dataset: { testid: 'bug-row-reproduced' } }, reproduced),
      el('td', { class: 'num', text: b.approaches ?? '' }),
      el('td', {}, proposalLink ?? el('span', { class: 'muted', text: '—' })),
      el('td', { class: 'small' }, b.updated_at ? el('time', { datetime: new Date(b.updated_at).toISOString(), text: formatTime(b.updated_at) }) : ''));
  }

  view.render = () => {
    document.title = 'Bugs — Medic';
    const perms = bugPermissions(ctx.me, null);
    $('bug-report-open').hidden = !perms.canReport;
    if (!perms.canReport) closeForm();
    const bugs = view.list.sorted();
    // Rows are rebuilt only when their summary changed (a focused link is not swapped under the user).
    reconcileRows($('bug-rows'), bugs,
      (b) => JSON.stringify([b.title, b.repo, b.severity, b.status, b.reproduced, b.approaches, b.proposal, b.updated_at]), row);
    $('bug-count').textContent = bugs.length ? `(${bugs.length})` : '';
    $('bugs-empty').hidden = bugs.length > 0;
    $('bug-table').hidden = bugs.length === 0;
    $('bugs-error').textContent = loadError;
  };

  return view;
}
