// pages/code-search.js: the codebase navigator — a search box over the configured repositories (search_code
// on the shared connection), results with why they matched, and a code view of the chosen file with line
// numbers and the hit highlighted; the repository's index progress shows as a bar (topic repo:<name>).
// Everything from the server is shown with textContent: file text and snippets are repository content.

export const ROUTES = [{ name: 'search', pattern: '/search' }];

export function createCodeSearch(ctx) {
  const { $ } = ctx;
  const view = { name: 'code-search', routes: ROUTES, section: 'code-search' };
  let repos = [];
  let subscribed = null;
  let results = null;
  let busy = false;

  const auth = () => ({ headers: { Authorization: `Bearer ${ctx.token()}` } });

  async function loadRepos() {
    try {
      const response = await fetch('/api/v1/repos', auth());
      if (!response.ok) return;
      repos = (await response.json()).repos ?? [];
      const select = $('search-repo');
      select.replaceChildren(...repos.map((name) => Object.assign(document.createElement('option'), { value: name, textContent: name })));
      follow(select.value);
    } catch { /* the form says there is no repository */ }
    ctx.queueRender();
  }

  /** Follows the chosen repository's topic for index progress. */
  function follow(repo) {
    if (!ctx.conn || !repo || subscribed === `repo:${repo}`) return;
    if (subscribed) ctx.conn.unsubscribe(subscribed);
    subscribed = `repo:${repo}`;
    ctx.conn.subscribe(subscribed);
  }

  view.enter = () => {
    $('search-form').onsubmit = (e) => { e.preventDefault(); search(); };
    $('search-repo').onchange = () => follow($('search-repo').value);
    loadRepos();
    setTimeout(() => $('search-query').focus(), 0);
  };
  view.leave = () => { if (subscribed && ctx.conn) ctx.conn.unsubscribe(subscribed); subscribed = null; };
  view.reset = () => { results = null; subscribed = null; };

  view.onEvent = (ev) => {
    if (ev.topic !== subscribed) return;
    const bar = $('search-progress');
    if (ev.kind === 'index_progress') {
      bar.hidden = ev.data.phase === 'done';
      bar.max = Math.max(1, ev.data.total);
      bar.value = ev.data.done;
      $('search-index').textContent = ev.data.phase === 'scanning' ? 'Indexing: reading the tree…' : `Indexing: ${ev.data.done} of ${ev.data.total} changed files`;
    } else if (ev.kind === 'indexed') {
      bar.hidden = true;
      $('search-index').textContent = `Index at ${(ev.data.commit ?? 'the working tree').slice(0, 12)}: ${ev.data.files} files, ${ev.data.symbols} symbols`;
    } else if (ev.kind === 'index_failed') {
      bar.hidden = true;
      $('search-index').textContent = `Indexing failed: ${ev.data.reason}`;
    }
  };

  async function search() {
    const query = $('search-query').value.trim();
    const repo = $('search-repo').value;
    if (!query || !repo || busy || !ctx.conn) return;
    busy = true;
    $('search-error').textContent = '';
    try {
      results = await ctx.conn.command({ type: 'search_code', repo, query, mode: $('search-mode').value, limit: 20 });
    } catch (err) {
      results = null;
      $('search-error').textContent = ctx.errorText(err);
    } finally {
      busy = false;
      ctx.queueRender();
    }
  }

  async function openFile(repo, path, line) {
    const response = await fetch(`/api/v1/repos/${encodeURIComponent(repo)}/file?path=${encodeURIComponent(path)}`, auth());
    const body = await response.json().catch(() => ({}));
    const code = $('search-code');
    code.hidden = false;
    $('search-code-path').textContent = response.ok ? `${path}${body.truncated ? ' (first 1 MiB)' : ''}` : path;
    const list = $('search-code-lines');
    if (!response.ok) {
      list.replaceChildren(Object.assign(document.createElement('li'), { textContent: body.message ?? 'cannot read the file' }));
      return;
    }
    const lines = body.text.split('\n');
    list.replaceChildren(...lines.map((text, i) => {
      const li = document.createElement('li');
      li.textContent = text;
      if (i + 1 === line) { li.className = 'hit'; li.dataset.testid = 'search-hit-line'; }
      return li;
    }));
    list.querySelector('.hit')?.scrollIntoView({ block: 'center' });
  }

  view.render = () => {
    document.title = 'Search code — Medic';
    $('search-empty').hidden = repos.length > 0;
    const list = $('search-results');
    if (!results) { list.replaceChildren(); return; }
    $('search-summary').textContent = `${results.results.length} results in ${results.repo} at ${(results.commit ?? 'the working tree').slice(0, 12)} (${results.indexed_files} files indexed)`;
    list.replaceChildren(...results.results.map((hit) => {
      const li = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'link';
      button.dataset.testid = 'search-result';
      const place = hit.path ?? hit.name;
      button.textContent = hit.line ? `${place}:${hit.line}` : place;
      button.onclick = () => openFile(results.repo, hit.path ?? $('search-query').value.trim(), hit.line);
      const detail = document.createElement('span');
      detail.className = 'muted';
      const symbol = hit.symbol ? `${hit.symbol} — ` : '';
      detail.textContent = ` ${symbol}${(hit.why ?? []).join(', ')}${hit.edge ? hit.edge : ''}`;
      li.append(button, detail);
      if (hit.snippet) li.append(Object.assign(document.createElement('div'), { className: 'snippet', textContent: hit.snippet }));
      return li;
    }));
  };
  return view;
}
