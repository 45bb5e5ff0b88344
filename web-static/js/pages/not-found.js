// pages/not-found.js: what an address no view answers shows — said plainly, with the way back. The address
// itself is never echoed: it may be hostile (`#/proposals/<img …>`), and the sentence is enough.

export const ROUTES = [];

export function createNotFound(ctx) {
  const { $ } = ctx;
  const view = { name: 'not-found', routes: ROUTES, section: 'not-found', reason: 'unknown' };
  view.enter = (match) => { view.reason = match.reason ?? 'unknown'; };
  view.leave = () => {};
  view.reset = () => {};
  view.render = () => {
    document.title = 'Not found — Medic';
    $('not-found-text').textContent = view.reason === 'invalid'
      ? 'This address names something that cannot exist: an id is letters, digits, “_” and “-”, at most 64 of them.'
      : 'Nothing lives at this address. It may be mistyped, or made for a newer version of Medic.';
    $('not-found-text').dataset.reason = view.reason;
    $('not-found-home').href = ctx.href('proposals');
  };
  return view;
}
