// pages/proposal-list.js: the proposals list (the sidebar, shown on every route) and its home route, which
// shows "Nothing open" and opens the demo or the only proposal by itself on a first visit.

import { renderProposalList } from '../views.js';

/** The home route (empty fragment) and `#/proposals` both show the list with nothing open. */
export const ROUTES = [{ name: 'home', pattern: '' }, { name: 'proposals', pattern: '/proposals' }];

export function createProposalList(ctx) {
  const { $ } = ctx;
  const view = { name: 'proposal-list', routes: ROUTES, section: 'placeholder', always: true };

  view.enter = () => {};
  view.leave = () => {};
  view.reset = () => {};

  view.onEvent = (ev) => {
    if (ev.topic !== 'proposals') return;
    if (ctx.store.list.apply(ev)) {
      maybeAutoOpen(ev);
      ctx.queueRender();
    }
  };
  view.onSubscribed = (topic) => { if (topic === 'proposals') maybeAutoOpen(null); };
  view.onTopicReset = (topic) => {
    if (topic !== 'proposals') return;
    ctx.store.seen.delete(topic);
    ctx.store.list.clear();
    ctx.queueRender();
  };

  /**
   * Opens a proposal without being asked when nothing is open and the user has not chosen one: the
   * demo's (filed by `demo-bot`) as soon as it appears, or the only proposal there is — so whoever
   * opens the link `medic serve` printed watches the demo from its first step.
   */
  function maybeAutoOpen(ev) {
    const here = ctx.route();
    if (ctx.store.autoOpenDone || !here || !ROUTES.some((r) => r.name === here.name)) return;
    // "The only one" is known once the list's replay is complete (up to the head the subscription reported).
    const seqs = ctx.store.seen.get('proposals') ?? [];
    const head = ctx.store.proposalsHead;
    const replayed = head !== null && (head === 0 || (seqs.at(-1) ?? 0) >= head);
    const only = replayed && ctx.store.list.byId.size === 1 ? ctx.store.list.byId.keys().next().value : null;
    const demo = ev?.data?.author === 'demo-bot' && ev.data.status === 'proposed' ? ev.data.id : null;
    const id = demo ?? only;
    if (!id) return;
    ctx.store.autoOpenDone = true;
    ctx.go('proposal', { id }, { replace: true });
  }

  /** The sidebar renders on every route; the open proposal (if any) is marked. */
  view.renderAlways = () => {
    const proposals = ctx.store.list.sorted();
    const open = ctx.route()?.name === 'proposal' ? ctx.route().params.id : null;
    renderProposalList($('proposal-list'), proposals, open, (id) => ctx.go('proposal', { id }));
    $('proposal-count').textContent = proposals.length ? `(${proposals.length})` : '';
    $('proposal-list-empty').hidden = proposals.length > 0;
  };
  view.render = () => { document.title = 'Medic — review'; };

  return view;
}
