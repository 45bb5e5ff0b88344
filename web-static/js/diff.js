// diff.js: a line diff (Myers, "An O(ND) Difference Algorithm", 1986) and unified-diff hunks for the fix view.

/**
 * Splits file content into lines. A trailing newline does not make an extra empty line,
 * so "a\nb\n" and "a\nb" both have two lines (the diff says nothing about the final newline).
 * @param {string|null|undefined} text
 * @returns {string[]}
 */
export function splitLines(text) {
  if (text === null || text === undefined || text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/**
 * Computes an edit script turning `a` into `b`, as a list of operations
 * `{op: ' ' | '-' | '+', text, oldNo, newNo}` (line numbers are 1-based; absent on the side
 * the line does not exist on).
 *
 * Common prefix and suffix are trimmed first (fix diffs are usually a few lines in a large
 * file). The middle uses Myers' greedy algorithm; when the edit distance exceeds `maxEdits`
 * the middle is reported as "all removed, all added", which is correct if not minimal and
 * keeps the page responsive on pathological inputs.
 * @param {string[]} a old lines
 * @param {string[]} b new lines
 * @param {number} [maxEdits=4000]
 */
export function diffLines(a, b, maxEdits = 4000) {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length, endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }

  const ops = [];
  for (let i = 0; i < start; i++) ops.push({ op: ' ', text: a[i], oldNo: i + 1, newNo: i + 1 });
  const middle = myers(a.slice(start, endA), b.slice(start, endB), maxEdits);
  let oldNo = start, newNo = start;
  for (const m of middle) {
    if (m.op === ' ') ops.push({ op: ' ', text: m.text, oldNo: ++oldNo, newNo: ++newNo });
    else if (m.op === '-') ops.push({ op: '-', text: m.text, oldNo: ++oldNo });
    else ops.push({ op: '+', text: m.text, newNo: ++newNo });
  }
  for (let i = endA; i < a.length; i++) ops.push({ op: ' ', text: a[i], oldNo: ++oldNo, newNo: ++newNo });
  return ops;
}

/** Myers' forward greedy search with a saved trace for backtracking. */
function myers(a, b, maxEdits) {
  const n = a.length, m = b.length;
  if (n === 0) return b.map((text) => ({ op: '+', text }));
  if (m === 0) return a.map((text) => ({ op: '-', text }));
  const max = Math.min(n + m, maxEdits);
  const offset = max + 1;
  let v = new Int32Array(2 * max + 3);
  const trace = [];
  for (let d = 0; d <= max; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      // Move down (insertion) when on the lower diagonal edge or when the diagonal above got further.
      let x = (k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1]))
        ? v[offset + k + 1]
        : v[offset + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) { x++; y++; }
      v[offset + k] = x;
      if (x >= n && y >= m) return backtrack(trace, v, a, b, d, offset);
    }
  }
  // Too many edits: give up on minimality.
  return [...a.map((text) => ({ op: '-', text })), ...b.map((text) => ({ op: '+', text }))];
}

function backtrack(trace, lastV, a, b, dFinal, offset) {
  const out = [];
  let x = a.length, y = b.length;
  for (let d = dFinal; d > 0; d--) {
    const v = trace[d];
    const k = x - y;
    const down = (k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1]));
    const prevK = down ? k + 1 : k - 1;
    const prevX = v[offset + prevK];
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) { out.push({ op: ' ', text: a[x - 1] }); x--; y--; }
    if (down) { out.push({ op: '+', text: b[y - 1] }); y--; }
    else { out.push({ op: '-', text: a[x - 1] }); x--; }
  }
  while (x > 0 && y > 0) { out.push({ op: ' ', text: a[x - 1] }); x--; y--; }
  return out.reverse();
}

/**
 * Groups an edit script into unified-diff hunks with `context` unchanged lines around each
 * change (like `diff -u`). Each hunk is `{oldStart, oldLines, newStart, newLines, lines}`.
 * @param {ReturnType<typeof diffLines>} ops
 * @param {number} [context=3]
 */
export function hunks(ops, context = 3) {
  const changed = [];
  ops.forEach((o, i) => { if (o.op !== ' ') changed.push(i); });
  if (changed.length === 0) return [];
  const result = [];
  let from = Math.max(0, changed[0] - context);
  let to = Math.min(ops.length - 1, changed[0] + context);
  for (const i of changed.slice(1)) {
    if (i - context <= to + 1) to = Math.min(ops.length - 1, i + context);
    else { result.push(makeHunk(ops, from, to)); from = i - context; to = Math.min(ops.length - 1, i + context); }
  }
  result.push(makeHunk(ops, from, to));
  return result;
}

function makeHunk(ops, from, to) {
  const lines = ops.slice(from, to + 1);
  let oldStart = 0, newStart = 0, oldLines = 0, newLines = 0;
  for (const l of lines) {
    if (l.oldNo !== undefined) { if (!oldStart) oldStart = l.oldNo; oldLines++; }
    if (l.newNo !== undefined) { if (!newStart) newStart = l.newNo; newLines++; }
  }
  // An empty side starts at the line before the hunk, as in `diff -u` (`@@ -0,0 +1,3 @@`).
  if (!oldStart) oldStart = previousNo(ops, from, 'oldNo');
  if (!newStart) newStart = previousNo(ops, from, 'newNo');
  return { oldStart, oldLines, newStart, newLines, lines };
}

function previousNo(ops, from, key) {
  for (let i = from - 1; i >= 0; i--) if (ops[i][key] !== undefined) return ops[i][key];
  return 0;
}

/**
 * The diff of one change of a revision against the file's previous content.
 * @param {{path: string, action: string, content?: string}} change
 * @param {string|null|undefined} before the file's content before this revision; `undefined` when unknown
 * @returns {{kind: 'create'|'modify'|'delete'|'unknown-base', hunks: ReturnType<typeof hunks>, added: number, removed: number}}
 */
export function diffChange(change, before) {
  let oldLines, newLines, kind = change.action;
  if (change.action === 'create') { oldLines = []; newLines = splitLines(change.content); }
  else if (change.action === 'delete') { oldLines = splitLines(before ?? ''); newLines = []; }
  else if (before === undefined || before === null) {
    // The first revision modifies a file whose original content never went over the wire:
    // show its new content whole, as context, rather than inventing a diff.
    kind = 'unknown-base';
    const lines = splitLines(change.content).map((text, i) => ({ op: ' ', text, oldNo: undefined, newNo: i + 1 }));
    return { kind, hunks: lines.length ? [{ oldStart: 0, oldLines: 0, newStart: 1, newLines: lines.length, lines }] : [], added: 0, removed: 0 };
  } else { oldLines = splitLines(before); newLines = splitLines(change.content); }
  const ops = diffLines(oldLines, newLines);
  let added = 0, removed = 0;
  for (const o of ops) { if (o.op === '+') added++; else if (o.op === '-') removed++; }
  // Created and deleted files show every line; modified files show hunks with context.
  const hs = (kind === 'modify') ? hunks(ops) : (ops.length ? [makeHunk(ops, 0, ops.length - 1)] : []);
  return { kind, hunks: hs, added, removed };
}
