// StoreOperations: the SQL for every store operation, written once against SQLConnection.

/// The statements behind Store's API; every function runs on the worker thread with its connection.
enum StoreOperations {
    /// Statuses a restart must recover (work that was in flight when the process stopped).

    /// Applies one write inside the caller's savepoint and returns its outcome.
    ///
    /// The command record goes first: `INSERT … ON CONFLICT DO NOTHING` either claims the command id or,
    /// if a row exists (committed earlier, earlier in this same transaction, or — on Postgres — committed
    /// by another process while we waited on its row lock), inserts nothing, and we return the stored
    /// response without touching anything else. This is what makes a caller's retry after an
    /// "outcome unknown" failure safe.
    static func apply(_ w: StoreWrite, on c: any SQLConnection, now: Int64) throws(StoreError) -> WriteOutcome {
        if let cmd = w.command {
            let claimed = try c.query(
                """
                INSERT INTO commands (principal, command_id, response, ts) VALUES ($1, $2, $3, $4)
                ON CONFLICT (principal, command_id) DO NOTHING RETURNING 1
                """, [.text(cmd.principal), .text(cmd.commandId), .text(cmd.response), .int(now)])
            if claimed.isEmpty {
                let stored = try commandResponse(principal: cmd.principal, commandId: cmd.commandId, on: c)
                return .duplicateCommand(response: stored ?? cmd.response)
            }
        }
        for st in rowStatements(w, dialect: c.dialect) { try c.query(st.sql, st.params) }
        return .committed(try appendEvents(w.events, on: c))
    }

    /// The row upserts and inserts of a write (everything except the command record and the events), in
    /// the order they must run: proposals first, since the other tables reference them; workflows last.
    static func rowStatements(_ w: StoreWrite, dialect: SQLDialect = .postgres) -> [(sql: String, params: [SQLValue])] {
        var out: [(sql: String, params: [SQLValue])] = []
        for p in w.proposals {
            out.append((
                """
                INSERT INTO proposals (id, title, description, repo, status, current_revision, author, created_at,
                    updated_at, attempts, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                ON CONFLICT (id) DO UPDATE SET title = excluded.title, description = excluded.description,
                    repo = excluded.repo, status = excluded.status, current_revision = excluded.current_revision,
                    author = excluded.author, created_at = excluded.created_at, updated_at = excluded.updated_at,
                    attempts = excluded.attempts, doc = excluded.doc
                """,
                [
                    .text(p.id), .text(p.title), .text(p.description), .text(p.repo), .text(p.status),
                    .int(Int64(p.currentRevision)), .text(p.author), .int(p.createdAt), .int(p.updatedAt),
                    .int(Int64(p.attempts)), .text(p.doc),
                ]))
        }
        for r in w.revisions {
            out.append((
                """
                INSERT INTO revisions (proposal_id, number, doc, created_at) VALUES ($1, $2, $3, $4)
                ON CONFLICT (proposal_id, number) DO UPDATE SET doc = excluded.doc, created_at = excluded.created_at
                """, [.text(r.proposalId), .int(Int64(r.number)), .text(r.doc), .int(r.createdAt)]))
        }
        for r in w.reviews {
            out.append((
                """
                INSERT INTO reviews (proposal_id, revision, principal, verdict, comment, ts)
                VALUES ($1, $2, $3, $4, $5, $6)
                """,
                [
                    .text(r.proposalId), .int(Int64(r.revision)), .text(r.principal), .text(r.verdict),
                    sqlText(r.comment), .int(r.ts),
                ]))
        }
        for m in w.comments {
            out.append((
                "INSERT INTO comments (proposal_id, principal, text, ts) VALUES ($1, $2, $3, $4)",
                [.text(m.proposalId), .text(m.principal), .text(m.text), .int(m.ts)]))
        }
        for a in w.appliedChanges {
            out.append((
                """
                INSERT INTO applied_changes (proposal_id, revision, commit_id, ts, reverted_by) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (proposal_id, commit_id) DO UPDATE SET reverted_by = excluded.reverted_by
                """, [.text(a.proposalId), .int(Int64(a.revision)), .text(a.commit), .int(a.ts), sqlText(a.revertedBy)]))
        }
        for r in w.workflows {
            out.append((
                """
                INSERT INTO workflows (id, kind, repo, title, status, author, created_at, updated_at, doc)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, repo = excluded.repo, title = excluded.title,
                    status = excluded.status, author = excluded.author, created_at = excluded.created_at,
                    updated_at = excluded.updated_at, doc = excluded.doc
                """,
                [
                    .text(r.id), .text(r.kind), .text(r.repo), .text(r.title), .text(r.status), .text(r.author),
                    .int(r.createdAt), .int(r.updatedAt), .text(r.doc),
                ]))
        }
        for a in w.audits {
            out.append((
                """
                INSERT INTO query_audit (ts, principal, ask_id, source, question, sql, row_count, duration_ms, refusal_code, refusal_reason)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                """,
                [
                    .int(a.ts), .text(a.principal), sqlText(a.askId), .text(a.source), sqlText(a.question), .text(a.sql),
                    a.rowCount.map { .int(Int64($0)) } ?? .null, a.durationMs.map { .int(Int64($0)) } ?? .null, sqlText(a.refusalCode),
                    sqlText(a.refusalReason),
                ]))
        }
        for m in w.askMemories {
            out.append((
                """
                INSERT INTO ask_memory (ask_id, question, sql, correct, comment, principal, ts) VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (ask_id) DO UPDATE SET question = excluded.question, sql = excluded.sql, correct = excluded.correct,
                    comment = excluded.comment, principal = excluded.principal, ts = excluded.ts
                """,
                [.text(m.askId), .text(m.question), .text(m.sql), .int(m.correct ? 1 : 0), sqlText(m.comment), .text(m.principal), .int(m.ts)]))
            if dialect == .sqlite {
                out.append(("DELETE FROM ask_memory_search WHERE ask_id = $1", [.text(m.askId)]))
                out.append(("INSERT INTO ask_memory_search (ask_id, question) VALUES ($1, $2)", [.text(m.askId), .text(m.question)]))
            }
        }
        for b in w.monitorBuckets {
            out.append((
                """
                INSERT INTO monitor_buckets (series, bucket, value_milli) VALUES ($1, $2, $3)
                ON CONFLICT (series, bucket) DO UPDATE SET value_milli = excluded.value_milli
                """, [.text(b.series), .int(b.bucket), .int(b.valueMilli)]))
        }
        for f in w.fingerprints {
            out.append((
                """
                INSERT INTO monitor_fingerprints (id, service, key, total, first_seen, last_seen, samples, stack)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (id) DO UPDATE SET total = monitor_fingerprints.total + excluded.total,
                    first_seen = CASE WHEN excluded.first_seen < monitor_fingerprints.first_seen THEN excluded.first_seen ELSE monitor_fingerprints.first_seen END,
                    last_seen = CASE WHEN excluded.last_seen > monitor_fingerprints.last_seen THEN excluded.last_seen ELSE monitor_fingerprints.last_seen END,
                    samples = excluded.samples, stack = COALESCE(excluded.stack, monitor_fingerprints.stack)
                """,
                [
                    .text(f.id), .text(f.service), .text(f.key), .int(f.total), .int(f.firstSeen), .int(f.lastSeen),
                    .text(f.samples.map { String($0.map { $0 == "\u{1E}" ? " " : $0 }) }.joined(separator: "\u{1E}")), sqlText(f.stack),
                ]))
        }
        if let before = w.monitorPruneBefore {
            out.append(("DELETE FROM monitor_buckets WHERE bucket < $1", [.int(before)]))
            out.append(("DELETE FROM monitor_fingerprints WHERE last_seen < $1", [.int(before)]))
        }
        return out
    }

    /// Stored monitor buckets from `since` on, oldest first.
    static func monitorBuckets(since: Int64, on c: any SQLConnection) throws(StoreError) -> [MonitorBucketRow] {
        try c.query("SELECT series, bucket, value_milli FROM monitor_buckets WHERE bucket >= $1 ORDER BY bucket, series", [.int(since)]).map {
            MonitorBucketRow(series: $0[0].text, bucket: $0[1].int, valueMilli: $0[2].int)
        }
    }

    /// Fingerprints: the given ids, or (ids nil) the most recently seen `limit`.
    static func fingerprints(ids: [String]?, limit: Int, on c: any SQLConnection) throws(StoreError) -> [FingerprintRow] {
        let columns = "id, service, key, total, first_seen, last_seen, samples, stack"
        let rows: [[SQLValue]]
        if let ids {
            guard !ids.isEmpty else { return [] }
            var out: [[SQLValue]] = []
            for chunk in stride(from: 0, to: ids.count, by: 500).map({ Array(ids[$0..<min($0 + 500, ids.count)]) }) {
                let marks = (1...chunk.count).map { "$\($0)" }.joined(separator: ", ")
                out += try c.query("SELECT \(columns) FROM monitor_fingerprints WHERE id IN (\(marks))", chunk.map { .text($0) })
            }
            rows = out
        } else {
            rows = try c.query("SELECT \(columns) FROM monitor_fingerprints ORDER BY last_seen DESC LIMIT $1", [.int(Int64(max(0, limit)))])
        }
        return rows.map { r in
            let samples = r[6].text.isEmpty ? [] : r[6].text.split(separator: "\u{1E}", omittingEmptySubsequences: false).map(String.init)
            return FingerprintRow(
                id: r[0].text, service: r[1].text, key: r[2].text, total: r[3].int, firstSeen: r[4].int, lastSeen: r[5].int, samples: samples,
                stack: r[7].optionalText)
        }
    }

    static let auditColumns = "id, ts, principal, ask_id, source, question, sql, row_count, duration_ms, refusal_code, refusal_reason"

    /// The newest audit rows first.
    static func queryAudit(limit: Int, on c: any SQLConnection) throws(StoreError) -> [QueryAuditRow] {
        try c.query("SELECT \(auditColumns) FROM query_audit ORDER BY id DESC LIMIT $1", [.int(Int64(max(0, limit)))]).map { r in
            var row = QueryAuditRow(
                ts: r[1].int, principal: r[2].text, askId: r[3].optionalText, source: r[4].text, question: r[5].optionalText, sql: r[6].text,
                rowCount: r[7].optionalText.map { _ in Int(r[7].int) }, durationMs: r[8].optionalText.map { _ in Int(r[8].int) },
                refusalCode: r[9].optionalText, refusalReason: r[10].optionalText)
            row.id = r[0].int
            return row
        }
    }

    /// The marked answers whose questions are most similar to `question` (full-text search: any of its words,
    /// best ranked first).
    static func similarAskMemories(_ question: String, limit: Int, on c: any SQLConnection) throws(StoreError) -> [AskMemoryRow] {
        var words: [String] = []
        for word in question.lowercased().split(whereSeparator: { !($0.isASCII && ($0.isLetter || $0.isNumber)) }) where word.count >= 2 {
            if !words.contains(String(word)) { words.append(String(word)) }
        }
        guard !words.isEmpty else { return [] }
        words = Array(words.prefix(32))
        let columns = "m.ask_id, m.question, m.sql, m.correct, m.comment, m.principal, m.ts"
        let rows: [[SQLValue]]
        if c.dialect == .sqlite {
            rows = try c.query(
                """
                SELECT \(columns) FROM ask_memory_search s JOIN ask_memory m ON m.ask_id = s.ask_id
                WHERE ask_memory_search MATCH $1 ORDER BY bm25(ask_memory_search), m.ts DESC LIMIT $2
                """, [.text(words.map { "\"\($0)\"" }.joined(separator: " OR ")), .int(Int64(limit))])
        } else {
            rows = try c.query(
                """
                SELECT \(columns) FROM ask_memory m, to_tsquery('english', $1) q
                WHERE to_tsvector('english', m.question) @@ q ORDER BY ts_rank(to_tsvector('english', m.question), q) DESC, m.ts DESC LIMIT $2
                """, [.text(words.joined(separator: " | ")), .int(Int64(limit))])
        }
        return rows.map { r in
            AskMemoryRow(askId: r[0].text, question: r[1].text, sql: r[2].text, correct: r[3].int != 0, comment: r[4].optionalText, principal: r[5].text, ts: r[6].int)
        }
    }

    /// Assigns seqs and inserts the events.
    ///
    /// Each topic's head is bumped once by the number of its events with an upsert on topic_heads, in the
    /// same transaction as the inserts. On Postgres the upsert takes the row lock, so a concurrent writer
    /// (another Store, another process) waits until we commit or roll back and then increments the value
    /// we left: seqs can neither be handed out twice nor skipped, whatever the isolation level. A rolled
    /// back savepoint undoes the bump together with the inserts, so a failed write leaves no gap.
    static func appendEvents(_ events: [NewEvent], on c: any SQLConnection) throws(StoreError) -> [StoredEvent] {
        if events.isEmpty { return [] }
        if let bad = events.first(where: { $0.topic.isEmpty || $0.kind.isEmpty }) {
            throw .invalid("event with empty topic or kind (topic \"\(bad.topic)\", kind \"\(bad.kind)\")")
        }
        if c.dialect == .postgres {
            // One round trip per event: the head bump and the insert in one statement.
            var stored: [StoredEvent] = []
            for e in events {
                let rows = try c.query(postgresAppendEvent, [.text(e.topic), .int(e.ts), .text(e.kind), .text(e.data)])
                guard let seq = rows.first?.first?.int else { throw .invalid("event insert returned no seq") }
                stored.append(StoredEvent(topic: e.topic, seq: seq, ts: e.ts, kind: e.kind, data: e.data))
            }
            return stored
        }
        var counts: [String: Int64] = [:]
        var order: [String] = []
        for e in events {
            if counts[e.topic] == nil { order.append(e.topic) }
            counts[e.topic, default: 0] += 1
        }
        var next: [String: Int64] = [:]
        for topic in order {
            let n = counts[topic] ?? 0
            let rows = try c.query(
                """
                INSERT INTO topic_heads (topic, head) VALUES ($1, $2)
                ON CONFLICT (topic) DO UPDATE SET head = topic_heads.head + excluded.head RETURNING head
                """, [.text(topic), .int(n)])
            guard let head = rows.first?.first?.int else { throw .invalid("topic head upsert returned nothing") }
            next[topic] = head - n + 1
        }
        var stored: [StoredEvent] = []
        stored.reserveCapacity(events.count)
        for e in events {
            let seq = next[e.topic] ?? 1
            next[e.topic] = seq + 1
            try c.query(
                "INSERT INTO events (topic, seq, ts, kind, data) VALUES ($1, $2, $3, $4, $5)",
                [.text(e.topic), .int(seq), .int(e.ts), .text(e.kind), .text(e.data)])
            stored.append(StoredEvent(topic: e.topic, seq: seq, ts: e.ts, kind: e.kind, data: e.data))
        }
        return stored
    }

    /// Postgres: bumps the topic's head and inserts the event under that seq, in one statement (the
    /// upsert in the CTE takes the topic_heads row lock exactly as the two-statement form does).
    static let postgresAppendEvent = """
        WITH h AS (
            INSERT INTO topic_heads (topic, head) VALUES ($1, 1)
            ON CONFLICT (topic) DO UPDATE SET head = topic_heads.head + 1 RETURNING head)
        INSERT INTO events (topic, seq, ts, kind, data) SELECT $1, h.head, $2, $3, $4 FROM h RETURNING seq
        """

    /// Postgres fast path for a whole group: every statement of every write (and the NOTIFYs) in one libpq
    /// pipeline, so a group costs a few round trips instead of a few per write. Runs inside the caller's
    /// transaction, without savepoints.
    ///
    /// Returns nil when any statement failed — a constraint, a deadlock, or a command id that already
    /// exists (here a plain INSERT, so a duplicate is an error rather than a branch a pipeline cannot
    /// take). The transaction is then aborted and nothing was committed: the caller rolls back and replays
    /// the group on the careful path (a savepoint per write), which isolates the failing write and reports
    /// duplicates properly. Throws only when the connection fails.
    static func pipelined(_ writes: [StoreWrite], on c: PostgresConnection, now: Int64) throws(StoreError)
        -> [WriteOutcome]?
    {
        enum Tag {
            case none
            case event(write: Int, index: Int)
        }
        var statements: [(sql: String, params: [SQLValue])] = []
        var tags: [Tag] = []
        var topics: [String] = []
        var seen: Set<String> = []
        for (i, w) in writes.enumerated() {
            if w.events.contains(where: { $0.topic.isEmpty || $0.kind.isEmpty }) { return nil }
            if let cmd = w.command {
                statements.append((
                    "INSERT INTO commands (principal, command_id, response, ts) VALUES ($1, $2, $3, $4)",
                    [.text(cmd.principal), .text(cmd.commandId), .text(cmd.response), .int(now)]))
                tags.append(.none)
            }
            for st in rowStatements(w) {
                statements.append(st)
                tags.append(.none)
            }
            for (k, e) in w.events.enumerated() {
                statements.append((postgresAppendEvent, [.text(e.topic), .int(e.ts), .text(e.kind), .text(e.data)]))
                tags.append(.event(write: i, index: k))
                if seen.insert(e.topic).inserted { topics.append(e.topic) }
            }
        }
        for topic in topics {
            // Delivered by Postgres only if the transaction commits.
            statements.append((
                "SELECT pg_notify('medic_events', topic || ' ' || head) FROM topic_heads WHERE topic = $1", [.text(topic)]))
            tags.append(.none)
        }
        let results = try c.pipeline(statements)
        var stored: [[StoredEvent]] = writes.map { _ in [] }
        for (result, tag) in zip(results, tags) {
            guard case .success(let rows)? = result else { return nil }
            if case .event(let i, let k) = tag {
                guard let seq = rows.first?.first?.int else { return nil }
                let e = writes[i].events[k]
                stored[i].append(StoredEvent(topic: e.topic, seq: seq, ts: e.ts, kind: e.kind, data: e.data))
            }
        }
        return stored.map { .committed($0) }
    }

    static func events(topic: String, after: Int64, limit: Int, on c: any SQLConnection) throws(StoreError)
        -> [StoredEvent]
    {
        try c.query(
            "SELECT topic, seq, ts, kind, data FROM events WHERE topic = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            [.text(topic), .int(after), .int(Int64(max(0, limit)))]
        ).map { StoredEvent(topic: $0[0].text, seq: $0[1].int, ts: $0[2].int, kind: $0[3].text, data: $0[4].text) }
    }

    /// The newest `limit` events of a topic, oldest first.
    static func latestEvents(topic: String, limit: Int, on c: any SQLConnection) throws(StoreError) -> [StoredEvent] {
        try c.query(
            "SELECT topic, seq, ts, kind, data FROM events WHERE topic = $1 ORDER BY seq DESC LIMIT $2",
            [.text(topic), .int(Int64(max(0, limit)))]
        ).map { StoredEvent(topic: $0[0].text, seq: $0[1].int, ts: $0[2].int, kind: $0[3].text, data: $0[4].text) }.reversed()
    }

    static func head(topic: String, on c: any SQLConnection) throws(StoreError) -> Int64 {
        try c.query("SELECT head FROM topic_heads WHERE topic = $1", [.text(topic)]).first?.first?.int ?? 0
    }

    static let proposalColumns =
        "id, title, description, repo, status, current_revision, author, created_at, updated_at, attempts, doc"

    static func proposalRow(_ r: [SQLValue]) -> ProposalRow {
        ProposalRow(
            id: r[0].text, title: r[1].text, description: r[2].text, repo: r[3].text, status: r[4].text,
            currentRevision: Int(r[5].int), author: r[6].text, createdAt: r[7].int, updatedAt: r[8].int,
            attempts: Int(r[9].int), doc: r[10].text)
    }

    static func proposal(id: String, on c: any SQLConnection) throws(StoreError) -> ProposalDetail? {
        guard
            let row = try c.query("SELECT \(proposalColumns) FROM proposals WHERE id = $1", [.text(id)]).first
        else { return nil }
        let revisions = try c.query(
            "SELECT proposal_id, number, doc, created_at FROM revisions WHERE proposal_id = $1 ORDER BY number",
            [.text(id)]
        ).map { RevisionRow(proposalId: $0[0].text, number: Int($0[1].int), doc: $0[2].text, createdAt: $0[3].int) }
        let reviews = try c.query(
            """
            SELECT proposal_id, revision, principal, verdict, comment, ts FROM reviews WHERE proposal_id = $1 ORDER BY id
            """, [.text(id)]
        ).map {
            ReviewRow(
                proposalId: $0[0].text, revision: Int($0[1].int), principal: $0[2].text, verdict: $0[3].text,
                comment: $0[4].optionalText, ts: $0[5].int)
        }
        let comments = try c.query(
            "SELECT proposal_id, principal, text, ts FROM comments WHERE proposal_id = $1 ORDER BY id", [.text(id)]
        ).map { CommentRow(proposalId: $0[0].text, principal: $0[1].text, text: $0[2].text, ts: $0[3].int) }
        let applied = try c.query(
            """
            SELECT proposal_id, revision, commit_id, ts, reverted_by FROM applied_changes WHERE proposal_id = $1 ORDER BY id
            """, [.text(id)]
        ).map {
            AppliedChangeRow(
                proposalId: $0[0].text, revision: Int($0[1].int), commit: $0[2].text, ts: $0[3].int,
                revertedBy: $0[4].optionalText)
        }
        return ProposalDetail(
            proposal: proposalRow(row), revisions: revisions, reviews: reviews, comments: comments,
            appliedChanges: applied)
    }

    static func proposals(status: String?, limit: Int, on c: any SQLConnection) throws(StoreError) -> [ProposalRow] {
        let limit = SQLValue.int(Int64(max(0, limit)))
        if let status {
            return try c.query(
                "SELECT \(proposalColumns) FROM proposals WHERE status = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
                [.text(status), limit]
            ).map(proposalRow)
        }
        return try c.query(
            "SELECT \(proposalColumns) FROM proposals ORDER BY created_at DESC, id DESC LIMIT $1", [limit]
        ).map(proposalRow)
    }

    static func proposals(statuses: [String], on c: any SQLConnection) throws(StoreError) -> [ProposalRow] {
        guard !statuses.isEmpty else { return [] }
        let marks = statuses.indices.map { "$\($0 + 1)" }.joined(separator: ", ")
        return try c.query(
            "SELECT \(proposalColumns) FROM proposals WHERE status IN (\(marks)) ORDER BY created_at, id",
            statuses.map(SQLValue.text)
        ).map(proposalRow)
    }

    /// The pipeline's figures over every stored proposal, computed by the engine (one pass over `proposals`
    /// and `revisions`, reading the revision documents' `testResult` and `analysis.category` with the engine's
    /// own JSON functions: SQLite's `json_extract`, PostgreSQL's `jsonb` operators), so a server with 100,000
    /// proposals answers without loading them. `passingStatuses` says which statuses count as a success (the
    /// store knows no status meanings).
    static func proposalFigures(passingStatuses: [String], on c: any SQLConnection) throws(StoreError) -> ProposalFigures {
        var figures = ProposalFigures()
        let marks = passingStatuses.indices.map { "$\($0 + 1)" }.joined(separator: ", ")
        let passing = passingStatuses.isEmpty ? "FALSE" : "status IN (\(marks))"
        if let row = try c.query(
            """
            SELECT COUNT(*), COALESCE(SUM(attempts), 0), COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN attempts > 0 AND \(passing) THEN 1 ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN status = 'unfixable' THEN 1 ELSE 0 END), 0)
            FROM proposals
            """, passingStatuses.map(SQLValue.text)
        ).first {
            figures.proposals = Int(row[0].int)
            figures.attempts = Int(row[1].int)
            figures.proposalsWithFixes = Int(row[2].int)
            figures.successful = Int(row[3].int)
            figures.unfixable = Int(row[4].int)
        }
        // A revision's run failed unless it exited 0, in time, without a signal, no test failed and the disk
        // quota held (Pipeline's `TestResult.succeeded`).
        let (result, field, category): (String, (String) -> String, String) = switch c.dialect {
        case .sqlite: (
            "json_extract(doc, '$.testResult')",
            { "json_extract(doc, '$.testResult.\($0)')" },
            "json_extract(doc, '$.analysis.category')")
        case .postgres: (
            "(doc::jsonb -> 'testResult')",
            { "(doc::jsonb -> 'testResult' ->> '\($0)')" },
            "(doc::jsonb -> 'analysis' ->> 'category')")
        }
        // SQLite's json_extract gives JSON true/false as 1/0; PostgreSQL's ->> gives the text 'true'/'false'.
        let (yes, no, zero) = c.dialect == .sqlite ? ("1", "0", "0") : ("'true'", "'false'", "'0'")
        if let row = try c.query(
            """
            SELECT COUNT(*) FROM revisions WHERE \(result) IS NOT NULL AND NOT (
                \(field("exitCode")) = \(zero) AND COALESCE(\(field("timedOut")), \(no)) <> \(yes) AND \(field("signal")) IS NULL
                AND COALESCE(\(field("failed")), \(zero)) = \(zero) AND COALESCE(\(field("diskQuotaExceeded")), \(no)) <> \(yes))
            """, []
        ).first {
            figures.failures = Int(row[0].int)
        }
        for row in try c.query(
            "SELECT \(category), COUNT(*) FROM revisions WHERE \(category) IS NOT NULL GROUP BY \(category)", [])
        {
            figures.byCategory[row[0].text] = Int(row[1].int)
        }
        return figures
    }

    static let workflowColumns = "kind, id, repo, title, status, author, created_at, updated_at, doc"

    static func workflowRow(_ r: [SQLValue]) -> WorkflowRow {
        WorkflowRow(
            kind: r[0].text, id: r[1].text, repo: r[2].text, title: r[3].text, status: r[4].text, author: r[5].text,
            createdAt: r[6].int, updatedAt: r[7].int, doc: r[8].text)
    }

    static func workflow(id: String, on c: any SQLConnection) throws(StoreError) -> WorkflowRow? {
        try c.query("SELECT \(workflowColumns) FROM workflows WHERE id = $1", [.text(id)]).first.map(workflowRow)
    }

    /// Workflows of `kind`, newest (created_at, then id) first, optionally only those with `status`; those whose
    /// status is in `last` after all the others (ordered in the query, before the limit).
    static func workflows(kind: String, status: String?, last: [String] = [], limit: Int, on c: any SQLConnection) throws(StoreError)
        -> [WorkflowRow]
    {
        var parameters: [SQLValue] = [.text(kind)]
        var filter = ""
        if let status {
            parameters.append(.text(status))
            filter = " AND status = $\(parameters.count)"
        }
        var group = ""
        if !last.isEmpty {
            let marks = last.indices.map { "$\(parameters.count + $0 + 1)" }.joined(separator: ", ")
            parameters += last.map(SQLValue.text)
            group = "CASE WHEN status IN (\(marks)) THEN 1 ELSE 0 END, "
        }
        parameters.append(.int(Int64(max(0, limit))))
        return try c.query(
            """
            SELECT \(workflowColumns) FROM workflows WHERE kind = $1\(filter)
            ORDER BY \(group)created_at DESC, id DESC LIMIT $\(parameters.count)
            """, parameters
        ).map(workflowRow)
    }

    /// Workflows of `kind` in any of `statuses`, oldest (created_at, then id) first.
    static func workflows(kind: String, statuses: [String], on c: any SQLConnection) throws(StoreError) -> [WorkflowRow] {
        guard !statuses.isEmpty else { return [] }
        let marks = statuses.indices.map { "$\($0 + 2)" }.joined(separator: ", ")
        return try c.query(
            "SELECT \(workflowColumns) FROM workflows WHERE kind = $1 AND status IN (\(marks)) ORDER BY created_at, id",
            [.text(kind)] + statuses.map(SQLValue.text)
        ).map(workflowRow)
    }

    /// How many workflows of `kind` are in each status (statuses with none are absent).
    static func workflowCounts(kind: String, on c: any SQLConnection) throws(StoreError) -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try c.query("SELECT status, COUNT(*) FROM workflows WHERE kind = $1 GROUP BY status", [.text(kind)]) {
            counts[row[0].text] = Int(row[1].int)
        }
        return counts
    }

    static func commandResponse(principal: String, commandId: String, on c: any SQLConnection) throws(StoreError)
        -> String?
    {
        try c.query(
            "SELECT response FROM commands WHERE principal = $1 AND command_id = $2",
            [.text(principal), .text(commandId)]
        ).first?.first?.text
    }

    static let principalColumns = "name, role, created_at, revoked"

    static func principalRow(_ r: [SQLValue]) -> PrincipalRow {
        PrincipalRow(name: r[0].text, role: r[1].text, createdAt: r[2].int, revoked: r[3].int != 0)
    }

    /// Creates a principal, or re-creates a revoked one under the same name. Runs in its own transaction.
    static func createPrincipal(name: String, role: String, tokenHash: String, now: Int64, on c: any SQLConnection)
        throws(StoreError) -> PrincipalRow
    {
        try transaction(c) { () throws(StoreError) in
            let existing = try c.query("SELECT revoked FROM principals WHERE name = $1", [.text(name)]).first
            if let existing, existing[0].int == 0 {
                throw StoreError(code: StoreError.conflict, message: "principal \(name) already exists")
            }
            if existing != nil {
                try c.query(
                    "UPDATE principals SET role = $2, token_hash = $3, created_at = $4, revoked = 0 WHERE name = $1",
                    [.text(name), .text(role), .text(tokenHash), .int(now)])
            } else {
                try c.query(
                    "INSERT INTO principals (name, role, token_hash, created_at, revoked) VALUES ($1, $2, $3, $4, 0)",
                    [.text(name), .text(role), .text(tokenHash), .int(now)])
            }
            return PrincipalRow(name: name, role: role, createdAt: now, revoked: false)
        }
    }

    /// A principal's own token, or an unexpired sign-in session of its current incarnation.
    static func principal(tokenHash: String, now: Int64, on c: any SQLConnection) throws(StoreError) -> PrincipalRow? {
        if let own = try c.query(
            "SELECT \(principalColumns) FROM principals WHERE token_hash = $1 AND revoked = 0", [.text(tokenHash)]
        ).first {
            return principalRow(own)
        }
        return try c.query(
            """
            SELECT p.name, p.role, p.created_at, p.revoked FROM sessions s
            JOIN principals p ON p.name = s.principal AND p.created_at = s.principal_created_at
            WHERE s.token_hash = $1 AND s.expires_at > $2 AND p.revoked = 0
            """, [.text(tokenHash), .int(now)]
        ).first.map(principalRow)
    }

    /// Stores a sign-in code for a live principal; false when there is none of that name.
    static func createLoginCode(principal: String, codeHash: String, expiresAt: Int64, now: Int64, on c: any SQLConnection)
        throws(StoreError) -> Bool
    {
        try transaction(c) { () throws(StoreError) in
            guard !(try c.query("SELECT 1 FROM principals WHERE name = $1 AND revoked = 0", [.text(principal)])).isEmpty else {
                return false
            }
            try c.query("DELETE FROM login_codes WHERE expires_at <= $1 OR used = 1", [.int(now)])
            try c.query(
                "INSERT INTO login_codes (code_hash, principal, expires_at, used) VALUES ($1, $2, $3, 0)",
                [.text(codeHash), .text(principal), .int(expiresAt)])
            return true
        }
    }

    /// Uses a sign-in code once: when it is unused, unexpired and its principal is live, it is marked used
    /// and a session with `sessionHash` is stored; the principal is returned. Otherwise nil (a code that was
    /// presented is used up either way).
    static func redeemLoginCode(codeHash: String, sessionHash: String, sessionExpiresAt: Int64, now: Int64, on c: any SQLConnection)
        throws(StoreError) -> PrincipalRow?
    {
        try transaction(c) { () throws(StoreError) in
            guard let name = try c.query(
                "UPDATE login_codes SET used = 1 WHERE code_hash = $1 AND used = 0 AND expires_at > $2 RETURNING principal",
                [.text(codeHash), .int(now)]
            ).first?[0].text,
                let row = try c.query("SELECT \(principalColumns) FROM principals WHERE name = $1 AND revoked = 0", [.text(name)])
                    .first.map(principalRow)
            else { return nil }
            try c.query(
                "INSERT INTO sessions (token_hash, principal, principal_created_at, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                [.text(sessionHash), .text(row.name), .int(row.createdAt), .int(now), .int(sessionExpiresAt)])
            return row
        }
    }

    static func principals(on c: any SQLConnection) throws(StoreError) -> [PrincipalRow] {
        try c.query("SELECT \(principalColumns) FROM principals ORDER BY name", []).map(principalRow)
    }

    static func liveCredentials(now: Int64, on c: any SQLConnection) throws(StoreError) -> [LiveCredential] {
        try c.query(
            """
            SELECT token_hash, name, role FROM principals WHERE revoked = 0
            UNION ALL
            SELECT s.token_hash, p.name, p.role FROM sessions s
            JOIN principals p ON p.name = s.principal AND p.created_at = s.principal_created_at
            WHERE s.expires_at > $1 AND p.revoked = 0
            """, [.int(now)]
        ).map { LiveCredential(tokenHash: $0[0].text, name: $0[1].text, role: $0[2].text) }
    }

    static func setPrincipalRole(name: String, role: String, on c: any SQLConnection) throws(StoreError) -> Bool {
        !(try c.query("UPDATE principals SET role = $2 WHERE name = $1 AND revoked = 0 RETURNING name", [.text(name), .text(role)])
            .isEmpty)
    }

    /// Revokes a principal with its sign-in sessions and unused sign-in codes.
    static func revokePrincipal(name: String, on c: any SQLConnection) throws(StoreError) -> Bool {
        try transaction(c) { () throws(StoreError) in
            try c.query("DELETE FROM sessions WHERE principal = $1", [.text(name)])
            try c.query("DELETE FROM login_codes WHERE principal = $1", [.text(name)])
            return !(try c.query("UPDATE principals SET revoked = 1 WHERE name = $1 AND revoked = 0 RETURNING name", [.text(name)])
                .isEmpty)
        }
    }

    // MARK: Nodes and presence

    /// Upserts this node's heartbeat (keeping its first `started_at` of this run), deletes the rows of nodes silent
    /// for longer than `forgetAfter` ms and the presence rows of nodes silent longer than `deadAfter` ms; answers
    /// every node's row, this one first.
    static func heartbeat(_ node: NodeRow, deadAfter: Int64, forgetAfter: Int64, on c: any SQLConnection) throws(StoreError) -> [NodeRow] {
        try transaction(c) { () throws(StoreError) in try beat(node, deadAfter: deadAfter, forgetAfter: forgetAfter, on: c) }
    }

    /// `heartbeat`'s statements, inside the caller's transaction.
    private static func beat(_ node: NodeRow, deadAfter: Int64, forgetAfter: Int64, on c: any SQLConnection) throws(StoreError) -> [NodeRow] {
        do {
            try c.query(
                """
                INSERT INTO nodes (id, address, started_at, heartbeat_at) VALUES ($1, $2, $3, $4)
                ON CONFLICT (id) DO UPDATE SET address = excluded.address, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
                """, [.text(node.id), .text(node.address), .int(node.startedAt), .int(node.heartbeatAt)])
            try c.query("DELETE FROM nodes WHERE heartbeat_at < $1", [.int(node.heartbeatAt - forgetAfter)])
            try c.query(
                "DELETE FROM presence WHERE node <> $1 AND node NOT IN (SELECT id FROM nodes WHERE heartbeat_at >= $2)",
                [.text(node.id), .int(node.heartbeatAt - deadAfter)])
            return try nodes(on: c).sorted { a, b in (a.id == node.id) != (b.id == node.id) ? a.id == node.id : a.id < b.id }
        }
    }

    /// The heartbeat with leases: `heartbeat`, then this node's leases renewed to `now + leaseMs` (`held`: the
    /// instances it still owns), then up to `claimLimit` expired leases of one silent node — whose repository is in
    /// `reachableRepos` (or that have none) — claimed for this node, oldest expiry first. On PostgreSQL the silent
    /// node is taken under a transaction-scoped advisory lock and its rows with `FOR UPDATE SKIP LOCKED`, so nodes
    /// claiming at once never take the same row, and one dead node's work moves to one node. A claimed row comes
    /// back with the node that held it. Forwarded commands older than `forgetAfter` are deleted.
    static func heartbeat(
        _ node: NodeRow, deadAfter: Int64, forgetAfter: Int64, leaseMs: Int64, reachableRepos: [String], claimLimit: Int, on c: any SQLConnection
    ) throws(StoreError) -> HeartbeatResult {
        try transaction(c) { () throws(StoreError) in
            let nodes = try beat(node, deadAfter: deadAfter, forgetAfter: forgetAfter, on: c)
            let now = node.heartbeatAt
            let held = try c.query("UPDATE leases SET expires_at = $2 WHERE node = $1 RETURNING workflow", [.text(node.id), .int(now + leaseMs)])
                .map { $0[0].text }
            var claimed: [LeaseRow] = []
            let repos = [""] + reachableRepos
            let placeholders = repos.indices.map { "$\($0 + 3)" }.joined(separator: ", ")
            // The silent node whose lease expired first; on PostgreSQL only if no other node is taking it over right
            // now (a transaction-scoped advisory lock on its name), so all of its work moves to one node together
            // (a bug and its proposal stay on one node).
            let dead = try c.query(
                """
                SELECT node FROM leases WHERE expires_at < $1 AND repo IN (\(placeholders)) AND node <> $2
                GROUP BY node ORDER BY min(expires_at), node
                """, [.int(now), .text(node.id)] + repos.map { .text($0) }
            ).map { $0[0].text } + [node.id]   // this node's own expired leases (it restarted) last
            for from in dead where claimLimit > 0 {
                if c.dialect == .postgres {
                    guard try c.query("SELECT pg_try_advisory_xact_lock(hashtext('medic-takeover:' || $1))", [.text(from)]).first?[0].text == "t"
                    else { continue }
                }
                let lock = c.dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
                let candidates = try c.query(
                    """
                    SELECT workflow, node, repo, expires_at, claimed_at FROM leases
                    WHERE node = $1 AND expires_at < $2 AND repo IN (\(repos.indices.map { "$\($0 + 4)" }.joined(separator: ", ")))
                    ORDER BY expires_at, workflow LIMIT $3\(lock)
                    """, [.text(from), .int(now), .int(Int64(claimLimit))] + repos.map { .text($0) })
                if candidates.isEmpty { continue }
                for row in candidates {
                    try c.query(
                        "UPDATE leases SET node = $2, expires_at = $3, claimed_at = $4 WHERE workflow = $1",
                        [row[0], .text(node.id), .int(now + leaseMs), .int(now)])
                    claimed.append(LeaseRow(workflow: row[0].text, node: row[1].text, repo: row[2].text, expiresAt: row[3].int, claimedAt: row[4].int))
                }
                break   // one node's work per heartbeat
            }
            try c.query("DELETE FROM forwarded_commands WHERE created_at < $1", [.int(now - forgetAfter)])
            return HeartbeatResult(nodes: nodes, held: held, claimed: claimed)
        }
    }

    /// Claims `workflow` for `node` until `now + leaseMs` — when nobody holds it, `node` already does, or the holder
    /// let it expire — and answers the lease as it is now (another node's, when it holds it). `repo` is recorded
    /// when given. One statement (an upsert that locks the row): two nodes claiming at once get one owner.
    static func claimLease(workflow: String, node: String, repo: String, now: Int64, leaseMs: Int64, on c: any SQLConnection) throws(StoreError)
        -> LeaseRow
    {
        try c.query(
            """
            INSERT INTO leases (workflow, node, repo, expires_at, claimed_at) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (workflow) DO UPDATE SET node = excluded.node, expires_at = excluded.expires_at,
                claimed_at = CASE WHEN leases.node = excluded.node THEN leases.claimed_at ELSE excluded.claimed_at END,
                repo = CASE WHEN excluded.repo <> '' THEN excluded.repo ELSE leases.repo END
            WHERE leases.node = excluded.node OR leases.expires_at < excluded.claimed_at
            """, [.text(workflow), .text(node), .text(repo), .int(now + leaseMs), .int(now)])
        guard let row = try c.query("SELECT workflow, node, repo, expires_at, claimed_at FROM leases WHERE workflow = $1", [.text(workflow)]).first
        else { throw .invalid("lease of \(workflow) vanished while claiming it") }
        return LeaseRow(workflow: row[0].text, node: row[1].text, repo: row[2].text, expiresAt: row[3].int, claimedAt: row[4].int)
    }

    /// Gives up `node`'s lease of `workflow` (its instance left the node's memory, or finished).
    static func releaseLease(workflow: String, node: String, on c: any SQLConnection) throws(StoreError) {
        try c.query("DELETE FROM leases WHERE workflow = $1 AND node = $2", [.text(workflow), .text(node)])
    }

    /// Marks every lease of `node` expired (a node starting again under its name: what it ran is claimed afresh).
    static func expireLeases(node: String, on c: any SQLConnection) throws(StoreError) {
        try c.query("UPDATE leases SET expires_at = 0 WHERE node = $1", [.text(node)])
    }

    /// Every lease, by instance.
    static func leases(on c: any SQLConnection) throws(StoreError) -> [LeaseRow] {
        try c.query("SELECT workflow, node, repo, expires_at, claimed_at FROM leases ORDER BY workflow", []).map {
            LeaseRow(workflow: $0[0].text, node: $0[1].text, repo: $0[2].text, expiresAt: $0[3].int, claimedAt: $0[4].int)
        }
    }

    /// Stores a command for the owner of its instance and (PostgreSQL) NOTIFYs `medic_forward` "to <node> <id>".
    static func forward(_ command: ForwardedCommand, on c: any SQLConnection) throws(StoreError) -> Int64 {
        try transaction(c) { () throws(StoreError) in
            guard let id = try c.query(
                """
                INSERT INTO forwarded_commands (to_node, from_node, workflow, principal, role, request, created_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id
                """,
                [.text(command.toNode), .text(command.fromNode), .text(command.workflow), .text(command.principal), .text(command.role),
                 .text(command.request), .int(command.createdAt)]).first?[0].int
            else { throw .invalid("no id for the forwarded command") }
            if c.dialect == .postgres { try c.query("SELECT pg_notify('medic_forward', $1)", [.text("to \(command.toNode) \(id)")]) }
            return id
        }
    }

    /// Commands forwarded to `node` not answered yet, oldest first.
    static func pendingForwarded(node: String, on c: any SQLConnection) throws(StoreError) -> [ForwardedCommand] {
        try c.query(
            """
            SELECT id, to_node, from_node, workflow, principal, role, request, created_at FROM forwarded_commands
            WHERE to_node = $1 AND answered_at IS NULL ORDER BY id LIMIT 100
            """, [.text(node)]
        ).map {
            ForwardedCommand(
                id: $0[0].int, toNode: $0[1].text, fromNode: $0[2].text, workflow: $0[3].text, principal: $0[4].text, role: $0[5].text,
                request: $0[6].text, createdAt: $0[7].int)
        }
    }

    /// Records the owner's answer (once) and NOTIFYs `medic_forward` "answered <from node> <id>".
    static func answerForwarded(id: Int64, answer: String, now: Int64, on c: any SQLConnection) throws(StoreError) {
        try transaction(c) { () throws(StoreError) in
            let from = try c.query(
                "UPDATE forwarded_commands SET answer = $2, answered_at = $3 WHERE id = $1 AND answered_at IS NULL RETURNING from_node",
                [.int(id), .text(answer), .int(now)]).first?[0].text
            if let from, c.dialect == .postgres { try c.query("SELECT pg_notify('medic_forward', $1)", [.text("answered \(from) \(id)")]) }
        }
    }

    /// The owner's answer to forwarded command `id` (nil while there is none).
    static func forwardedAnswer(id: Int64, on c: any SQLConnection) throws(StoreError) -> String? {
        guard let row = try c.query("SELECT answer FROM forwarded_commands WHERE id = $1", [.int(id)]).first, row[0] != .null else { return nil }
        return row[0].text
    }

    /// Every node's row, by name.
    static func nodes(on c: any SQLConnection) throws(StoreError) -> [NodeRow] {
        try c.query("SELECT id, address, started_at, heartbeat_at FROM nodes ORDER BY id", []).map {
            NodeRow(id: $0[0].text, address: $0[1].text, startedAt: $0[2].int, heartbeatAt: $0[3].int)
        }
    }

    /// Replaces `node`'s members of each topic (JSON arrays; an empty string deletes the row), and NOTIFYs
    /// `medic_presence` with each topic on PostgreSQL (delivered only if the transaction commits).
    static func setPresence(node: String, members: [(topic: String, json: String)], on c: any SQLConnection) throws(StoreError) {
        try transaction(c) { () throws(StoreError) in
            for (topic, json) in members {
                if json.isEmpty {
                    try c.query("DELETE FROM presence WHERE node = $1 AND topic = $2", [.text(node), .text(topic)])
                } else {
                    try c.query(
                        "INSERT INTO presence (node, topic, members) VALUES ($1, $2, $3) ON CONFLICT (node, topic) DO UPDATE SET members = excluded.members",
                        [.text(node), .text(topic), .text(json)])
                }
                if c.dialect == .postgres { try c.query("SELECT pg_notify('medic_presence', $1)", [.text(topic)]) }
            }
        }
    }

    /// Every node's members of `topic` (node → JSON array), this node's included.
    static func presence(topic: String, on c: any SQLConnection) throws(StoreError) -> [(node: String, json: String)] {
        try c.query("SELECT node, members FROM presence WHERE topic = $1 ORDER BY node", [.text(topic)]).map { ($0[0].text, $0[1].text) }
    }

    /// Deletes every presence row of `node` (a node starting again under the same name: its old members are gone).
    static func clearPresence(node: String, on c: any SQLConnection) throws(StoreError) {
        try c.query("DELETE FROM presence WHERE node = $1", [.text(node)])
    }

    /// Runs `body` in a transaction of its own, rolling back on error.
    static func transaction<T>(_ c: any SQLConnection, _ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try c.begin()
        do throws(StoreError) {
            let value = try body()
            try c.execute("COMMIT")
            return value
        } catch {
            if error.scope != .connection { try? c.execute("ROLLBACK") }
            throw error
        }
    }
}
