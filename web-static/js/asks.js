// asks.js: the Ask workflow's state (ask-spec: `ask`, `mark_answer`, topics `asks` and `ask:<id>`) — the list of past
// asks, one ask folded from its events, and the pure helpers the Ask view uses: cell text, table limits, the bar
// chart's data and scale, number formatting, what the signed-in role may do. No DOM here, so node checks it
// (Tests/browser/js_units.mjs).
//
// Everything the server sends is data: the question, the model's streamed text, SQL and database values are kept as
// strings (or numbers) and shown with textContent / SVG text nodes by the view.

import { SummaryList } from './summary-list.js';

/** Most characters of one round's streamed model text kept (older text is dropped from the front). */
export const THINKING_LIMIT = 32 * 1024;
/** Most characters of one table cell shown (the rest is cut with an ellipsis; the title shows up to 2,000). */
export const CELL_LIMIT = 200;
/** Rows shown of a step's result (the server sends at most 50) and of the answer (it sends at most 1,000). */
export const STEP_ROWS = 20;
export const ANSWER_ROWS = 100;
/** Most columns shown of any table. */
export const MAX_COLUMNS = 40;
/** Most bars in the chart (the largest values; the rest are counted). */
export const CHART_BARS = 30;
/** Question length limit (the server's; checked before sending). */
export const QUESTION_LIMIT = 4000;
export const COMMENT_LIMIT = 2000;

/** The demo's example questions (issue 14), offered as one-click starts when the demo's `users` source is chosen. */
export const EXAMPLES = [
  'How many female users are currently active in the Tokyo, Japan region with above $500 but less than $1950 in the wallet?',
  'Show me the top 10 most active users this week',
  "What's the average wallet balance by region?",
  'How many users completed KYC?',
];

/** A cell of a result as text: NULL for null, numbers and booleans as written, objects as JSON. Never throws. */
export function cellText(value) {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  try { return JSON.stringify(value) ?? String(value); } catch { return '?'; }
}

/** `text` cut to `limit` characters (code points, so no half surrogate pair) with an ellipsis. */
export function clip(text, limit = CELL_LIMIT) {
  const s = String(text ?? '');
  if (s.length <= limit) return s;
  const points = Array.from(s);
  return points.length <= limit ? s : `${points.slice(0, limit - 1).join('')}…`;
}

/**
 * What a table shows of `columns` × `rows` (rows as arrays, as the events carry them): at most `rowLimit` rows and
 * MAX_COLUMNS columns, every cell as clipped text (`full` keeps the longer text for a tooltip), numbers flagged for
 * right alignment, and how many rows the server had beyond the ones shown (`rowCount` when it says, else the rows').
 */
export function tableModel(columns, rows, { rowLimit = ANSWER_ROWS, rowCount = null } = {}) {
  const cols = (Array.isArray(columns) ? columns : []).slice(0, MAX_COLUMNS).map((c) => clip(cellText(c), 80));
  const list = Array.isArray(rows) ? rows : [];
  const shown = list.slice(0, Math.max(0, rowLimit)).map((row) => {
    const cells = Array.isArray(row) ? row : [];
    return cols.map((_, i) => {
      const v = cells[i];
      const full = cellText(v);
      return { text: clip(full), full: clip(full, 2000), numeric: typeof v === 'number', null: v === null || v === undefined };
    });
  });
  const total = Number.isInteger(rowCount) && rowCount >= list.length ? rowCount : list.length;
  return {
    columns: cols,
    rows: shown,
    hiddenRows: Math.max(0, total - shown.length),
    hiddenColumns: Math.max(0, (Array.isArray(columns) ? columns.length : 0) - cols.length),
    total,
  };
}

/**
 * The bar chart of an answer, or null: the server marks a result of one label column and one number column with
 * `chart: {label_column, value_column}`; both must name columns of the answer and every value must be a finite
 * number (a NULL value is skipped). Bars keep the answer's order; with more than `limit` rows the largest values
 * are kept (the rest counted in `hidden`). `fraction` is |value| / the largest |value| (0…1), so bars scale to the
 * longest one; `negative` marks values below zero.
 */
export function chartModel(answer, limit = CHART_BARS) {
  const chart = answer?.chart;
  const columns = Array.isArray(answer?.columns) ? answer.columns : [];
  if (!chart || typeof chart !== 'object') return null;
  const li = columns.indexOf(chart.label_column);
  const vi = columns.indexOf(chart.value_column);
  if (li < 0 || vi < 0 || li === vi) return null;
  const rows = Array.isArray(answer.rows) ? answer.rows : [];
  let bars = [];
  for (const row of rows) {
    if (!Array.isArray(row)) return null;
    const v = row[vi];
    if (v === null || v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) return null;
    bars.push({ label: clip(cellText(row[li]), 60), value: v });
  }
  if (bars.length === 0) return null;
  let hidden = 0;
  if (bars.length > limit) {
    const keep = new Set([...bars.keys()].sort((a, b) => Math.abs(bars[b].value) - Math.abs(bars[a].value)).slice(0, limit));
    hidden = bars.length - limit;
    bars = bars.filter((_, i) => keep.has(i));
  }
  const max = Math.max(...bars.map((b) => Math.abs(b.value)));
  for (const b of bars) {
    b.fraction = max > 0 ? Math.abs(b.value) / max : 0;
    b.negative = b.value < 0;
  }
  return { labelColumn: clip(String(chart.label_column), 80), valueColumn: clip(String(chart.value_column), 80), bars, max, hidden };
}

/** A number for people: grouped thousands, at most two decimals; anything else as cell text. */
export function formatValue(value) {
  if (typeof value === 'number' && Number.isFinite(value)) {
    return value.toLocaleString('en-US', { maximumFractionDigits: Math.abs(value) >= 100 || Number.isInteger(value) ? 2 : 4 });
  }
  return cellText(value);
}

/**
 * A round's streamed text as shown: the model's final reply is one JSON object `{"answer": …, "sql": …}` — once it
 * is complete, only its `answer` sentence is shown (the SQL is shown with its result right below); any other text,
 * or a reply still streaming, as it is.
 */
export function thinkingText(text) {
  const s = String(text ?? '');
  const trimmed = s.trim();
  if (!trimmed.startsWith('{') || !trimmed.endsWith('}')) return s;
  try {
    const reply = JSON.parse(trimmed);
    return reply && typeof reply === 'object' && typeof reply.answer === 'string' ? reply.answer : s;
  } catch {
    return s;
  }
}

/** What the signed-in role may do: ask (admin, bot) and mark an answered ask (admin). */
export function askPermissions(me, model) {
  const role = me?.role;
  return {
    canAsk: role === 'admin' || role === 'bot',
    canMark: role === 'admin' && model?.status === 'answered' && !!model?.answer,
  };
}

/** The `asks` topic (kind `ask`, the summary) and `GET /api/v1/asks` folded into one map of summaries. */
/** The asks known to the page (`asks` topic + REST list). */
export class AskList extends SummaryList {
  constructor() { super('ask'); }
}

/** Event kinds that belong to a round of the model's work (each carries `round`). */
const ROUND_KINDS = new Set(['ask_thinking', 'tool_called', 'sql_proposed', 'sql_result', 'sql_refused']);

/**
 * One ask, folded from the events of its `ask:<id>` topic (and the REST detail before they arrive). Rounds hold the
 * model's streamed text, its tool calls and the SQL it proposed with each statement's result or refusal.
 * Unknown kinds are ignored; malformed data never throws.
 */
export class AskModel {
  constructor(id) {
    this.id = id;
    this.question = '';
    this.source = '';
    this.author = '';
    this.status = 'thinking';
    this.reason = null;
    this.createdAt = null;
    /** @type {Map<number, {round: number, thinking: string, tools: object[], queries: object[]}>} */
    this.rounds = new Map();
    this.answer = null;
    this.failure = null;
    this.mark = null;      // {correct, comment} once an admin marked it (from the ack or the detail)
    this.hasEvents = false;
  }

  round(n) {
    let r = this.rounds.get(n);
    if (!r) { r = { round: n, thinking: '', tools: [], queries: [] }; this.rounds.set(n, r); }
    return r;
  }

  /** Rounds in order. */
  steps() { return [...this.rounds.values()].sort((a, b) => a.round - b.round); }

  apply(ev) {
    const d = ev?.data && typeof ev.data === 'object' ? ev.data : {};
    if (typeof ev?.seq === 'number') this.hasEvents = true;
    // A step event without its round is malformed: ignored (it has no place to go).
    if (ROUND_KINDS.has(ev?.kind) && !Number.isInteger(d.round)) return false;
    switch (ev?.kind) {
      case 'ask_created':
        if (typeof d.question === 'string') this.question = d.question;
        if (typeof d.source === 'string') this.source = d.source;
        if (typeof d.author === 'string') this.author = d.author;
        if (typeof ev.ts === 'number') this.createdAt = ev.ts;
        break;
      case 'status_changed':
        if (typeof d.status === 'string') this.status = d.status;
        this.reason = typeof d.reason === 'string' ? d.reason : null;
        break;
      case 'ask_thinking': {
        if (typeof d.text !== 'string') break;
        const r = this.round(d.round);
        r.thinking += d.text;
        if (r.thinking.length > THINKING_LIMIT) r.thinking = `…${r.thinking.slice(-(THINKING_LIMIT - 1))}`;
        break;
      }
      case 'tool_called':
        this.round(d.round).tools.push({ name: String(d.name ?? ''), input: d.input ?? null });
        break;
      case 'sql_proposed':
        this.round(d.round).queries.push({ sql: String(d.sql ?? ''), source: d.source ?? null, result: null, refusal: null });
        break;
      case 'sql_result':
      case 'sql_refused': {
        const r = this.round(d.round);
        // The statement it answers: the last one of the round still waiting (a refusal names its SQL).
        let q = [...r.queries].reverse().find((x) => !x.result && !x.refusal && (ev.kind === 'sql_result' || d.sql === undefined || x.sql === d.sql));
        if (!q) { q = { sql: String(d.sql ?? ''), source: null, result: null, refusal: null }; r.queries.push(q); }
        if (ev.kind === 'sql_result') q.result = d;
        else q.refusal = { code: String(d.code ?? ''), reason: String(d.reason ?? '') };
        break;
      }
      case 'answer':
        this.answer = d;
        if (this.status === 'thinking') this.status = 'answered';
        break;
      case 'ask_failed':
        this.failure = typeof d.reason === 'string' ? d.reason : 'the ask failed';
        this.status = 'failed';
        break;
      default:
        return false;
    }
    return true;
  }

  /** The REST detail: what is known before (or without) the events. Events, once there, win. */
  setDetail(detail) {
    if (!detail || typeof detail !== 'object') return;
    if (!this.question && typeof detail.question === 'string') this.question = detail.question;
    if (!this.source && typeof detail.source === 'string') this.source = detail.source;
    if (!this.author && typeof detail.author === 'string') this.author = detail.author;
    if (this.createdAt === null && typeof detail.created_at === 'number') this.createdAt = detail.created_at;
    if (!this.hasEvents) {
      if (typeof detail.status === 'string') this.status = detail.status;
      if (detail.answer && typeof detail.answer === 'object') this.answer = detail.answer;
    }
    const mark = detail.mark ?? detail.marked;
    if (mark && typeof mark === 'object' && typeof mark.correct === 'boolean') this.mark = { correct: mark.correct, comment: mark.comment ?? '' };
  }
}
