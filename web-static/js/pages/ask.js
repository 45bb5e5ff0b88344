// pages/ask.js: the Ask panel (`#/ask`, `#/ask/<id>`; ask-spec.md) — a question box with the source to ask
// (GET /api/v1/sources) that sends `ask {question, source}` on the shared connection and opens the new ask; the open
// ask follows `ask:<id>`: the model's text as it streams (`ask_thinking`), each proposed SQL with its result table or
// the refusal, and the answer (its text, the SQL it came from, the row count, the value big when there is one, a
// table, a bar chart when the server marks one); admins mark an answer correct or wrong (`mark_answer`). Past asks
// (GET /api/v1/asks) stay live through the `asks` topic.
//
// The question, the model's text, SQL and database values are untrusted: all of it goes through textContent (and SVG
// text nodes for the chart); nothing is parsed as HTML and no style attribute is written (the page's CSP).

import {
  AskList, AskModel, EXAMPLES, QUESTION_LIMIT, COMMENT_LIMIT, STEP_ROWS, ANSWER_ROWS,
  askPermissions, chartModel, clip, formatValue, tableModel, thinkingText,
} from '../asks.js';
import { el, formatTime } from '../views.js';

export const ROUTES = [{ name: 'ask', pattern: '/ask' }, { name: 'ask-detail', pattern: '/ask/:id' }];

const ASK_ERRORS = {
  not_found: 'This ask does not exist (or no longer exists).',
  invalid_state: 'That does not apply yet: the ask has no answer.',
  forbidden: 'Your role may not do that (asking needs admin or bot; marking answers needs admin).',
};

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A result table (`tableModel`): header, rows, and a line saying what is not shown. */
export function renderTable(model, testid) {
  const table = el('table', { class: 'ask-table', dataset: { testid } },
    el('thead', {}, el('tr', {}, model.columns.map((c) => el('th', { scope: 'col', text: c })))),
    el('tbody', {}, model.rows.map((cells) => el('tr', { dataset: { testid: `${testid}-row` } },
      cells.map((c) => el('td', { class: c.numeric ? 'num' : c.null ? 'null' : undefined, title: c.full !== c.text ? c.full : undefined, text: c.text }))))));
  const notes = [];
  if (model.hiddenRows > 0) notes.push(`${model.hiddenRows.toLocaleString('en-US')} more row${model.hiddenRows === 1 ? '' : 's'} not shown`);
  if (model.hiddenColumns > 0) notes.push(`${model.hiddenColumns} more column${model.hiddenColumns === 1 ? '' : 's'} not shown`);
  const parts = [el('div', { class: 'table-scroll' }, table)];
  if (notes.length) parts.push(el('p', { class: 'ask-result-meta', dataset: { testid: `${testid}-more` }, text: notes.join('; ') }));
  return parts;
}

/** The bar chart of `chartModel(answer)` as inline SVG: label, bar scaled to the largest value, the value. */
export function renderChart(chart) {
  const rowHeight = 22, labelWidth = 170, barWidth = 360, valueWidth = 110;
  const width = labelWidth + barWidth + valueWidth;
  const height = chart.bars.length * rowHeight + 8;
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `${chart.valueColumn} by ${chart.labelColumn}` });
  chart.bars.forEach((b, i) => {
    const y = 4 + i * rowHeight;
    const g = svg('g', { 'data-testid': 'ask-chart-bar', 'data-value': b.value, 'data-fraction': b.fraction.toFixed(4) });
    g.append(svg('title', {}, `${b.label}: ${formatValue(b.value)}`));
    g.append(svg('text', { x: labelWidth - 6, y: y + 15, 'text-anchor': 'end' }, clip(b.label, 24)));
    g.append(svg('rect', { class: b.negative ? 'bar negative' : 'bar', x: labelWidth, y: y + 3, height: rowHeight - 6,
      width: Math.max(b.fraction > 0 ? 1 : 0, Math.round(b.fraction * barWidth * 10) / 10) }));
    g.append(svg('text', { x: labelWidth + barWidth + 6, y: y + 15 }, formatValue(b.value)));
    root.append(g);
  });
  const parts = [root];
  if (chart.hidden > 0) parts.push(el('p', { class: 'ask-result-meta', text: `The ${chart.bars.length} largest of ${chart.bars.length + chart.hidden} values are drawn.` }));
  return parts;
}

export function createAsk(ctx) {
  const { $ } = ctx;
  const view = { name: 'ask', routes: ROUTES, section: 'ask', list: new AskList(), model: null };
  let sources = null;        // [{name, kind, tables}] once read
  let sourcesError = '';
  let listSubscribed = false;
  let listError = '';
  let loadError = '';
  let busy = false;
  let marking = false;
  const marks = new Map();   // ask id -> {correct, comment} acknowledged in this tab

  const auth = () => ({ headers: { Authorization: `Bearer ${ctx.token()}` } });
  const topic = () => (view.model ? `ask:${view.model.id}` : null);
  const errorText = (err) => (ASK_ERRORS[err?.code] ? `${ASK_ERRORS[err.code]}${err.message ? ` (${err.message})` : ''}` : ctx.errorText(err));

  // ---- reads ----

  async function loadSources() {
    try {
      const response = await fetch('/api/v1/sources', auth());
      const body = await response.json().catch(() => ({}));
      if (!response.ok) { sourcesError = body.message ?? `The sources could not be read (HTTP ${response.status}).`; return; }
      sources = (Array.isArray(body.sources) ? body.sources : []).filter((s) => s && typeof s.name === 'string');
      sourcesError = '';
      const select = $('ask-source');
      const keep = select.value;
      select.replaceChildren(...sources.map((s) => el('option', { value: s.name, text: `${s.name}${s.kind ? ` (${s.kind})` : ''}` })));
      // Default as the server does: the first source that is not Medic's own store.
      const preferred = sources.find((s) => s.name === keep) ?? sources.find((s) => s.name !== 'medic') ?? sources[0];
      if (preferred) select.value = preferred.name;
    } catch {
      sourcesError = 'The sources could not be read.';
    } finally {
      ctx.queueRender();
    }
  }

  async function loadList() {
    try {
      const response = await fetch('/api/v1/asks?limit=100', auth());
      const body = await response.json().catch(() => ({}));
      if (!response.ok) { listError = body.message ?? `Past questions could not be read (HTTP ${response.status}).`; return; }
      listError = '';
      for (const summary of Array.isArray(body.asks) ? body.asks : []) view.list.merge(summary);
    } catch {
      listError = 'Past questions could not be read.';
    } finally {
      ctx.queueRender();
    }
  }

  async function loadDetail(model) {
    try {
      const response = await fetch(`/api/v1/asks/${encodeURIComponent(model.id)}`, auth());
      const body = await response.json().catch(() => ({}));
      if (view.model !== model) return;
      if (response.status === 404) loadError = ASK_ERRORS.not_found;
      else if (!response.ok) loadError = body.message ?? `The ask could not be read (HTTP ${response.status}).`;
      else model.setDetail(body);
    } catch {
      if (view.model === model) loadError = 'The ask could not be read.';
    }
    ctx.queueRender();
  }

  // ---- open / close ----

  function open(id) {
    if (view.model?.id === id) return;
    close();
    fresh(id);
    ctx.conn?.subscribe(`ask:${id}`);
    loadDetail(view.model);
  }

  function close() {
    if (view.model) ctx.conn?.unsubscribe(`ask:${view.model.id}`);
    view.model = null;
  }

  function fresh(id) {
    ctx.store.seen.delete(`ask:${id}`);
    view.model = new AskModel(id);
    loadError = '';
    closeMarkForm();
    $('ask-mark-message').textContent = '';
    ctx.queueRender();
  }

  view.enter = (match) => {
    // The list is followed while the view shows: each visit replays the topic (summaries merge by updated_at).
    if (!listSubscribed && ctx.conn) { ctx.store.seen.delete('asks'); ctx.conn.subscribe('asks'); listSubscribed = true; }
    loadList();
    if (sources === null) loadSources();
    if (match.name === 'ask-detail') open(match.params.id);
    else { close(); setTimeout(() => $('ask-question').focus(), 0); }
  };
  view.leave = () => {
    close();
    if (listSubscribed && ctx.conn) ctx.conn.unsubscribe('asks');
    listSubscribed = false;
  };
  view.reset = () => {
    view.model = null;
    view.list.clear();
    listSubscribed = false;
    sources = null;
    listError = '';
    loadError = '';
    marks.clear();
  };

  view.onEvent = (ev) => {
    if (ev.topic === 'asks') {
      if (view.list.apply(ev)) ctx.queueRender();
      return;
    }
    if (!view.model || ev.topic !== topic()) return;
    if (view.model.apply(ev)) ctx.queueRender();
  };
  view.onTopicReset = (t) => {
    if (t === 'asks') { ctx.store.seen.delete(t); view.list.clear(); loadList(); }
    else if (view.model && t === topic()) { const id = view.model.id; fresh(id); loadDetail(view.model); }
  };
  view.onTopicError = (t, err) => {
    if (t === 'asks') { listError = ctx.errorText(err); ctx.queueRender(); }
    else if (view.model && t === topic()) { loadError = errorText(err); ctx.queueRender(); }
  };

  // ---- commands ----

  async function submit() {
    if (busy || !ctx.conn) return;
    const error = $('ask-form-error');
    const question = $('ask-question').value.trim();
    const source = $('ask-source').value;
    if (!question) { error.textContent = 'Type a question.'; $('ask-question').focus(); return; }
    if (question.length > QUESTION_LIMIT) { error.textContent = `At most ${QUESTION_LIMIT} characters.`; return; }
    busy = true;
    $('ask-submit').disabled = true;
    error.textContent = '';
    $('ask-form-status').textContent = 'Sending…';
    try {
      const msg = { type: 'ask', question };
      if (source) msg.source = source;
      const ack = await ctx.conn.command(msg);
      $('ask-question').value = '';
      if (typeof ack.ask === 'string') ctx.go('ask-detail', { id: ack.ask });
    } catch (err) {
      // The server's own words say what to change (an unknown source and the configured ones, a too long question).
      error.textContent = err?.code === 'invalid_message' && err.message ? `The server refused the question: ${err.message}` : errorText(err);
    } finally {
      busy = false;
      $('ask-submit').disabled = false;
      $('ask-form-status').textContent = '';
    }
  }

  async function mark(correct) {
    const model = view.model;
    if (marking || !model || !ctx.conn) return;
    const comment = correct ? '' : $('ask-mark-comment').value.trim();
    if (comment.length > COMMENT_LIMIT) { $('ask-mark-message').textContent = `At most ${COMMENT_LIMIT} characters.`; return; }
    marking = true;
    $('ask-mark-message').textContent = 'Sending…';
    try {
      const msg = { type: 'mark_answer', ask: model.id, correct };
      if (comment) msg.comment = comment;
      await ctx.conn.command(msg);
      marks.set(model.id, { correct, comment });
      closeMarkForm();
      $('ask-mark-comment').value = '';
      $('ask-mark-message').textContent = correct
        ? 'Marked correct: Medic offers this question and its SQL as an example for similar questions.'
        : 'Marked wrong: Medic remembers the comment for similar questions.';
    } catch (err) {
      $('ask-mark-message').textContent = errorText(err);
    } finally {
      marking = false;
      ctx.queueRender();
    }
  }

  function closeMarkForm() {
    $('ask-mark-form').hidden = true;
    $('ask-mark-wrong').setAttribute('aria-expanded', 'false');
  }

  $('ask-form').addEventListener('submit', (e) => { e.preventDefault(); submit(); });
  $('ask-question').addEventListener('keydown', (e) => {
    // Enter asks; Shift+Enter makes a new line.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  $('ask-source').addEventListener('change', () => ctx.queueRender());
  $('ask-mark-correct').addEventListener('click', () => mark(true));
  $('ask-mark-wrong').addEventListener('click', () => {
    const form = $('ask-mark-form');
    form.hidden = !form.hidden;
    $('ask-mark-wrong').setAttribute('aria-expanded', String(!form.hidden));
    if (!form.hidden) $('ask-mark-comment').focus();
  });
  $('ask-mark-form').addEventListener('submit', (e) => { e.preventDefault(); mark(false); });
  $('ask-examples').replaceChildren(el('span', { class: 'muted small', text: 'Try:' }), ...EXAMPLES.map((q) => el('button', {
    type: 'button', class: 'button secondary small', dataset: { testid: 'ask-example' }, text: q,
    onclick: () => { $('ask-question').value = q; $('ask-question').focus(); },
  })));

  // ---- rendering ----

  function renderSourceInfo() {
    const chosen = sources?.find((s) => s.name === $('ask-source').value);
    const tables = Array.isArray(chosen?.tables) ? chosen.tables : [];
    $('ask-source-info').textContent = sourcesError || (chosen
      ? (tables.length ? `Tables: ${tables.slice(0, 8).map((t) => `${clip(String(t?.name ?? '?'), 40)}${typeof t?.row_estimate === 'number' ? ` (≈${t.row_estimate.toLocaleString('en-US')} rows)` : ''}`).join(', ')}${tables.length > 8 ? ', …' : ''}` : '')
      : (sources && sources.length === 0 ? 'No source is configured.' : ''));
    // The demo's questions when the demo's users database is chosen.
    $('ask-examples').hidden = chosen?.name !== 'users';
  }

  function renderStep(step) {
    const parts = [el('h4', { text: step.round > 0 ? `Round ${step.round}` : 'Working' })];
    if (step.thinking) parts.push(el('div', { class: 'ask-thinking', dataset: { testid: 'ask-thinking' }, text: thinkingText(step.thinking) }));
    for (const tool of step.tools) {
      let input = '';
      try { input = tool.input && Object.keys(tool.input).length ? ` ${JSON.stringify(tool.input)}` : ''; } catch { input = ''; }
      parts.push(el('p', { class: 'ask-tool', dataset: { testid: 'ask-tool' }, text: `Tool: ${clip(tool.name, 60)}${clip(input, 300)}` }));
    }
    for (const q of step.queries) {
      const box = el('div', { class: 'ask-query', dataset: { testid: 'ask-query', state: q.refusal ? 'refused' : q.result ? 'result' : 'running' } },
        el('pre', { class: 'ask-sql' }, el('code', { dataset: { testid: 'ask-query-sql' }, text: q.sql })));
      if (q.refusal) {
        box.append(el('p', { class: 'ask-refused', dataset: { testid: 'ask-refused' },
          text: `Refused${q.refusal.code ? ` (${q.refusal.code})` : ''}: ${q.refusal.reason}` }));
      } else if (q.result) {
        const r = q.result;
        const count = Number.isInteger(r.row_count) ? r.row_count : (Array.isArray(r.rows) ? r.rows.length : 0);
        const masked = Array.isArray(r.masked) && r.masked.length ? ` · masked: ${r.masked.map((m) => clip(String(m), 40)).join(', ')}` : '';
        box.append(el('p', { class: 'ask-result-meta', dataset: { testid: 'ask-result-meta' },
          text: `${count.toLocaleString('en-US')} row${count === 1 ? '' : 's'}${r.truncated ? ' (truncated)' : ''}${typeof r.duration_ms === 'number' ? ` in ${r.duration_ms} ms` : ''}${masked}` }));
        box.append(...renderTable(tableModel(r.columns, r.rows, { rowLimit: STEP_ROWS, rowCount: count }), 'ask-result-table'));
      } else {
        box.append(el('p', { class: 'ask-result-meta', text: 'Running…' }));
      }
      parts.push(box);
    }
    return el('li', { class: 'ask-step card', dataset: { testid: 'ask-step', round: step.round } }, parts);
  }

  function renderAnswer(m) {
    const a = m.answer;
    $('ask-answer').hidden = !a;
    if (!a) return;
    const hasValue = Object.prototype.hasOwnProperty.call(a, 'value') && a.value !== undefined;
    $('ask-answer-value').hidden = !hasValue;
    $('ask-answer-value').textContent = hasValue ? formatValue(a.value) : '';
    $('ask-answer-text').textContent = typeof a.text === 'string' ? a.text : '';
    $('ask-answer-sql').textContent = typeof a.sql === 'string' ? a.sql : '';
    const count = Number.isInteger(a.row_count) ? a.row_count : (Array.isArray(a.rows) ? a.rows.length : 0);
    $('ask-answer-count').textContent = `${count.toLocaleString('en-US')} row${count === 1 ? '' : 's'}${a.truncated ? ' (truncated by the row cap)' : ''}`;
    const chart = chartModel(a);
    $('ask-answer-chart').hidden = !chart;
    $('ask-answer-chart').replaceChildren(...(chart ? renderChart(chart) : []));
    // A single value needs no table; anything else shows its rows.
    const table = hasValue && Array.isArray(a.columns) && a.columns.length === 1 ? null : tableModel(a.columns, a.rows, { rowLimit: ANSWER_ROWS, rowCount: count });
    $('ask-answer-table').replaceChildren(...(table ? renderTable(table, 'ask-answer-rows') : []));
  }

  function renderCurrent() {
    const m = view.model;
    $('ask-current').hidden = !m;
    if (!m) return;
    $('ask-current-question').textContent = m.question || m.id;
    const status = $('ask-current-status');
    status.textContent = m.status.replace(/_/g, ' ');
    status.className = `badge status-${m.status.replace(/[^a-z_]/g, '')}${m.status === 'thinking' ? ' busy' : ''}`;
    status.dataset.status = m.status;
    const when = m.createdAt ? ` · ${formatTime(m.createdAt)}` : '';
    $('ask-current-meta').textContent = `${m.source ? `Source ${m.source}` : ''}${m.author ? ` · asked by ${m.author}` : ''}${when}`;
    $('ask-load-error').textContent = loadError;
    $('ask-steps-heading').hidden = m.rounds.size === 0;
    $('ask-steps').replaceChildren(...m.steps().map(renderStep));
    const failed = m.failure ?? (m.status === 'failed' ? (m.reason ?? 'The ask failed.') : null);
    $('ask-failed').hidden = !failed;
    $('ask-failed').textContent = failed ? `No answer: ${failed}` : '';
    renderAnswer(m);
    const known = marks.get(m.id) ?? m.mark;
    const perms = askPermissions(ctx.me, m);
    $('ask-mark').hidden = !perms.canMark;
    if (known && !$('ask-mark-message').textContent) $('ask-mark-message').textContent = known.correct ? 'Marked correct.' : `Marked wrong${known.comment ? `: ${known.comment}` : '.'}`;
  }

  function renderList() {
    const asks = view.list.sorted();
    const openId = view.model?.id;
    $('ask-list').replaceChildren(...asks.map((a) => {
      let link = null;
      try { link = ctx.href('ask-detail', { id: a.id }); } catch { /* not an id: shown without a link */ }
      const question = clip(typeof a.question === 'string' ? a.question : a.id, 160);
      const status = typeof a.status === 'string' ? a.status : 'unknown';
      return el('li', { class: a.id === openId ? 'open' : undefined, dataset: { testid: 'ask-item', id: a.id, status } },
        link ? el('a', { href: link, 'aria-current': a.id === openId ? 'true' : undefined, dataset: { testid: 'ask-item-question' }, text: question }) : question,
        el('div', { class: 'muted' },
          el('span', { class: `badge status-${status.replace(/[^a-z_]/g, '')}`, dataset: { testid: 'ask-item-status' }, text: status }),
          ` ${typeof a.source === 'string' ? a.source : ''}${typeof a.author === 'string' ? ` · ${a.author}` : ''}${a.created_at ? ` · ${formatTime(a.created_at)}` : ''}`));
    }));
    $('ask-count').textContent = asks.length ? `(${asks.length})` : '';
    $('asks-empty').hidden = asks.length > 0;
    $('asks-error').textContent = listError;
  }

  view.render = () => {
    document.title = 'Ask — Medic';
    const perms = askPermissions(ctx.me, view.model);
    $('ask-form').hidden = !perms.canAsk;
    renderSourceInfo();
    renderCurrent();
    renderList();
  };

  return view;
}
