// pages/incident-detail.js: one incident (`#/incidents/<id>`) — its rate against the baseline as an inline SVG
// sparkline (no chart library; live `bucket` events extend it), the samples and the example stack, the linked bug
// and proposal, its timeline, and the admin commands: acknowledge, file a bug, mute, resolve, and roll back the fix
// when it regressed (the proposal's own `rollback`).
//
// The incident is folded from its `incident:<id>` topic (replayed from 0, resumed after a reconnect), the
// `incidents` topic's summaries and GET /api/v1/incidents/<id> (the series, samples and stack). Samples, stacks and
// titles are ingested log text, untrusted: everything is built with createElement/textContent.

import { IncidentModel, MUTE_CHOICES, SEVERITIES, formatValue, incidentPermissions, sparkline, statusSentence, formatDuration } from '../incidents.js';
import { humanStatus } from '../store.js';
import { el, formatTime, statusBadge } from '../views.js';
import { instanceView } from '../instance-view.js';

export const ROUTES = [{ name: 'incident', pattern: '/incidents/:id' }];

const SVG = 'http://www.w3.org/2000/svg';
const svg = (tag, attrs = {}, ...kids) => {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  for (const kid of kids) node.append(kid);
  return node;
};

const INCIDENT_ERRORS = {
  not_found: 'This incident does not exist (or no longer exists).',
  invalid_state: 'That does not apply in the incident\u2019s current state.',
  forbidden: 'Only admins act on incidents.',
};

export function createIncidentDetail(ctx) {
  const { $ } = ctx;
  const view = { name: 'incident-detail', routes: ROUTES, section: 'incident', model: null, busy: false, noticeLog: [] };
  let confirming = false;
  const { state, topic, reloadSoon, run: send } = instanceView(ctx, view, {
    kind: 'incident', path: (id) => `/api/v1/incidents/${encodeURIComponent(id)}`, Model: IncidentModel, messageId: 'incident-message',
    errors: INCIDENT_ERRORS, what: 'incident',
    onFresh: () => { $('incident-reason').value = ''; confirming = false; },
    onClose: () => { confirming = false; },
  });
  // An ack that names the incident's status folds it at once (the rollback's is the proposal's).
  const run = (msg, success) => send(msg, success, (ack, model) => {
    if (typeof ack.status === 'string' && msg.type !== 'rollback') model.info = { ...model.info, status: ack.status };
  });

  view.reset = () => { view.model = null; confirming = false; };

  view.onEvent = (ev) => {
    if (!view.model) return;
    if (ev.topic === 'incidents') {
      if (view.model.mergeSummary(ev.data)) ctx.queueRender();
      return;
    }
    if (ev.topic !== topic()) return;
    view.model.apply(ev);
    // Samples and the stack are in the detail only: read it again when the anomaly comes back.
    if (ev.kind === 'anomaly' || ev.kind === 'regressed') reloadSoon();
    ctx.queueRender();
  };

  // ---- commands ----

  const id = () => view.model?.id;
  $('incident-acknowledge').addEventListener('click', () => run({ type: 'acknowledge_incident', incident: id() }, () => 'Acknowledged: the incident is yours.'));
  $('incident-file-bug').addEventListener('click', () => run({ type: 'file_bug', incident: id() },
    // The ack comes once the bug is filed and names it (its bug_filed event may have arrived first).
    (ack) => (typeof ack.bug === 'string' ? `Bug ${ack.bug} filed.` : 'A bug is being filed; it appears here in a moment.')));
  $('incident-mute').addEventListener('click', () => {
    const seconds = Number($('incident-mute-duration').value);
    run({ type: 'mute_incident', incident: id(), duration_seconds: seconds },
      () => `Muted for ${MUTE_CHOICES.find(([s]) => s === seconds)?.[1] ?? formatDuration(seconds * 1000)}.`);
  });
  $('incident-resolve').addEventListener('click', () => {
    const reason = $('incident-reason').value.trim();
    run({ type: 'resolve_incident', incident: id(), ...(reason ? { reason } : {}) }, () => 'Resolved.');
  });
  $('incident-rollback').addEventListener('click', () => { confirming = true; ctx.queueRender(); $('incident-rollback-ok').focus(); });
  $('incident-rollback-cancel').addEventListener('click', () => { confirming = false; ctx.queueRender(); $('incident-rollback').focus(); });
  $('incident-rollback-ok').addEventListener('click', () => {
    const proposal = view.model?.info.proposal;
    confirming = false;
    if (typeof proposal === 'string') {
      run({ type: 'rollback', proposal }, () => `Rolling back ${proposal}: the incident reopens when the revert is committed.`);
    }
  });
  $('incident-mute-duration').replaceChildren(...MUTE_CHOICES.map(([s, label]) => el('option', { value: String(s), text: label })));

  // ---- rendering ----

  view.render = () => {
    const m = view.model;
    if (!m) return;
    const info = m.info;
    const live = ctx.connState.state === 'live';
    $('incident-title').textContent = m.title;
    const badge = statusBadge(info.status, 'incident-status', false);
    badge.id = 'incident-status';
    $('incident-status').replaceWith(badge);
    $('incident-severity').textContent = info.severity ? `severity: ${info.severity}` : '';
    $('incident-severity').className = `severity severity-${SEVERITIES.includes(info.severity) ? info.severity : 'unknown'}`;
    $('incident-severity').dataset.severity = info.severity ?? '';
    const meta = [m.id, typeof info.kind === 'string' && info.kind.replace(/_/g, ' '), info.service && `service ${info.service}`,
      typeof info.occurrences === 'number' && `${info.occurrences} occurrence${info.occurrences === 1 ? '' : 's'}`,
      typeof info.affected_users === 'number' && info.affected_users > 0 && `${info.affected_users} user${info.affected_users === 1 ? '' : 's'} affected`,
      typeof info.opened_at === 'number' && `opened ${formatTime(info.opened_at)}`].filter(Boolean);
    $('incident-meta').textContent = meta.join(' · ');
    $('incident-sentence').textContent = statusSentence(info);
    $('incident-sentence').dataset.status = info.status ?? '';
    $('incident-error').textContent = state.loadError;
    document.title = `${humanStatus(info.status)} · ${m.title} — Medic`;
    renderChart(m);
    renderLinks(info);
    renderActions(info, live);
    renderSamples(info);
    renderTimeline(m);
  };

  function renderChart(m) {
    const info = m.info;
    const points = m.points();
    const geometry = sparkline(points, { baseline: info.baseline, threshold: info.quiet_threshold });
    const sig = JSON.stringify([geometry.points, geometry.baselineY, geometry.thresholdY]);
    const box = $('incident-chart');
    if (box.dataset.sig !== sig) {
      box.dataset.sig = sig;
      const label = `${points.length} bucket${points.length === 1 ? '' : 's'}; latest ${formatValue(info.kind, geometry.last?.value)}, baseline ${formatValue(info.kind, info.baseline)}`;
      const chart = svg('svg', { viewBox: `0 0 ${geometry.width} ${geometry.height}`, width: '100%', height: geometry.height, preserveAspectRatio: 'none', role: 'img',
        class: 'sparkline', 'data-testid': 'incident-sparkline', 'data-points': points.length, 'aria-label': label },
      svg('title', {}, label));
      if (geometry.thresholdY !== null) chart.append(svg('line', { x1: 0, x2: geometry.width, y1: geometry.thresholdY, y2: geometry.thresholdY, class: 'spark-threshold' }));
      if (geometry.baselineY !== null) chart.append(svg('line', { x1: 0, x2: geometry.width, y1: geometry.baselineY, y2: geometry.baselineY, class: 'spark-baseline', 'data-testid': 'incident-sparkline-baseline' }));
      if (points.length) chart.append(svg('polyline', { points: geometry.points, class: 'spark-line', 'data-testid': 'incident-sparkline-line' }));
      if (geometry.last) chart.append(svg('circle', { cx: geometry.last.x, cy: geometry.last.y, r: 2.5, class: 'spark-last' }));
      box.replaceChildren(points.length ? chart : el('p', { class: 'muted small', text: 'No closed bucket yet.' }));
    }
    const figures = [`rate ${formatValue(info.kind, info.value)}`, `baseline ${formatValue(info.kind, info.baseline)}`,
      typeof info.peak === 'number' && `peak ${formatValue(info.kind, info.peak)}`,
      typeof info.quiet_threshold === 'number' && `quiet at ≤ ${formatValue(info.kind, info.quiet_threshold)}`,
      typeof info.bucket_ms === 'number' && `per ${formatDuration(info.bucket_ms)} bucket`].filter(Boolean);
    $('incident-figures').textContent = figures.join(' · ');
  }

  function renderLinks(info) {
    const parts = [];
    const link = (route, idValue, testid, label) => {
      try { return el('a', { href: ctx.href(route, { id: idValue }), dataset: { testid }, text: `${label} ${idValue}` }); } catch { return el('span', { text: `${label} ${idValue}` }); }
    };
    if (typeof info.bug === 'string') parts.push(link('bug', info.bug, 'incident-bug', 'bug'), info.automatic ? ' (filed automatically)' : '');
    if (typeof info.proposal === 'string') parts.push(parts.length ? ' · ' : '', link('proposal', info.proposal, 'incident-proposal', 'fix'));
    const box = $('incident-links');
    const sig = JSON.stringify([info.bug, info.proposal, info.automatic]);
    if (box.dataset.sig === sig) return;
    box.dataset.sig = sig;
    box.replaceChildren(...(parts.length ? parts.filter((p) => p !== '') : [el('span', { class: 'muted', text: 'No bug filed yet.' })]));
  }

  function renderActions(info, live) {
    const perms = incidentPermissions(ctx.me, info, live);
    const any = perms.canAcknowledge || perms.canFileBug || perms.canMute || perms.canResolve || perms.canRollback;
    $('incident-actions').hidden = !any;
    $('incident-acknowledge').hidden = !perms.canAcknowledge;
    $('incident-file-bug').hidden = !perms.canFileBug;
    $('incident-mute').hidden = !perms.canMute;
    $('incident-mute-duration').closest('label').hidden = !perms.canMute;
    $('incident-resolve').hidden = !perms.canResolve;
    $('incident-reason').hidden = !perms.canResolve;
    $('incident-reason').previousElementSibling.hidden = !perms.canResolve;
    $('incident-rollback').hidden = !perms.canRollback;
    for (const b of ['incident-acknowledge', 'incident-file-bug', 'incident-mute', 'incident-resolve', 'incident-rollback', 'incident-rollback-ok']) $(b).disabled = view.busy;
    if (!perms.canRollback) confirming = false;
    $('incident-rollback-confirm').hidden = !confirming;
    $('incident-rollback-text').textContent = confirming ? `Revert the commit of ${info.proposal} in its repository?` : '';
    $('incident-why').textContent = perms.why || (any ? '' : 'Nothing to do in this state.');
  }

  function renderSamples(info) {
    const samples = Array.isArray(info.samples) ? info.samples.filter((s) => typeof s === 'string') : [];
    const stack = typeof info.stack === 'string' && info.stack ? info.stack : null;
    const sig = JSON.stringify([samples, stack]);
    const box = $('incident-samples');
    if (box.dataset.sig === sig) return;
    box.dataset.sig = sig;
    box.replaceChildren(...(samples.length
      ? samples.map((s, i) => el('pre', { class: 'evidence incident-sample', dataset: { testid: 'incident-sample', index: i }, text: s }))
      : [el('p', { class: 'muted small', text: 'No samples (this kind of anomaly is measured, not logged).' })]));
    $('incident-stack').replaceChildren(...(stack ? [el('h4', { text: 'Stack' }), el('pre', { class: 'evidence', dataset: { testid: 'incident-stack-text' }, text: stack })] : []));
  }

  function renderTimeline(m) {
    const ol = $('incident-timeline');
    const sig = `${m.lastSeq}:${m.timeline.length}`;
    if (ol.dataset.sig === sig) return;
    ol.dataset.sig = sig;
    ol.replaceChildren(
      ...(m.timelineDropped ? [el('li', { class: 'muted small', text: `${m.timelineDropped} earlier entries not shown` })] : []),
      ...m.timeline.map((e) => el('li', { class: 'tl-item', dataset: { testid: 'incident-event', kind: e.kind, seq: e.seq ?? '' } },
        el('span', { class: 'tl-time small muted', text: formatTime(e.ts) }), ' ', el('span', { text: e.text }))));
  }

  return view;
}
