// instance-view.js: what the views of one workflow instance share (bug, incident) — the instance's topic
// (`<kind>:<id>`, replayed from 0, resumed after a reconnect, replayed afresh when the server resets it), its REST
// detail (read on open, and again shortly after events that change what only the detail carries), and one
// command runner with its message line. The page keeps its own model events, rendering and commands.

/**
 * Wires `view` (enter, leave, onTopicReset, onTopicError) for instances of `kind` and answers the helpers.
 * - `path(id)`: the REST detail's URL; `Model`: the page's model class (`new Model(id)`, `setDetail(body)`).
 * - `messageId`: the element that shows a command's outcome; `errors`: texts by error code (`not_found` used for 404).
 * - `what`: the instance's name in messages ("bug"); `onFresh()` / `onClose()`: the page's own state.
 */
export function instanceView(ctx, view, { kind, path, Model, messageId, errors, what, onFresh = () => {}, onClose = () => {} }) {
  const { $ } = ctx;
  const state = { loadError: '' };
  const topic = () => (view.model ? `${kind}:${view.model.id}` : null);
  const auth = () => ({ headers: { Authorization: `Bearer ${ctx.token()}` } });
  const errorText = (err) => (errors[err?.code] ? `${errors[err.code]}${err.message ? ` (${err.message})` : ''}` : ctx.errorText(err));

  function open(id) {
    if (view.model?.id === id) return;
    close();
    fresh(id);
    ctx.conn?.subscribe(`${kind}:${id}`);
    load(view.model);
  }

  function close() {
    if (view.model) ctx.conn?.unsubscribe(`${kind}:${view.model.id}`);
    view.model = null;
    onClose();
  }

  function fresh(id) {
    ctx.store.seen.delete(`${kind}:${id}`);
    view.model = new Model(id);
    $(messageId).textContent = '';
    state.loadError = '';
    onFresh();
    ctx.queueRender();
  }

  async function load(model) {
    try {
      const response = await fetch(path(model.id), auth());
      const body = await response.json().catch(() => ({}));
      if (view.model !== model) return;
      if (response.status === 404) state.loadError = errors.not_found;
      else if (!response.ok) state.loadError = body?.error?.message ?? `The ${what} could not be read (HTTP ${response.status}).`;
      else { state.loadError = ''; model.setDetail(body); }
    } catch {
      if (view.model === model) state.loadError = `The ${what} could not be read.`;
    }
    ctx.queueRender();
  }

  let reloadTimer = null;
  function reloadSoon() {
    if (reloadTimer) return;
    const model = view.model;
    reloadTimer = setTimeout(() => { reloadTimer = null; if (view.model === model) load(model); }, 400);
  }

  view.enter = (match) => open(match.params.id);
  view.leave = () => close();
  view.onTopicReset = (t) => { if (view.model && t === topic()) { const id = view.model.id; fresh(id); load(view.model); } };
  view.onTopicError = (t, err) => { if (view.model && t === topic()) { state.loadError = errorText(err); ctx.queueRender(); } };

  function setMessage(text, kind) {
    $(messageId).textContent = text;
    $(messageId).dataset.kind = kind;
  }

  /** Sends `msg` (one at a time: `view.busy`); `success(ack)` says what happened, `afterAck(ack, model)` folds it. */
  async function run(msg, success, afterAck = () => {}) {
    if (view.busy || !ctx.conn || !view.model) return;
    const model = view.model;
    view.busy = true;
    setMessage('Sending…', 'pending');
    ctx.queueRender();
    let text, kind;
    try {
      const ack = await ctx.conn.command(msg);
      [text, kind] = [success(ack), 'ok'];
      afterAck(ack, model);
    } catch (err) {
      [text, kind] = [errorText(err), 'error'];
    } finally {
      view.busy = false;
    }
    if (view.model !== model) return;
    view.noticeLog.push(text);
    setMessage(text, kind);
    ctx.queueRender();
  }

  return { state, topic, errorText, reloadSoon, run };
}
