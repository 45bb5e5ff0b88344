// pages/incident-list.js: the incidents list (`#/incidents`) — rows from GET /api/v1/incidents kept live by the
// `incidents` topic, open ones first — and the banner every admin sees, on every view, while a critical incident
// still needs attention. The topic stays subscribed for the whole session (the banner needs it on any view).
// Titles come from ingested log lines: untrusted, shown with textContent.

import { CLOSED_INCIDENT, IncidentList, SEVERITIES, criticalIncidents, formatValue } from '../incidents.js';
import { el, formatTime, reconcileRows, statusBadge } from '../views.js';

export const ROUTES = [{ name: 'incidents', pattern: '/incidents' }];

export function createIncidentList(ctx) {
  const { $ } = ctx;
  const view = { name: 'incident-list', routes: ROUTES, section: 'incidents', list: new IncidentList() };
  let subscribed = false;
  let loadError = '';

  const auth = () => ({ headers: { Authorization: `Bearer ${ctx.token()}` } });

  async function load() {
    try {
      const response = await fetch('/api/v1/incidents?limit=200', auth());
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        loadError = body?.error?.message ?? body.message ?? `The incidents could not be read (HTTP ${response.status}).`;
        return;
      }
      loadError = '';
      for (const summary of Array.isArray(body.incidents) ? body.incidents : []) view.list.merge(summary);
    } catch {
      loadError = 'The incidents could not be read.';
    } finally {
      ctx.queueRender();
    }
  }

  /** Once per connection, as soon as the server said who we are: the topic (live) and the list (REST). */
  function follow() {
    if (subscribed || !ctx.conn || !ctx.me) return;
    subscribed = true;
    ctx.store.seen.delete('incidents');
    ctx.conn.subscribe('incidents');
    load();
  }

  view.enter = () => { follow(); if (subscribed) load(); };
  view.leave = () => {};
  view.reset = () => { view.list.clear(); subscribed = false; loadError = ''; };

  view.onEvent = (ev) => {
    if (ev.topic !== 'incidents') return;
    if (view.list.apply(ev)) ctx.queueRender();
  };
  view.onTopicReset = (topic) => { if (topic === 'incidents') { ctx.store.seen.delete(topic); view.list.clear(); load(); } };
  view.onTopicError = (topic, err) => { if (topic === 'incidents') { loadError = ctx.errorText(err); ctx.queueRender(); } };

  // ---- the banner (every view) ----

  view.renderAlways = () => {
    follow();
    const banner = $('incident-banner');
    const critical = ctx.me?.role === 'admin' ? criticalIncidents(view.list) : [];
    banner.hidden = critical.length === 0;
    if (!critical.length) return;
    const [first] = critical;
    const more = critical.length > 1 ? ` (and ${critical.length - 1} more)` : '';
    $('incident-banner-text').textContent = `Critical incident, ${String(first.status ?? '').replace(/_/g, ' ')}: ${first.title ?? first.id}${more}`;
    let href = '#/incidents';
    try { href = critical.length === 1 ? ctx.href('incident', { id: first.id }) : ctx.href('incidents'); } catch { /* not an id */ }
    $('incident-banner-link').setAttribute('href', href);
    banner.dataset.incident = first.id;
    banner.dataset.count = String(critical.length);
  };

  // ---- rendering ----

  function row(i) {
    let link = null;
    try { link = ctx.href('incident', { id: i.id }); } catch { /* not an id: shown without a link */ }
    const idLink = (route, id, testid) => {
      if (typeof id !== 'string') return el('span', { class: 'muted', text: '—' });
      try { return el('a', { href: ctx.href(route, { id }), dataset: { testid }, text: id }); } catch { return el('span', { text: id }); }
    };
    const title = i.title ?? i.id;
    return el('tr', { dataset: { testid: 'incident-row', id: i.id, status: i.status ?? '', severity: i.severity ?? '' } },
      el('td', { class: 'bug-title-cell' }, link ? el('a', { href: link, dataset: { testid: 'incident-row-title' }, text: title }) : title,
        el('div', { class: 'muted small', text: String(i.kind ?? '').replace(/_/g, ' ') })),
      el('td', { text: i.service || '—' }),
      el('td', {}, el('span', { class: `severity severity-${SEVERITIES.includes(i.severity) ? i.severity : 'unknown'}`, dataset: { testid: 'incident-row-severity' }, text: i.severity ?? '' })),
      el('td', {}, statusBadge(i.status, 'incident-row-status', false)),
      el('td', { class: 'num', dataset: { testid: 'incident-row-rate' }, text: formatValue(i.kind, i.value) }),
      el('td', { class: 'num', text: formatValue(i.kind, i.baseline) }),
      el('td', {}, idLink('bug', i.bug, 'incident-row-bug')),
      el('td', {}, idLink('proposal', i.proposal, 'incident-row-proposal')),
      el('td', { class: 'small' }, typeof i.opened_at === 'number' ? el('time', { datetime: new Date(i.opened_at).toISOString(), text: formatTime(i.opened_at) }) : ''));
  }

  view.render = () => {
    document.title = 'Incidents — Medic';
    const incidents = view.list.sorted();
    reconcileRows($('incident-rows'), incidents,
      (i) => JSON.stringify([i.title, i.kind, i.service, i.severity, i.status, i.value, i.baseline, i.bug, i.proposal, i.opened_at]), row);
    const open = incidents.filter((i) => !CLOSED_INCIDENT.has(i.status)).length;
    $('incident-count').textContent = incidents.length ? `(${open} open of ${incidents.length})` : '';
    $('incidents-empty').hidden = incidents.length > 0;
    $('incident-table').hidden = incidents.length === 0;
    $('incidents-error').textContent = loadError;
  };

  return view;
}
