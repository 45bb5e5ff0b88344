// reply.js: reads a fix reply while the model is still writing it — the `explanation` and the
// `changes[].path` values of `{"unfixable": …, "explanation": "…", "changes": [{"path": "…", …}]}`
// — so the page shows prose and file names as they stream instead of raw JSON.
//
// `ReplyReader` is fed the `fix_delta` texts in order (`push`) and never throws. It is a small
// incremental JSON scanner: one pass over each delta, state kept between deltas, so an escape
// (`\"`, `\n`, `\u00e9`, a surrogate pair) split across two deltas decodes the same as whole.
// It is tolerant: text before the first `{` (prose, a Markdown fence) is skipped; characters
// that do not fit JSON are ignored; an unterminated string is shown as far as it has come.
// Only the strings we show are buffered; the (large) file contents are scanned and dropped.

const SIMPLE_ESCAPES = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

export class ReplyReader {
  constructor() {
    /** True once the reply's top-level object has begun (the text looks like the JSON reply). */
    this.started = false;
    /** The explanation decoded so far ('' until its value begins; null when none seen). */
    this.explanation = null;
    /** True once the explanation's closing quote arrived. */
    this.explanationDone = false;
    /** `changes[].path` values, in order; the last may still be growing (see `pathsDone`). */
    this.paths = [];
    this.pathsDone = 0;
    this.unfixable = null;
    /** True once the top-level object closed. */
    this.finished = false;

    // Scanner state.
    this.stack = [];          // frames: {type: 'obj'|'arr', key: string|null, expectKey: bool, index: number}
    this.inString = false;
    this.stringIsKey = false;
    this.target = null;       // where the current string value goes: 'explanation' | 'path' | null
    this.buf = '';            // the current key, or the current value when `target` is set
    this.escape = null;       // null | '\\' | 'u'
    this.hex = '';
    this.scalar = '';         // a number/true/false/null being read (only `unfixable` is kept)
  }

  /** Feeds the next piece of the reply's text. */
  push(text) {
    if (typeof text !== 'string' || this.finished) return this;
    for (let i = 0; i < text.length; i++) this.step(text[i]);
    this.sync();
    return this;
  }

  /** The path of the value that starts now, e.g. ['changes', 0, 'path']. */
  valuePath() {
    return this.stack.map((f) => (f.type === 'obj' ? f.key : f.index));
  }

  step(c) {
    if (this.inString) { this.stringChar(c); return; }
    if (!this.started) {
      if (c === '{') { this.started = true; this.stack.push({ type: 'obj', key: null, expectKey: true, index: 0 }); }
      return;
    }
    const top = this.stack[this.stack.length - 1];
    if (!top) return;
    if (this.scalar && !/[A-Za-z0-9.+-]/.test(c)) this.endScalar();
    if (c === '"') {
      this.inString = true;
      this.escape = null;
      this.buf = '';
      this.stringIsKey = top.type === 'obj' && top.expectKey;
      this.target = this.stringIsKey ? null : this.targetFor(this.valuePath());
      if (this.target === 'explanation') this.explanation = '';
      if (this.target === 'path') this.paths.push('');
      return;
    }
    if (c === '{' || c === '[') {
      if (top.type === 'obj' && top.expectKey) return; // garbage where a key belongs
      this.stack.push({ type: c === '{' ? 'obj' : 'arr', key: null, expectKey: c === '{', index: 0 });
      return;
    }
    if (c === '}' || c === ']') {
      this.stack.pop();
      if (this.stack.length === 0) this.finished = true;
      return;
    }
    if (c === ':') { if (top.type === 'obj') top.expectKey = false; return; }
    if (c === ',') {
      if (top.type === 'obj') { top.expectKey = true; top.key = null; } else top.index += 1;
      return;
    }
    if (/[A-Za-z0-9.+-]/.test(c) && !(top.type === 'obj' && top.expectKey)) this.scalar += c;
  }

  endScalar() {
    const path = this.valuePath();
    if (path.length === 1 && path[0] === 'unfixable') {
      if (this.scalar === 'true') this.unfixable = true;
      else if (this.scalar === 'false') this.unfixable = false;
    }
    this.scalar = '';
  }

  targetFor(path) {
    if (path.length === 1 && path[0] === 'explanation') return 'explanation';
    if (path.length === 3 && path[0] === 'changes' && typeof path[1] === 'number' && path[2] === 'path') return 'path';
    return null;
  }

  stringChar(c) {
    if (this.escape === '\\') {
      this.escape = null;
      if (c === 'u') { this.escape = 'u'; this.hex = ''; return; }
      this.emit(SIMPLE_ESCAPES[c] ?? c); // an unknown escape keeps its character
      return;
    }
    if (this.escape === 'u') {
      if (/[0-9A-Fa-f]/.test(c)) {
        this.hex += c;
        if (this.hex.length === 4) { this.escape = null; this.emit(String.fromCharCode(parseInt(this.hex, 16))); }
        return;
      }
      // A broken \u sequence: keep what there was and read this character normally.
      this.escape = null;
      this.emit('\\u' + this.hex);
    }
    if (c === '\\') { this.escape = '\\'; return; }
    if (c === '"') { this.endString(); return; }
    this.emit(c);
  }

  emit(s) {
    if (this.stringIsKey || this.target) this.buf += s;
  }

  endString() {
    this.inString = false;
    const top = this.stack[this.stack.length - 1];
    if (this.stringIsKey) {
      if (top) top.key = this.buf;
    } else if (this.target === 'explanation') {
      this.explanation = this.buf;
      this.explanationDone = true;
    } else if (this.target === 'path') {
      this.paths[this.paths.length - 1] = this.buf;
      this.pathsDone = this.paths.length;
    }
    this.target = null;
    this.buf = '';
  }

  /** Copies the string being read into the visible fields (an explanation or path still growing). */
  sync() {
    if (!this.inString || this.stringIsKey) return;
    // Half a surrogate pair waits for its other half.
    const shown = /[\uD800-\uDBFF]$/.test(this.buf) ? this.buf.slice(0, -1) : this.buf;
    if (this.target === 'explanation') this.explanation = shown;
    else if (this.target === 'path') this.paths[this.paths.length - 1] = shown;
  }
}

/** Reads a whole text at once (for tests and for a reply that arrives in one piece). */
export function readReply(text) {
  return new ReplyReader().push(text);
}
