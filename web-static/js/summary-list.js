// summary-list.js: the list of a workflow's instances (bugs, asks …) kept from two sources — the REST list and the
// collection topic's summary events — where an older summary (by `updated_at`) never replaces a newer one.

export class SummaryList {
  /** @param {string} kind the collection topic's event kind that carries a summary (`bug`, `ask`). */
  constructor(kind) {
    this.kind = kind;
    /** @type {Map<string, object>} */ this.byId = new Map();
  }

  /** A summary from either source; an older one (by `updated_at`) never replaces a newer one. */
  merge(summary) {
    if (!summary || typeof summary.id !== 'string') return false;
    const known = this.byId.get(summary.id);
    if (known && (known.updated_at ?? 0) > (summary.updated_at ?? 0)) return false;
    this.byId.set(summary.id, { ...known, ...summary });
    return true;
  }

  apply(ev) {
    if (ev.kind !== this.kind || !ev.data) return false;
    return this.merge(ev.data);
  }

  clear() { this.byId.clear(); }

  /** Newest first by creation (stable while statuses change). */
  sorted() {
    return [...this.byId.values()].sort((a, b) => (b.created_at ?? b.updated_at ?? 0) - (a.created_at ?? a.updated_at ?? 0)
      || String(b.id).localeCompare(String(a.id)));
  }
}
