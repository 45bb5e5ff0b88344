// SQLiteQuerySource: an application's SQLite database as a read-only source (sqlite.org/c3ref: open_v2,
// set_authorizer, progress_handler, stmt_readonly, column_table_name).
import CSQLite
import Dispatch
public import Protocol

public final class SQLiteQuerySource: QuerySource {
    public let kind = "sqlite"
    private var db: OpaquePointer?
    private let policy: SourcePolicy
    /// Read by the C callbacks through an unmanaged pointer (same thread, during prepare/step only).
    private let guardState: GuardState

    /// What the authorizer and progress handler consult while a statement is prepared and stepped.
    final class GuardState {
        let policy: SourcePolicy
        var deadline: UInt64 = .max
        var timedOut = false
        /// The first refusal the authorizer made (its reason beats SQLite's generic "not authorized").
        var refusal: QueryRefusal?

        init(policy: SourcePolicy) { self.policy = policy }
    }

    /// Opens `path` read-only (`SQLITE_OPEN_READONLY`: the engine refuses every write, whatever the SQL), with
    /// `query_only`, no attached databases, and the authorizer and deadline installed. (Extension loading is off
    /// by default in SQLite and `load_extension` is denied by the authorizer as well.)
    public init(path: String, policy: SourcePolicy) throws(QueryRefusal) {
        self.policy = policy
        guardState = GuardState(policy: policy)
        var handle: OpaquePointer?
        let rc = sqlite3_open_v2(path, &handle, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw QueryRefusal(.unavailable, "cannot open SQLite source \(path): \(message)")
        }
        db = handle
        sqlite3_extended_result_codes(handle, 1)
        guard sqlite3_exec(handle, "PRAGMA query_only = 1", nil, nil, nil) == SQLITE_OK else {
            throw QueryRefusal(.unavailable, "cannot make \(path) query-only: \(String(cString: sqlite3_errmsg(handle)))")
        }
        // Sanity: the file is a database (a wrong path fails here, not at the first question).
        guard sqlite3_exec(handle, "SELECT count(*) FROM sqlite_master", nil, nil, nil) == SQLITE_OK else {
            throw QueryRefusal(.unavailable, "\(path) is not a readable SQLite database: \(String(cString: sqlite3_errmsg(handle)))")
        }
        sqlite3_limit(handle, SQLITE_LIMIT_LENGTH, Int32(policy.maxBytes * 2))
        sqlite3_limit(handle, SQLITE_LIMIT_ATTACHED, 0)
        Self.installAuthorizer(handle, guardState)
        let state = Unmanaged.passUnretained(guardState).toOpaque()
        sqlite3_progress_handler(handle, 1000, { state in
            let guardState = Unmanaged<GuardState>.fromOpaque(state!).takeUnretainedValue()
            if DispatchTime.now().uptimeNanoseconds > guardState.deadline {
                guardState.timedOut = true
                return 1  // interrupts the statement (SQLITE_INTERRUPT)
            }
            return 0
        }, state)
    }

    deinit { sqlite3_close_v2(db) }

    /// Puts `authorize` in front of every statement `db` prepares. The state is passed unretained: the source
    /// owns it for as long as the connection lives.
    private static func installAuthorizer(_ db: OpaquePointer, _ state: GuardState) {
        sqlite3_set_authorizer(db, { state, action, a, b, database, view in
            let guardState = Unmanaged<GuardState>.fromOpaque(state!).takeUnretainedValue()
            return SQLiteQuerySource.authorize(
                guardState, action, a.map { String(cString: $0) }, b.map { String(cString: $0) }, database: database.map { String(cString: $0) },
                view: view.map { String(cString: $0) })
        }, Unmanaged.passUnretained(state).toOpaque())
    }

    /// The authorizer (sqlite.org/c3ref/set_authorizer.html): reads of allowed tables, SELECT, recursive CTEs
    /// and harmless functions; everything else — writes, DDL, ATTACH, PRAGMA, transactions, `load_extension`
    /// and the file functions — is denied. A sensitive column reads as NULL (SQLITE_IGNORE).
    /// `view` is the innermost view (or trigger) the access comes from: an allowed view may read the tables it
    /// is defined over (so a source can allow exactly a set of views, as Medic's own store does).
    static func authorize(_ state: GuardState, _ action: Int32, _ a: String?, _ b: String?, database: String?, view: String? = nil) -> Int32 {
        switch action {
        case SQLITE_SELECT, SQLITE_RECURSIVE:
            return SQLITE_OK
        case SQLITE_READ:
            let table = a ?? ""
            // A common table expression's columns are read with no database: they are the query's own rows.
            guard database != nil else { return SQLITE_OK }
            if let view, !view.isEmpty, !view.lowercased().hasPrefix("sqlite_"), state.policy.allows(table: view), state.policy.allowedTables != nil {
                if let column = b, state.policy.isSensitive(table: table, column: column) { return SQLITE_IGNORE }
                return SQLITE_OK
            }
            if table.lowercased().hasPrefix("sqlite_") || !state.policy.allows(table: table) {
                if state.refusal == nil { state.refusal = QueryRefusal(.notAllowed, "table \(table) is not allowed for questions") }
                return SQLITE_DENY
            }
            if let column = b, state.policy.isSensitive(table: table, column: column) { return SQLITE_IGNORE }
            return SQLITE_OK
        case SQLITE_FUNCTION:
            let name = (b ?? "").lowercased()
            let denied: Set<String> = ["load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "sqlite_dbpage", "zipfile", "sqlar_compress", "sqlar_uncompress"]
            if denied.contains(name) {
                if state.refusal == nil { state.refusal = QueryRefusal(.notAllowed, "function \(name) is not allowed") }
                return SQLITE_DENY
            }
            return SQLITE_OK
        default:
            if state.refusal == nil { state.refusal = QueryRefusal(.notReadOnly, "only reading is allowed (SQLite refused action \(action))") }
            return SQLITE_DENY
        }
    }

    public func run(_ sql: String, parameters: [JSONValue]) -> Result<QueryResult, QueryRefusal> {
        if let refusal = checkStatementText(sql) { return .failure(refusal) }
        guard let db else { return .failure(QueryRefusal(.unavailable, "the source is closed")) }
        let started = DispatchTime.now().uptimeNanoseconds
        guardState.refusal = nil
        guardState.timedOut = false
        guardState.deadline = started + UInt64(policy.timeoutMilliseconds) * 1_000_000
        defer { guardState.deadline = .max }
        var statement: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        let bytes = Array(sql.utf8CString)
        let prepared: Result<OpaquePointer, QueryRefusal> = bytes.withUnsafeBufferPointer { buffer in
            let rc = sqlite3_prepare_v2(db, buffer.baseAddress, Int32(buffer.count - 1), &statement, &tail)
            guard rc == SQLITE_OK, let statement else {
                return .failure(guardState.refusal ?? QueryRefusal(.invalid, String(cString: sqlite3_errmsg(db))))
            }
            // One statement only: whatever follows must prepare to nothing (whitespace and comments).
            if let tail, tail.pointee != 0 {
                var next: OpaquePointer?
                let rest = sqlite3_prepare_v2(db, tail, -1, &next, nil)
                sqlite3_finalize(next)
                if rest != SQLITE_OK || next != nil {
                    sqlite3_finalize(statement)
                    return .failure(QueryRefusal(.multipleStatements, "one statement at a time"))
                }
            }
            return .success(statement)
        }
        guard case .success(let stmt) = prepared else {
            if case .failure(let refusal) = prepared { return .failure(refusal) }
            return .failure(QueryRefusal(.invalid, "cannot prepare"))
        }
        defer { sqlite3_finalize(stmt) }
        guard sqlite3_stmt_readonly(stmt) != 0 else { return .failure(QueryRefusal(.notReadOnly, "the statement would write")) }
        guard Int(sqlite3_bind_parameter_count(stmt)) == parameters.count else {
            return .failure(QueryRefusal(.invalid, "the statement has \(sqlite3_bind_parameter_count(stmt)) parameters, \(parameters.count) given"))
        }
        for (i, value) in parameters.enumerated() {
            let index = Int32(i + 1)
            switch value {
            case .int(let n): sqlite3_bind_int64(stmt, index, n)
            case .number(let d): sqlite3_bind_double(stmt, index, d)
            case .bool(let b): sqlite3_bind_int64(stmt, index, b ? 1 : 0)
            case .string(let text): _ = csqlite_bind_text_transient(stmt, index, text, Int32(text.utf8.count))
            case .null, .array, .object: sqlite3_bind_null(stmt, index)
            }
        }
        let count = Int(sqlite3_column_count(stmt))
        var columns: [String] = []
        var masked: [String] = []
        for i in 0..<count {
            let name = sqlite3_column_name(stmt, Int32(i)).map { String(cString: $0) } ?? "column\(i + 1)"
            columns.append(name)
            // A sensitive column read as NULL has lost its origin; its output name still says what it was.
            let origin = sqlite3_column_origin_name(stmt, Int32(i)).map { String(cString: $0) } ?? name
            if policy.isSensitive(table: sqlite3_column_table_name(stmt, Int32(i)).map { String(cString: $0) }, column: origin)
                || policy.sensitiveColumns.contains(where: { $0 == name.lowercased() || $0.hasSuffix("." + name.lowercased()) })
            {
                masked.append(name)
            }
        }
        var rows: [[JSONValue]] = []
        var seen = 0
        var bytesUsed = 0
        var truncated = false
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else {
                if guardState.timedOut || rc == SQLITE_INTERRUPT {
                    return .failure(QueryRefusal(.timeout, "the statement ran past \(policy.timeoutMilliseconds) ms and was stopped"))
                }
                return .failure(guardState.refusal ?? QueryRefusal(.invalid, String(cString: sqlite3_errmsg(db))))
            }
            seen += 1
            if rows.count >= policy.maxRows || bytesUsed >= policy.maxBytes {
                truncated = true
                break
            }
            var row: [JSONValue] = []
            for i in 0..<count {
                let value = Self.value(stmt, Int32(i))
                if masked.contains(columns[i]) {
                    row.append(.string("[masked]"))
                    continue
                }
                if case .string(let text) = value { bytesUsed += text.utf8.count }
                row.append(value)
            }
            rows.append(row)
        }
        let duration = Int((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000)
        return .success(QueryResult(columns: columns, rows: rows, rowCount: seen, truncated: truncated, durationMs: duration, maskedColumns: masked))
    }

    private static func value(_ stmt: OpaquePointer, _ i: Int32) -> JSONValue {
        switch sqlite3_column_type(stmt, i) {
        case SQLITE_INTEGER: return .int(sqlite3_column_int64(stmt, i))
        case SQLITE_FLOAT: return .number(sqlite3_column_double(stmt, i))
        case SQLITE_NULL: return .null
        case SQLITE_BLOB: return .string("[\(sqlite3_column_bytes(stmt, i)) bytes]")
        default:
            guard let text = sqlite3_column_text(stmt, i) else { return .null }
            let count = Int(sqlite3_column_bytes(stmt, i))
            return .string(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        }
    }

    /// Tables (allowed ones), their columns and keys, row estimates, and up to 8 distinct values of text
    /// columns that have at most 20 (never of a sensitive column). Runs through the same guarded path.
    public func tables() -> Result<[TableInfo], QueryRefusal> {
        guard let db else { return .failure(QueryRefusal(.unavailable, "the source is closed")) }
        // The schema is read with the authorizer off for this one read of sqlite_master and table_info.
        sqlite3_set_authorizer(db, nil, nil)
        var names: [String] = []
        var infos: [(String, [ColumnInfo])] = []
        var stmt: OpaquePointer?
        if sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name", -1, &stmt, nil) == SQLITE_OK {
            while sqlite3_step(stmt) == SQLITE_ROW { if let t = sqlite3_column_text(stmt, 0) { names.append(String(cString: t)) } }
        }
        sqlite3_finalize(stmt)
        for name in names where policy.allows(table: name) {
            var columns: [ColumnInfo] = []
            var info: OpaquePointer?
            if sqlite3_prepare_v2(db, "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1)", -1, &info, nil) == SQLITE_OK {
                _ = csqlite_bind_text_transient(info, 1, name, -1)
                while sqlite3_step(info) == SQLITE_ROW {
                    let column = String(cString: sqlite3_column_text(info, 0))
                    columns.append(ColumnInfo(
                        name: column, type: sqlite3_column_text(info, 1).map { String(cString: $0) } ?? "", nullable: sqlite3_column_int(info, 2) == 0,
                        primaryKey: sqlite3_column_int(info, 3) > 0, sensitive: policy.isSensitive(table: name, column: column), sampleValues: []))
                }
            }
            sqlite3_finalize(info)
            infos.append((name, columns))
        }
        Self.installAuthorizer(db, guardState)
        var out: [TableInfo] = []
        for (name, columns) in infos {
            let quoted = "\"" + name.replacingAll("\"", with: "\"\"") + "\""
            var table = TableInfo(name: name, columns: columns, rowEstimate: 0)
            if case .success(let count) = run("SELECT count(*) FROM \(quoted)"), case .int(let n)? = count.rows.first?.first { table.rowEstimate = Int(n) }
            for i in table.columns.indices where !table.columns[i].sensitive && table.columns[i].type.uppercased().contains("TEXT") {
                let column = "\"" + table.columns[i].name.replacingAll("\"", with: "\"\"") + "\""
                if case .success(let values) = run("SELECT DISTINCT \(column) FROM \(quoted) WHERE \(column) IS NOT NULL LIMIT 21"), values.rows.count <= 20 {
                    table.columns[i].sampleValues = values.rows.prefix(8).compactMap { $0.first?.stringValue }
                }
            }
            out.append(table)
        }
        return .success(out)
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
