// incidents.js: the monitor's incidents (protocol/README.md "Monitor and incidents": topics `incidents` and
// `incident:<id>`, GET /api/v1/incidents[/<id>]) — the list, one incident folded from its events, the sparkline's
// geometry, which of the four admin commands (and the rollback of a regressed fix) apply, and the critical banner's
// choice. No DOM here, so node checks it (js_units.mjs).
//
// Titles, samples and stacks come from ingested log lines: untrusted text, kept as strings and shown with
// textContent by the views.

import { SummaryList } from './summary-list.js';

export const SEVERITIES = ['low', 'medium', 'high', 'critical'];
/** Closed statuses: nothing more happens unless an admin files a bug again. */
export const CLOSED_INCIDENT = new Set(['healed', 'resolved', 'recorded']);
/** A critical incident in one of these raises the banner for admins (muted and closed ones do not). */
export const NEEDS_ATTENTION = new Set(['open', 'acknowledged', 'fixing', 'watching', 'regressed']);
/** Where each command is accepted (the server's table; the buttons follow it, the server still decides). */
export const COMMAND_STATUSES = {
  acknowledge_incident: new Set(['open', 'regressed', 'muted']),
  file_bug: new Set(['open', 'acknowledged', 'regressed', 'muted', 'healed', 'resolved', 'recorded']),
  mute_incident: new Set(['open', 'acknowledged', 'fixing', 'watching', 'regressed', 'muted']),
  resolve_incident: new Set(['open', 'acknowledged', 'fixing', 'watching', 'regressed', 'muted']),
};
/** The mute durations the page offers (the server takes 60 s … 7 days). */
export const MUTE_CHOICES = [[3600, '1 hour'], [4 * 3600, '4 hours'], [86400, '1 day'], [7 * 86400, '7 days']];
/** Most buckets drawn (the server keeps ≤ 120 in the detail; live `bucket` events add to them). */
export const SERIES_LIMIT = 240;
/** Most timeline entries kept (older ones are dropped and counted). */
export const TIMELINE_LIMIT = 500;

/** The `incidents` topic (kind `incident`) and GET /api/v1/incidents: not closed first, then newest opened first. */
export class IncidentList extends SummaryList {
  constructor() { super('incident'); }

  sorted() {
    const rank = (i) => (CLOSED_INCIDENT.has(i.status) ? 1 : 0);
    return [...this.byId.values()].sort((a, b) => rank(a) - rank(b) || (b.opened_at ?? 0) - (a.opened_at ?? 0)
      || String(b.id).localeCompare(String(a.id)));
  }
}

/** The incidents that raise the banner: critical, still needing attention; newest first. */
export function criticalIncidents(list) {
  return list.sorted().filter((i) => i.severity === 'critical' && NEEDS_ATTENTION.has(i.status));
}

/** "42 s", "3 min 5 s", "2 h 10 min" for a duration in ms. */
export function formatDuration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  return `${Math.floor(s / 3600)} h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ''}`;
}

/** A rate or ratio as the page writes it (counts whole, ratios in %, latencies in ms). */
export function formatValue(kind, v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '—';
  if (kind === 'error_rate') return `${(v * 100).toFixed(1)} %`;
  if (kind === 'latency') return `${Math.round(v)} ms`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

/** One line per event for the incident's timeline (null for `bucket`: the sparkline shows those). */
export function eventText(ev) {
  const d = ev?.data ?? {};
  const str = (v) => (typeof v === 'string' ? v : '');
  switch (ev?.kind) {
    case 'incident_opened': return `Opened: ${str(d.kind).replace(/_/g, ' ')} in ${str(d.service) || 'every service'}, severity ${str(d.severity)}`;
    case 'anomaly': return `Seen again: ${formatValue(d.kind, d.value)} against a baseline of ${formatValue(d.kind, d.baseline)}${d.severity ? ` (severity ${str(d.severity)})` : ''}`;
    case 'incident_acknowledged': return `Acknowledged by ${str(d.by)}`;
    case 'bug_filed': return `Bug ${str(d.bug)} filed ${d.automatic ? 'automatically' : `by ${str(d.by)}`}`;
    case 'auto_bug_deferred': return `No bug filed automatically: ${str(d.reason)}`;
    case 'bug_status': return `Bug ${str(d.bug)} is ${str(d.status).replace(/_/g, ' ')}${d.proposal ? ` (proposal ${str(d.proposal)})` : ''}`;
    case 'fix_applied': return `Fix ${str(d.proposal)} applied${d.commit ? ` as ${str(d.commit).slice(0, 12)}` : ''}: watching`;
    case 'healed': return `Healed in ${formatDuration(d.time_to_heal_ms)}${typeof d.fix_to_heal_ms === 'number' ? ` (${formatDuration(d.fix_to_heal_ms)} after the fix)` : ''}`;
    case 'regressed': return `Regressed: ${formatValue(null, d.value)} again after the fix${d.proposal ? ` ${str(d.proposal)}` : ''}`;
    case 'incident_muted': return `Muted by ${str(d.by)} until ${typeof d.until === 'number' ? new Date(d.until).toISOString().replace('.000Z', 'Z') : '?'}`;
    case 'incident_resolved': return `Resolved by ${str(d.by)}${d.reason ? `: ${str(d.reason)}` : ''}`;
    case 'incident_reopened': return `Reopened: ${str(d.reason)}`;
    case 'bucket': return null;
    default: return typeof ev?.kind === 'string' ? ev.kind.replace(/_/g, ' ') : null;
  }
}

/**
 * One incident, folded from its `incident:<id>` topic (replayed from 0) and GET /api/v1/incidents/<id>. The detail
 * fills what the events do not carry; a later event wins over an older detail.
 */
export class IncidentModel {
  constructor(id) {
    this.id = id;
    this.info = { id };        // the summary + detail fields
    /** @type {Map<number, number>} bucket_start → value */
    this.series = new Map();
    this.timeline = [];        // [{seq, ts, kind, text}]
    this.timelineDropped = 0;
    this.lastSeq = 0;
  }

  get status() { return this.info.status ?? null; }
  get title() { return this.info.title ?? this.id; }

  /** GET /api/v1/incidents/<id> → `{incident, events}` (or the detail alone). */
  setDetail(body) {
    const detail = body?.incident && typeof body.incident === 'object' ? body.incident : body;
    if (!detail || typeof detail !== 'object') return;
    // Fields the events moved since stay (a status from a later event is newer than a detail read before it).
    const fresher = (this.info.updated_at ?? 0) > (detail.updated_at ?? 0);
    this.info = fresher ? { ...detail, ...this.info } : { ...this.info, ...detail };
    this.addSeries(detail.series);
    if (Array.isArray(body?.events) && this.timeline.length === 0) for (const ev of body.events) this.apply(ev);
  }

  addSeries(series) {
    if (!Array.isArray(series)) return;
    for (const point of series) {
      if (Array.isArray(point) && typeof point[0] === 'number' && typeof point[1] === 'number') this.series.set(point[0], point[1]);
    }
    this.trimSeries();
  }

  trimSeries() {
    if (this.series.size <= SERIES_LIMIT) return;
    const keep = [...this.series.keys()].sort((a, b) => a - b).slice(-SERIES_LIMIT);
    this.series = new Map(keep.map((k) => [k, this.series.get(k)]));
  }

  /** Points oldest first: [[bucket_start, value], …]. */
  points() { return [...this.series.entries()].sort((a, b) => a[0] - b[0]); }

  /** Folds one event (repeats of a seq already folded are ignored). */
  apply(ev) {
    if (!ev || typeof ev !== 'object') return;
    if (typeof ev.seq === 'number') {
      if (ev.seq <= this.lastSeq) return;
      this.lastSeq = ev.seq;
    }
    const d = ev.data ?? {};
    const set = (fields) => { this.info = { ...this.info, ...fields, updated_at: Math.max(this.info.updated_at ?? 0, ev.ts ?? 0) }; };
    switch (ev.kind) {
      case 'incident_opened':
        this.info = { ...d, ...this.info, ...(this.info.status ? {} : { status: d.status }) };
        this.addSeries(d.series);
        break;
      case 'bucket':
        if (typeof d.bucket_start === 'number' && typeof d.value === 'number') { this.series.set(d.bucket_start, d.value); this.trimSeries(); }
        break;
      case 'anomaly':
        set({ value: d.value, baseline: d.baseline, ...(d.severity ? { severity: d.severity } : {}),
          ...(Array.isArray(d.samples) && d.samples.length ? { samples: d.samples } : {}),
          occurrences: (this.info.occurrences ?? 1) + 1 });
        break;
      case 'bug_filed': set({ status: 'fixing', bug: d.bug ?? this.info.bug, automatic: !!d.automatic }); break;
      case 'bug_status': set({ bug: d.bug ?? this.info.bug, ...(d.proposal ? { proposal: d.proposal } : {}), bug_status: d.status }); break;
      case 'fix_applied': set({ status: 'watching', proposal: d.proposal ?? this.info.proposal, applied_at: ev.ts ?? null }); break;
      case 'healed': set({ status: 'healed', time_to_heal_ms: d.time_to_heal_ms ?? null, healed_at: ev.ts ?? null }); break;
      case 'regressed': set({ status: 'regressed', ...(d.proposal ? { proposal: d.proposal } : {}) }); break;
      case 'incident_acknowledged': set({ status: 'acknowledged', acknowledged_by: d.by ?? null }); break;
      case 'incident_muted': set({ status: 'muted', muted_until: d.until ?? null }); break;
      case 'incident_resolved': set({ status: 'resolved', resolved_by: d.by ?? null, reason: d.reason ?? null }); break;
      case 'incident_reopened': set({ status: this.info.bug && this.info.status === 'muted' ? 'fixing' : 'open', reason: d.reason ?? null }); break;
      case 'auto_bug_deferred': set({ reason: d.reason ?? null }); break;
      default: break;
    }
    const text = eventText(ev);
    if (text !== null) {
      this.timeline.push({ seq: ev.seq ?? null, ts: ev.ts ?? null, kind: ev.kind, text });
      const extra = this.timeline.length - TIMELINE_LIMIT;
      if (extra > 0) { this.timeline.splice(0, extra); this.timelineDropped += extra; }
    }
  }

  /** A summary event of the `incidents` topic for this incident (status, severity, bug, proposal…). */
  mergeSummary(summary) {
    if (!summary || summary.id !== this.id) return false;
    if ((summary.updated_at ?? 0) < (this.info.updated_at ?? 0)) return false;
    this.info = { ...this.info, ...summary };
    return true;
  }
}

/**
 * The sparkline of a series: an SVG polyline's points in a `width` × `height` box (y grows down), the baseline's
 * and the quiet threshold's heights when given, and the scale's top. Pure: the view draws what this returns.
 */
export function sparkline(points, { width = 320, height = 64, pad = 3, baseline = null, threshold = null } = {}) {
  const values = points.map((p) => p[1]).filter((v) => Number.isFinite(v));
  const refs = [baseline, threshold].filter((v) => typeof v === 'number' && Number.isFinite(v));
  const top = Math.max(1, ...values, ...refs);
  const y = (v) => +(height - pad - (Math.max(0, v) / top) * (height - 2 * pad)).toFixed(2);
  const n = points.length;
  const x = (i) => +(n <= 1 ? width / 2 : pad + (i * (width - 2 * pad)) / (n - 1)).toFixed(2);
  return {
    width, height, top,
    points: points.map((p, i) => `${x(i)},${y(p[1])}`).join(' '),
    last: n ? { x: x(n - 1), y: y(points[n - 1][1]), value: points[n - 1][1] } : null,
    baselineY: typeof baseline === 'number' && Number.isFinite(baseline) ? y(baseline) : null,
    thresholdY: typeof threshold === 'number' && Number.isFinite(threshold) ? y(threshold) : null,
  };
}

/**
 * What the signed-in principal may do with an incident: the four commands for admins in the statuses that take
 * them, and the rollback of the fix when it regressed. `why` says why the buttons are missing.
 */
export function incidentPermissions(me, info, live = true) {
  const none = { canAcknowledge: false, canFileBug: false, canMute: false, canResolve: false, canRollback: false, why: '' };
  if (!me) return none;
  if (me.role !== 'admin') return { ...none, why: `Only admins act on incidents (you are ${me.role}).` };
  if (!live) return { ...none, why: 'Not connected.' };
  const s = info?.status;
  return {
    canAcknowledge: COMMAND_STATUSES.acknowledge_incident.has(s),
    canFileBug: COMMAND_STATUSES.file_bug.has(s) && !(s === 'fixing'),
    canMute: COMMAND_STATUSES.mute_incident.has(s),
    canResolve: COMMAND_STATUSES.resolve_incident.has(s),
    canRollback: s === 'regressed' && typeof info?.proposal === 'string',
    why: '',
  };
}

/** The headline of an incident's state ("healed in 42 s", "watching since the fix", …). */
export function statusSentence(info) {
  switch (info?.status) {
    case 'open': return info.reason ? `Waiting for an admin: ${info.reason}` : 'Waiting for an admin.';
    case 'acknowledged': return `Acknowledged${info.acknowledged_by ? ` by ${info.acknowledged_by}` : ''}.`;
    case 'fixing': return info.bug ? `Bug ${info.bug} is being fixed.` : 'A bug is being filed.';
    case 'watching': return 'The fix is applied: watching whether the errors stop.';
    case 'healed': return typeof info.time_to_heal_ms === 'number' ? `Healed in ${formatDuration(info.time_to_heal_ms)}.` : 'Healed.';
    case 'regressed': return 'It came back after the fix: roll the fix back, or file a bug again.';
    case 'muted': return typeof info.muted_until === 'number' ? `Muted until ${new Date(info.muted_until).toLocaleString()}.` : 'Muted.';
    case 'resolved': return `Resolved${info.resolved_by ? ` by ${info.resolved_by}` : ''}${info.reason ? `: ${info.reason}` : '.'}`;
    case 'recorded': return 'Recorded (low severity).';
    default: return 'Loading…';
  }
}
