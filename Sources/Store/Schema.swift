// Schema: versioned migrations, recorded in schema_migrations, identical in meaning on both backends.

/// One schema step. Versions are applied in order, each in the same transaction as its
/// schema_migrations row, so a crash mid-migration leaves the previous version intact. Public because a
/// feature (MedicHost) may declare the migrations of its own tables; their versions share one numbering
/// with `migrations` below (schema_migrations is keyed by version).
public struct Migration: Sendable {
    public var version: Int
    public var name: String
    /// The DDL for a dialect. Only auto-increment keys differ between the two.
    public var sql: @Sendable (SQLDialect) -> String

    public init(version: Int, name: String, sql: @escaping @Sendable (SQLDialect) -> String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

/// The migrations, oldest first. Append only: never edit a released step.
let migrations: [Migration] = [
    Migration(version: 1, name: "initial") { dialect in
        let serial = dialect == .sqlite ? "INTEGER PRIMARY KEY" : "BIGSERIAL PRIMARY KEY"
        return """
            CREATE TABLE topic_heads (topic TEXT PRIMARY KEY, head BIGINT NOT NULL);
            CREATE TABLE events (
                topic TEXT NOT NULL, seq BIGINT NOT NULL, ts BIGINT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL,
                PRIMARY KEY (topic, seq));
            CREATE TABLE proposals (
                id TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT NOT NULL, repo TEXT NOT NULL,
                status TEXT NOT NULL, current_revision INTEGER NOT NULL, author TEXT NOT NULL,
                created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, attempts INTEGER NOT NULL, doc TEXT NOT NULL);
            CREATE INDEX proposals_by_status ON proposals (status, created_at);
            CREATE INDEX proposals_by_created ON proposals (created_at);
            CREATE TABLE revisions (
                proposal_id TEXT NOT NULL REFERENCES proposals (id), number INTEGER NOT NULL, doc TEXT NOT NULL,
                created_at BIGINT NOT NULL, PRIMARY KEY (proposal_id, number));
            CREATE TABLE reviews (
                id \(serial), proposal_id TEXT NOT NULL REFERENCES proposals (id), revision INTEGER NOT NULL,
                principal TEXT NOT NULL, verdict TEXT NOT NULL, comment TEXT, ts BIGINT NOT NULL);
            CREATE INDEX reviews_by_proposal ON reviews (proposal_id, id);
            CREATE TABLE comments (
                id \(serial), proposal_id TEXT NOT NULL REFERENCES proposals (id), principal TEXT NOT NULL,
                text TEXT NOT NULL, ts BIGINT NOT NULL);
            CREATE INDEX comments_by_proposal ON comments (proposal_id, id);
            CREATE TABLE applied_changes (
                id \(serial), proposal_id TEXT NOT NULL REFERENCES proposals (id), revision INTEGER NOT NULL,
                commit_id TEXT NOT NULL, ts BIGINT NOT NULL, reverted_by TEXT, UNIQUE (proposal_id, commit_id));
            CREATE TABLE commands (
                principal TEXT NOT NULL, command_id TEXT NOT NULL, response TEXT NOT NULL, ts BIGINT NOT NULL,
                PRIMARY KEY (principal, command_id));
            CREATE TABLE principals (
                name TEXT PRIMARY KEY, role TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
                created_at BIGINT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
            """
    },
    // Sign-in links (`medic login`): a single-use code, hashed, that the page exchanges for a session token;
    // sessions belong to one incarnation of a principal (name + created_at) and die with it.
    Migration(version: 2, name: "sign-in links and sessions") { _ in
        """
        CREATE TABLE login_codes (
            code_hash TEXT PRIMARY KEY, principal TEXT NOT NULL, expires_at BIGINT NOT NULL, used INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY, principal TEXT NOT NULL, principal_created_at BIGINT NOT NULL,
            created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL);
        CREATE INDEX sessions_by_principal ON sessions (principal);
        """
    },
    // The codebase navigator's index (CodeIndex.swift).
    CodeIndexOperations.migration,
    // Workflows (bugs, later asks and incidents): one row per workflow, the machine's record in `doc`. The
    // same DDL on both backends.
    Migration(version: 4, name: "workflows") { _ in
        """
        CREATE TABLE workflows (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, repo TEXT NOT NULL, title TEXT NOT NULL, status TEXT NOT NULL,
            author TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, doc TEXT NOT NULL);
        CREATE INDEX workflows_by_created ON workflows (kind, created_at);
        CREATE INDEX workflows_by_status ON workflows (kind, status);
        """
    },
    // The `medic` query source (asks about Medic itself): read-only views over what is safe to show — never
    // principals, sessions, login codes, commands, documents or event payloads. The ask source's allow-list
    // is exactly these views.
    Migration(version: 5, name: "medic source views") { dialect in
        let topicKind = dialect == .sqlite
            ? "CASE WHEN instr(topic, ':') > 0 THEN substr(topic, 1, instr(topic, ':') - 1) ELSE topic END"
            : "split_part(topic, ':', 1)"
        return """
            CREATE VIEW medic_proposals AS SELECT id, title, repo, status, author, attempts, created_at, updated_at FROM proposals;
            CREATE VIEW medic_revisions AS SELECT proposal_id, number, created_at FROM revisions;
            CREATE VIEW medic_reviews AS SELECT proposal_id, revision, principal, verdict, ts FROM reviews;
            CREATE VIEW medic_bugs AS SELECT id, repo, title, status, author, created_at, updated_at FROM workflows WHERE kind = 'bug';
            CREATE VIEW medic_events_by_kind AS SELECT \(topicKind) AS topic_kind, kind AS event_kind, COUNT(*) AS count, MAX(ts) AS last_ts
                FROM events GROUP BY 1, 2;
            """
    },
    // Asks: every statement run or refused for a question (the audit admins read), and the answers an admin
    // marked (right or wrong), searchable by question (FTS5 / tsvector) for the next similar question.
    Migration(version: 6, name: "query audit and ask memory") { dialect in
        let serial = dialect == .sqlite ? "INTEGER PRIMARY KEY" : "BIGSERIAL PRIMARY KEY"
        let search = dialect == .sqlite
            ? "CREATE VIRTUAL TABLE ask_memory_search USING fts5(ask_id UNINDEXED, question);"
            : "CREATE INDEX ask_memory_search ON ask_memory USING gin (to_tsvector('english', question));"
        return """
            CREATE TABLE query_audit (
                id \(serial), ts BIGINT NOT NULL, principal TEXT NOT NULL, ask_id TEXT, source TEXT NOT NULL, question TEXT,
                sql TEXT NOT NULL, row_count BIGINT, duration_ms BIGINT, refusal_code TEXT, refusal_reason TEXT);
            CREATE INDEX query_audit_by_ts ON query_audit (ts);
            CREATE TABLE ask_memory (
                ask_id TEXT PRIMARY KEY, question TEXT NOT NULL, sql TEXT NOT NULL, correct INTEGER NOT NULL, comment TEXT,
                principal TEXT NOT NULL, ts BIGINT NOT NULL);
            \(search)
            """
    },
    // The monitor: each closed bucket's figures per series (a restart replays them into the baselines; pruned
    // after `monitor.retention_hours`), and each error fingerprint with its latest samples. Values are stored
    // in thousandths (counts exact, ratios to 0.1 %, latencies to the microsecond). Two more views for the
    // `medic` ask source: incidents, and fingerprints without their samples (log text may name users).
    Migration(version: 7, name: "monitor buckets and fingerprints") { _ in
        """
        CREATE TABLE monitor_buckets (
            series TEXT NOT NULL, bucket BIGINT NOT NULL, value_milli BIGINT NOT NULL, PRIMARY KEY (series, bucket));
        CREATE INDEX monitor_buckets_by_bucket ON monitor_buckets (bucket);
        CREATE TABLE monitor_fingerprints (
            id TEXT PRIMARY KEY, service TEXT NOT NULL, key TEXT NOT NULL, total BIGINT NOT NULL, first_seen BIGINT NOT NULL,
            last_seen BIGINT NOT NULL, samples TEXT NOT NULL, stack TEXT);
        CREATE INDEX monitor_fingerprints_by_last_seen ON monitor_fingerprints (last_seen);
        CREATE VIEW medic_incidents AS SELECT id, repo, title, status, created_at, updated_at FROM workflows WHERE kind = 'incident';
        CREATE VIEW medic_fingerprints AS SELECT id, service, key, total, first_seen, last_seen FROM monitor_fingerprints;
        """
    },
    // Several nodes on one store: each node's heartbeat, and each node's members of each presence topic (the union
    // over live nodes is the topic's presence).
    Migration(version: 8, name: "nodes and presence") { _ in
        """
        CREATE TABLE nodes (
            id TEXT PRIMARY KEY, address TEXT NOT NULL, started_at BIGINT NOT NULL, heartbeat_at BIGINT NOT NULL);
        CREATE TABLE presence (
            node TEXT NOT NULL, topic TEXT NOT NULL, members TEXT NOT NULL, PRIMARY KEY (node, topic));
        """
    },
    // Work ownership across nodes: one lease per live workflow instance (its topic), held by one node until it
    // expires unrenewed; commands a node forwards to the owner of their instance, with the owner's answer.
    Migration(version: 9, name: "leases and forwarded commands") { dialect in
        let serial = dialect == .sqlite ? "INTEGER PRIMARY KEY" : "BIGSERIAL PRIMARY KEY"
        return """
            CREATE TABLE leases (
                workflow TEXT PRIMARY KEY, node TEXT NOT NULL, repo TEXT NOT NULL, expires_at BIGINT NOT NULL, claimed_at BIGINT NOT NULL);
            CREATE INDEX leases_by_node ON leases (node);
            CREATE INDEX leases_by_expiry ON leases (expires_at);
            CREATE TABLE forwarded_commands (
                id \(serial), to_node TEXT NOT NULL, from_node TEXT NOT NULL, workflow TEXT NOT NULL, principal TEXT NOT NULL,
                role TEXT NOT NULL, request TEXT NOT NULL, created_at BIGINT NOT NULL, answer TEXT, answered_at BIGINT);
            CREATE INDEX forwarded_commands_pending ON forwarded_commands (to_node, answered_at);
            """
    },
]

/// The store's own migrations followed by `extra` (features' tables), in the order they are applied:
/// ascending version, so the order does not depend on which features registered first. A version declared
/// twice is refused before anything runs: two steps under one number would leave one of them unapplied
/// on every database that already recorded the other.
func orderedMigrations(_ extra: [Migration]) throws(StoreError) -> [Migration] {
    var byVersion: [Int: String] = [:]
    for m in migrations + extra {
        guard m.version >= 1 else { throw .invalid("migration '\(m.name)' has version \(m.version); versions start at 1") }
        if let other = byVersion[m.version] {
            throw .invalid("migration version \(m.version) is declared twice ('\(other)' and '\(m.name)')")
        }
        byVersion[m.version] = m.name
    }
    return (migrations + extra).sorted { $0.version < $1.version }
}

/// Brings the schema up to date: the store's migrations and `extra`, each applied once (ordered by
/// `orderedMigrations`). Returns the versions applied now. Safe to run on every open and from several
/// processes at once: on Postgres a transaction-scoped advisory lock serialises migrators; on SQLite BEGIN
/// IMMEDIATE does.
@discardableResult
func migrate(_ conn: any SQLConnection, now: Int64, extra: [Migration] = []) throws(StoreError) -> [Int] {
    let ordered = try orderedMigrations(extra)
    try conn.begin()
    do throws(StoreError) {
        if conn.dialect == .postgres {
            // An arbitrary constant key ("medic" in ASCII), held until COMMIT/ROLLBACK.
            try conn.query("SELECT pg_advisory_xact_lock(1835361385)", [])
        }
        try conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
        )
        let applied = Set(try conn.query("SELECT version FROM schema_migrations", []).map { Int($0[0].int) })
        var appliedNow: [Int] = []
        for m in ordered where !applied.contains(m.version) {
            try conn.execute(m.sql(conn.dialect))
            try conn.query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                [.int(Int64(m.version)), .text(m.name), .int(now)])
            appliedNow.append(m.version)
        }
        try conn.execute("COMMIT")
        return appliedNow
    } catch {
        try? conn.execute("ROLLBACK")
        throw error
    }
}
