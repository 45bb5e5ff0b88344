// router.js: hash routes — turns the fragment into one registered route (or "not found") and moves through history.
//
// Pure apart from `HashHistory`: `Router.match` takes a hash string, so node tests check the parsing. A route
// parameter is accepted only if it matches its pattern (ids: letters, digits, `_`, `-`, at most 64); anything
// else is "not found", so a hostile fragment never reaches a view, a topic name or a URL built from it.

/** What an id parameter may look like: the server's ids (`p_…`) and nothing that needs escaping anywhere. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Longer fragments are refused before any parsing (a pasted megabyte is not a route). */
export const MAX_HASH_LENGTH = 2048;

/**
 * The fragment's route path as segments: `#/proposals/p_1` → ['proposals', 'p_1']. The older query style
 * `#p=<id>` (the links the page has always written, and still writes for proposals) reads as
 * ['proposals', id]; a fragment holding only other parameters (`#token=…` before it is taken) is the home
 * route, []. Returns null for what is not a path at all (too long, undecodable).
 */
export function hashSegments(hash) {
  const raw = String(hash ?? '').replace(/^#/, '');
  if (raw.length > MAX_HASH_LENGTH) return null;
  if (raw.startsWith('/')) {
    const parts = raw.split('/').filter((s) => s !== '');
    try {
      return parts.map((s) => decodeURIComponent(s));
    } catch {
      return null;   // a malformed %-escape
    }
  }
  const p = new URLSearchParams(raw).get('p');
  return p === null ? [] : ['proposals', p];
}

/** One pattern segment: a literal, or `:name` (an id). */
function compile(pattern) {
  return pattern.split('/').filter((s) => s !== '').map((s) => (s.startsWith(':') ? { param: s.slice(1) } : { literal: s }));
}

/**
 * The registry of routes. Each view module declares its routes (`{name, pattern, href?}`) and the app adds
 * them here; nothing else knows another view's routes (a link is `router.href(name, params)`).
 */
export class Router {
  constructor() {
    this.routes = [];
    this.byName = new Map();
  }

  /** Registers `{name, pattern: '/proposals/:id', href?(params)}`; the first registered match wins. */
  add(route) {
    if (this.byName.has(route.name)) throw new Error(`route ${route.name} registered twice`);
    const entry = { ...route, segments: compile(route.pattern) };
    this.routes.push(entry);
    this.byName.set(route.name, entry);
    return this;
  }

  /**
   * The route for `hash`: `{name, params}`, or `{name: 'not-found', params: {}, reason}` where reason is
   * 'unknown' (no route has this shape) or 'invalid' (the shape fits but a parameter is not an id).
   */
  match(hash) {
    const segments = hashSegments(hash);
    if (segments === null) return { name: 'not-found', params: {}, reason: 'invalid' };
    let invalid = false;
    for (const route of this.routes) {
      if (route.segments.length !== segments.length) continue;
      const params = {};
      let fits = true, bad = false;
      route.segments.forEach((seg, i) => {
        if (seg.literal !== undefined) { if (seg.literal !== segments[i]) fits = false; }
        else if (ID_PATTERN.test(segments[i])) params[seg.param] = segments[i];
        else bad = true;
      });
      if (!fits) continue;
      if (bad) { invalid = true; continue; }
      return { name: route.name, params };
    }
    return { name: 'not-found', params: {}, reason: invalid ? 'invalid' : 'unknown' };
  }

  /** The fragment for a route (`#/proposals`); a route may write its own form (`href(params)`). */
  href(name, params = {}) {
    const route = this.byName.get(name);
    if (!route) throw new Error(`no route ${name}`);
    for (const seg of route.segments) {
      if (seg.param && !ID_PATTERN.test(params[seg.param] ?? '')) throw new Error(`bad ${seg.param} for ${name}`);
    }
    if (route.href) return route.href(params);
    return '#/' + route.segments.map((seg) => (seg.literal ?? params[seg.param])).join('/');
  }
}

/** Two matches name the same place (no re-render, no re-subscribe when only the spelling changed). */
export function sameRoute(a, b) {
  return !!a && !!b && a.name === b.name && JSON.stringify(a.params) === JSON.stringify(b.params);
}

/**
 * The browser side: follows the location's fragment (typed, pasted, back/forward) and writes it (push or
 * replace). `onRoute(match, {replace})` runs once per change of place.
 */
export class HashHistory {
  constructor(router, onRoute, win = window) {
    this.router = router;
    this.onRoute = onRoute;
    this.win = win;
    this.current = null;
  }

  /** Re-reads the location (after a hashchange or popstate, or once at start). */
  sync({ force = false } = {}) {
    const match = this.router.match(this.win.location.hash);
    if (!force && sameRoute(match, this.current)) return this.current;
    this.current = match;
    this.onRoute(match, { replace: false, fromLocation: true });
    return match;
  }

  /** Goes to `href`: a new history entry, or (replace) in place — the page opening something by itself. */
  go(href, { replace = false } = {}) {
    const match = this.router.match(href);
    if (sameRoute(match, this.current)) return;   // already there (perhaps spelled the other way): no new entry
    const { history, location } = this.win;
    if (location.hash !== href) history[replace ? 'replaceState' : 'pushState'](null, '', href);
    this.current = match;
    this.onRoute(match, { replace, fromLocation: false });
  }
}
