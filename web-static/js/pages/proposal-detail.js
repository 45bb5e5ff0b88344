// pages/proposal-detail.js: the open proposal (`#/proposals/<id>`, also `#p=<id>`) — header, test console,
// timeline with diffs, the review panel and its commands, comments, and the rollback/withdraw confirmation.

import { ProposalModel, reviewPermissions, humanStatus, statusSentence } from '../store.js';
import { ConsoleView, TimelineView, renderCommitted, renderPresence, statusBadge, el } from '../views.js';

/** The route this view answers. Its links keep the `#p=<id>` form every earlier link (and test) uses. */
export const ROUTES = [{ name: 'proposal', pattern: '/proposals/:id', href: ({ id }) => `#p=${id}` }];

/**
 * The detail view over the shared context `ctx` (connection, identity, event store, router). One instance per
 * page; it holds at most one open proposal, subscribed while its route is active.
 */
export function createProposalDetail(ctx) {
  const { $ } = ctx;
  const view = {
    name: 'proposal-detail', routes: ROUTES, section: 'proposal',
    model: null,
    busy: false,   // a review command is in flight
    /**
     * The outcome of the last command, bound to the state it speaks about: `{text, kind, proposal, revision,
     * statuses}`. It is shown only while the open proposal is that one, at that revision, in one of those
     * statuses; the first render after the state moves on drops it (no "Rollback requested." after rolled_back).
     */
    notice: null,
    noticeLog: [],   // every notice shown, for the browser tests (medicPage.notices())
  };
  const timeline = new TimelineView($('timeline'));
  const consoleView = new ConsoleView($('console'), $('console-follow'), $('console-jump'));
  /** Per open proposal's model: the revisions whose base was asked for (a reopened proposal asks again). */
  const fetchedBases = new WeakMap();

  // ---- open / close ----

  function openProposal(id) {
    if (view.model?.id === id) return;
    closeProposal();
    resetModel(id);
    ctx.conn?.subscribe(`proposal:${id}`);
  }

  function closeProposal() {
    if (view.model) ctx.conn?.unsubscribe(`proposal:${view.model.id}`);
    view.model = null;
    ctx.queueRender();
  }

  /** A fresh model and empty views for `id` (also after the server reset the topic). */
  function resetModel(id) {
    ctx.store.seen.delete(`proposal:${id}`);
    view.model = new ProposalModel(id);
    timeline.reset([]);
    consoleView.reset([]);
    $('p-error').textContent = '';
    view.notice = null;
    $('review-message').textContent = '';
    $('comment-message').textContent = '';
    $('review-comment').value = '';
    ctx.queueRender();
  }

  view.enter = (match) => openProposal(match.params.id);
  view.leave = () => closeProposal();
  /** A new connection (or sign-out) starts from nothing; `enter` opens the route's proposal again. */
  view.reset = () => { view.model = null; };
  view.openId = () => view.model?.id ?? null;

  // ---- events ----

  const mine = (topic) => !!view.model && topic === `proposal:${view.model.id}`;

  view.onEvent = (ev) => {
    const model = view.model;
    if (!model || !mine(ev.topic)) return;
    applyChanges(model.apply(ev));
    if (ev.kind === 'sandbox_ready' && ev.data?.base_commit) fetchBase(model, ev.data.revision);
    ctx.queueRender();
  };
  view.onPresence = (p) => {
    if (mine(p.topic)) { view.model.setPresence(p.members); ctx.queueRender(); }
  };
  view.onTopicReset = (topic) => { if (mine(topic)) resetModel(view.model.id); };
  view.onTopicError = (topic, err) => { if (mine(topic)) $('p-error').textContent = ctx.errorText(err); };

  function applyChanges(changes) {
    for (const change of changes) {
      if (change.type === 'append') timeline.append(change.entry);
      else if (change.type === 'update') timeline.update(change.entry);
      else if (change.type === 'console') consoleView.append(change.lines);
    }
  }

  /**
   * Fetches the repository's files at a revision's base commit (GET …/revisions/{n}/base) so that modified files
   * show real diffs and the review panel can show what will be committed. Once per revision and proposal.
   */
  async function fetchBase(model, revision) {
    const requested = fetchedBases.get(model) ?? new Set();
    fetchedBases.set(model, requested);
    if (!revision || requested.has(revision)) return;
    requested.add(revision);
    try {
      const response = await fetch(`/api/v1/proposals/${encodeURIComponent(model.id)}/revisions/${revision}/base`, {
        headers: { Authorization: `Bearer ${ctx.token()}` },
      });
      if (!response.ok) { requested.delete(revision); return; }
      const base = await response.json();
      if (view.model !== model) return;  // another proposal is open now
      applyChanges(model.setBase(revision, base));
      ctx.queueRender();
    } catch {
      requested.delete(revision);  // tried again with the next sandbox_ready or reopen
    }
  }

  // ---- rendering ----

  view.render = () => {
    const m = view.model;
    if (!m) return;
    const summary = ctx.store.list.byId.get(m.id);
    $('p-title').textContent = m.info?.title ?? summary?.title ?? m.id;
    const badge = statusBadge(m.status ?? summary?.status, 'proposal-status');
    badge.id = 'p-status';
    $('p-status').replaceWith(badge);
    const fixing = m.status === 'fixing';
    const attemptEl = $('p-attempt');
    attemptEl.textContent = `Attempt ${m.attempt}/${m.maxAttemptsShown}`;
    attemptEl.classList.toggle('active', fixing);
    attemptEl.hidden = m.attempt === 0 && !fixing;
    const meta = [m.id, m.info?.author && `by ${m.info.author}`, (m.info?.repo ?? summary?.repo) && `repo ${m.info?.repo ?? summary?.repo}`, m.revision && `revision ${m.revision}`].filter(Boolean);
    $('p-meta').textContent = meta.join(' · ');
    // A proposal Medic made for a bug report links back to it (the id is checked before it becomes a link).
    const bug = m.info?.bug;
    if (typeof bug === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(bug)) {
      const link = document.createElement('a');
      link.href = `#/bugs/${bug}`;
      link.textContent = `fixes bug ${bug}`;
      link.dataset.testid = 'proposal-bug';
      $('p-meta').append(' · ', link);
    }
    $('p-description').textContent = m.info?.description ?? '';
    renderPresence($('presence'), m.presence, ctx.me);
    timeline.collapseOlderThan(m.revision);
    document.title = `${humanStatus(m.status)} · ${m.info?.title ?? m.id} — Medic`;
    const announcement = `${m.info?.title ?? m.id}: ${humanStatus(m.status)}${fixing ? `, attempt ${m.attempt} of ${m.maxAttemptsShown}` : ''}`;
    if ($('announce').textContent !== announcement) $('announce').textContent = announcement;
    renderReviewPanel(m);
  };

  /** True while `notice` still speaks about the open proposal's current state. */
  function noticeHolds(notice, m) {
    return !!(notice && m && notice.proposal === m.id && notice.revision === m.revision && notice.statuses.includes(m.status));
  }

  function renderReviewPanel(m) {
    const live = ctx.connState.state === 'live';
    const perms = reviewPermissions({ me: ctx.me, model: m, live });
    const revisionLine = $('review-revision');
    revisionLine.textContent = m.revision ? `Revision ${m.revision}` : '';
    revisionLine.dataset.revision = String(m.revision || '');
    if (m.revision) revisionLine.append(' · ', el('span', { class: 'muted small', text: 'your review applies to this revision' }));

    const reviews = m.currentReviews();
    // The quorum is known from review events; before the first one, Medic's list summary may carry it.
    const summaryQuorum = ctx.store.list.byId.get(m.id)?.quorum;
    const quorum = reviews.quorum ?? m.quorum ?? (typeof summaryQuorum === 'number' ? summaryQuorum : null);
    const count = reviews.approvals.length;
    $('quorum-text').textContent = quorum
      ? `${count} of ${quorum} approval${quorum === 1 ? '' : 's'}`
      : (count ? `${count} approval${count === 1 ? '' : 's'}` : 'No approvals yet');
    $('quorum-text').dataset.approvals = String(count);
    $('quorum-text').dataset.quorum = String(quorum ?? '');
    $('quorum-fill').style.width = quorum ? `${Math.min(100, (100 * count) / quorum)}%` : '0%';
    $('approvers').replaceChildren(...reviews.approvals.map((p) => el('li', { class: 'approver', dataset: { testid: 'approver', principal: p } }, '✓ ', p)));

    const disabled = !perms.canReview || view.busy;
    $('btn-approve').disabled = disabled || !perms.canApprove;
    $('btn-reject').disabled = view.busy || !perms.canReject;
    $('btn-request').disabled = disabled;
    $('review-comment').disabled = !perms.canReview && !perms.canReject && !perms.canWithdraw;
    $('btn-withdraw').hidden = !perms.canWithdraw;
    $('btn-withdraw').disabled = view.busy;
    $('review-why').textContent = perms.why || perms.approveWhy;
    $('review-panel').dataset.canReview = String(perms.canReview);
    $('btn-autofix').hidden = !perms.canAutoFix;
    $('btn-autofix').disabled = view.busy;
    $('btn-rollback').hidden = !perms.canRollback;
    $('btn-rollback').disabled = view.busy;
    $('comment-send').disabled = !live;

    $('review-state').textContent = statusSentence(m);
    $('review-state').dataset.status = m.status ?? '';
    if (view.notice && !view.busy && !noticeHolds(view.notice, m)) view.notice = null;
    const message = $('review-message');
    const text = view.busy ? 'Sending…' : (view.notice?.text ?? '');
    if (message.textContent !== text) message.textContent = text;
    message.dataset.kind = view.busy ? 'pending' : (view.notice?.kind ?? '');
    if (rollbackDialog.open && !(confirming === 'withdraw' ? perms.canWithdraw : perms.canRollback)) closeRollbackDialog();
    renderCommitted($('committed-view'), $('committed-summary'), m.committed(m.revision));
  }

  // ---- commands ----

  function setMessage(id, text, kind) {
    const p = $(id);
    p.textContent = text;
    p.dataset.kind = kind;
  }

  /**
   * Shows the outcome of a command until the proposal leaves `statuses` (default: the status it is in now)
   * or its revision changes.
   */
  function setNotice(text, kind, statuses) {
    const m = view.model;
    view.notice = m ? { text, kind, proposal: m.id, revision: m.revision, statuses: statuses ?? [m.status] } : null;
    if (m) view.noticeLog.push(text);
    if (m) renderReviewPanel(m);
  }

  /**
   * Sends a review/auto-fix/rollback command and reports its outcome in the panel. `success(ack)` returns
   * `[text, statuses]`: the message and the statuses it stays true in.
   */
  async function runCommand(msg, success) {
    if (view.busy || !ctx.conn) return;
    const m = view.model;
    view.busy = true;
    renderReviewPanel(m);
    let outcome;
    try {
      const ack = await ctx.conn.command(msg);
      outcome = [...success(ack), 'ok'];
      if (msg.type !== 'auto_fix' && msg.type !== 'rollback') $('review-comment').value = '';
    } catch (err) {
      outcome = [ctx.errorText(err), undefined, 'error'];
      if (err.code === 'stale_revision') $('review-revision').focus?.();
    } finally {
      view.busy = false;
    }
    if (view.model !== m) return;   // another proposal is open now: the outcome is not about it
    const [text, statuses, kind] = outcome;
    setNotice(text, kind, statuses);
  }

  function review(verdict) {
    const m = view.model;
    if (!m) return;
    // Bind the review to the revision on screen, not whatever the model may hold a moment later.
    const revision = Number($('review-revision').dataset.revision);
    const comment = $('review-comment').value.trim();
    if (verdict !== 'approve' && !comment) {
      setNotice(verdict === 'reject' ? 'Write a comment saying why you reject it.' : 'Write a comment saying what should change.', 'error');
      $('review-comment').focus();
      return;
    }
    const msg = { type: verdict, proposal: m.id, revision };
    if (comment) msg.comment = comment;
    runCommand(msg, (ack) => {
      if (verdict === 'approve') {
        // The review event precedes the ack, so the model already knows the approvals if the ack omits them.
        const known = view.model?.id === m.id ? m.reviews.get(revision) : undefined;
        const count = (ack.approvals ?? known?.approvals ?? []).length;
        const q = ack.quorum ?? known?.quorum;
        const progress = q ? ` (${count} of ${q})` : '';
        return ack.status === 'approved' || ack.status === 'applying' || ack.status === 'applied'
          ? [`Approved revision ${revision}: quorum reached${progress}, applying.`, ['awaiting_review', 'approved', 'applying']]
          : [`Approved revision ${revision}${progress}.`, ['awaiting_review']];
      }
      return verdict === 'reject'
        ? [`Rejected revision ${revision}.`, ['awaiting_review', 'rejected']]
        : [`Requested changes on revision ${revision}; a new fix attempt follows.`, ['awaiting_review', 'changes_requested', 'analyzing']];
    });
  }

  // ---- rollback / withdraw confirmation ----

  const rollbackDialog = $('confirm-rollback');
  let rollbackOpener = null;
  /** What the confirmation dialog is asking about: 'rollback' or 'withdraw' (one dialog, two questions). */
  let confirming = 'rollback';

  function openRollbackDialog(kind = 'rollback') {
    const m = view.model;
    if (!m || rollbackDialog.open) return;
    confirming = kind;
    const withdraw = kind === 'withdraw';
    $('confirm-rollback-title').textContent = withdraw ? 'Withdraw this proposal?' : 'Roll back this change?';
    $('confirm-rollback-text').hidden = withdraw;
    $('confirm-withdraw-text').hidden = !withdraw;
    $('confirm-rollback-ok').textContent = withdraw ? 'Withdraw' : 'Roll back';
    rollbackDialog.querySelector('.muted.small').textContent = withdraw ? 'Enter withdraws · Escape cancels' : 'Enter rolls back · Escape cancels';
    rollbackOpener = document.activeElement;
    $('confirm-rollback-commit').textContent = m.applied?.commit ?? 'the applied commit';
    $('confirm-rollback-repo').textContent = m.info?.repo ?? ctx.store.list.byId.get(m.id)?.repo ?? 'the repository';
    rollbackDialog.showModal();
    $('confirm-rollback-ok').focus();
  }

  function closeRollbackDialog() {
    if (rollbackDialog.open) rollbackDialog.close();
    const back = rollbackOpener;
    rollbackOpener = null;
    // Focus returns to where it was (the Roll back button), or to the panel if that button is gone.
    if (back && back.isConnected && !back.hidden && !back.disabled) back.focus();
    else $('review-heading').focus();
  }

  function confirmRollback() {
    const m = view.model;
    closeRollbackDialog();
    if (!m) return;
    if (confirming === 'withdraw') {
      const reason = $('review-comment').value.trim();
      const msg = { type: 'withdraw', proposal: m.id };
      if (reason) msg.reason = reason;
      runCommand(msg, () => ['Withdrawn.', []]);
      return;
    }
    runCommand({ type: 'rollback', proposal: m.id }, () => ['Rollback requested.', ['applied']]);
  }

  // ---- DOM wiring (once) ----

  $('btn-approve').addEventListener('click', () => review('approve'));
  $('btn-reject').addEventListener('click', () => review('reject'));
  $('btn-request').addEventListener('click', () => review('request_changes'));
  $('btn-autofix').addEventListener('click', () => view.model && runCommand({ type: 'auto_fix', proposal: view.model.id },
    () => ['Auto-fix started: a new attempt is being written.', ['tests_failed', 'analyzing', 'fixing']]));
  $('btn-rollback').addEventListener('click', () => view.model && openRollbackDialog('rollback'));
  $('btn-withdraw').addEventListener('click', () => view.model && openRollbackDialog('withdraw'));
  $('confirm-rollback-cancel').addEventListener('click', () => closeRollbackDialog());
  $('confirm-rollback-ok').addEventListener('click', () => confirmRollback());
  rollbackDialog.addEventListener('cancel', (e) => { e.preventDefault(); closeRollbackDialog(); });   // Escape
  rollbackDialog.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && e.target !== $('confirm-rollback-cancel')) { e.preventDefault(); confirmRollback(); }
    else if (e.key === 'Tab') {
      // Focus stays in the dialog: Tab and Shift+Tab cycle through its buttons.
      const items = [...rollbackDialog.querySelectorAll('button:not([disabled])')];
      const i = items.indexOf(document.activeElement);
      e.preventDefault();
      items[(i + (e.shiftKey ? items.length - 1 : 1)) % items.length]?.focus();
    }
  });
  $('comment-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = $('comment-text').value.trim();
    if (!text || !view.model || !ctx.conn) { setMessage('comment-message', 'Write something first.', 'error'); return; }
    setMessage('comment-message', 'Posting…', 'pending');
    try {
      await ctx.conn.command({ type: 'comment', proposal: view.model.id, text });
      $('comment-text').value = '';
      setMessage('comment-message', 'Comment posted.', 'ok');
    } catch (err) {
      setMessage('comment-message', ctx.errorText(err), 'error');
    }
  });

  return view;
}
