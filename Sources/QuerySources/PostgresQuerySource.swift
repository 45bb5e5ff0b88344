// PostgresQuerySource: an application's PostgreSQL database as a read-only source, over its own libpq
// connection (PostgreSQL docs: SET TRANSACTION READ ONLY, statement_timeout, EXPLAIN (VERBOSE, FORMAT JSON),
// libpq extended query protocol — one statement per PQexecParams — and single-row mode).
import CLibPQ
import Dispatch
import Foundation
public import Protocol

public final class PostgresQuerySource: QuerySource {
    public let kind = "postgres"
    private var conn: OpaquePointer?
    private let url: String
    private let policy: SourcePolicy

    public init(url: String, policy: SourcePolicy) throws(QueryRefusal) {
        self.url = url
        self.policy = policy
        try connect()
    }

    deinit { PQfinish(conn) }

    private func connect() throws(QueryRefusal) {
        PQfinish(conn)
        conn = nil
        let keys = ["dbname", "connect_timeout", "application_name"]
        let values = [url, "5", "medic-source"]
        let connection = withCStrings(keys) { k in withCStrings(values) { v in PQconnectdbParams(k, v, 1) } }
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            let message = connection.map { String(cString: PQerrorMessage($0)).trimmingCharacters(in: .whitespacesAndNewlines) } ?? "out of memory"
            PQfinish(connection)
            throw QueryRefusal(.unavailable, "cannot connect to the PostgreSQL source: \(message)")
        }
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        conn = connection
    }

    /// A live connection: reconnects once if the server went away since the last question.
    private func connection() throws(QueryRefusal) -> OpaquePointer {
        if let conn, PQstatus(conn) == CONNECTION_OK { return conn }
        try connect()
        return conn!
    }

    public func run(_ sql: String, parameters: [JSONValue]) -> Result<QueryResult, QueryRefusal> {
        if let refusal = checkStatementText(sql) { return .failure(refusal) }
        let started = DispatchTime.now().uptimeNanoseconds
        do throws(QueryRefusal) {
            let conn = try connection()
            // Everything runs inside a read-only transaction with local timeouts; it is always rolled back.
            try exec(conn, "BEGIN TRANSACTION READ ONLY ISOLATION LEVEL REPEATABLE READ")
            defer { PQclear(PQexec(conn, "ROLLBACK")) }
            let ms = policy.timeoutMilliseconds
            try exec(conn, "SET LOCAL statement_timeout = \(ms)")
            try exec(conn, "SET LOCAL lock_timeout = \(ms)")
            try exec(conn, "SET LOCAL idle_in_transaction_session_timeout = \(ms * 2)")
            let values: [String?] = parameters.map { value in
                switch value {
                case .int(let n): String(n)
                case .number(let d): String(d)
                case .bool(let b): b ? "true" : "false"
                case .string(let text): text
                case .null, .array, .object: nil
                }
            }
            try checkPlan(conn, sql, values)
            var result = try fetch(conn, sql, values)
            result.durationMs = Int((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000)
            return .success(result)
        } catch {
            return .failure(error)
        }
    }

    /// The planner's view of the statement, before it runs: it must be a plan (EXPLAIN refuses COPY, SET,
    /// transaction control and anything else that is not a query), must not modify a table, and may touch only
    /// allowed relations and no sensitive column. EXPLAIN without ANALYZE executes nothing.
    private func checkPlan(_ conn: OpaquePointer, _ sql: String, _ values: [String?]) throws(QueryRefusal) {
        let res = withParameters(values) { count, pointers in PQexecParams(conn, "EXPLAIN (VERBOSE, FORMAT JSON) " + sql, count, nil, pointers, nil, nil, 0) }
        defer { PQclear(res) }
        guard PQresultStatus(res) == PGRES_TUPLES_OK, PQntuples(res) == 1, let text = PQgetvalue(res, 0, 0) else {
            throw refusal(res, conn)
        }
        guard let plan = try? JSONValue.parse(String(cString: text)) else { throw QueryRefusal(.invalid, "unreadable plan") }
        var relations: [(schema: String, name: String)] = []
        var expressions: [String] = []
        var modifies = false
        // Which node outputs say what the statement reads: the top node (what it returns) and every node that
        // computes something. Scans and pass-through nodes are skipped: the planner gives them the table's
        // whole row ("physical tlist") whatever the statement needs, so they would name every column.
        let passThrough: Set<String> = ["Hash", "Materialize", "Memoize", "Gather", "Gather Merge", "Sort", "Incremental Sort", "Unique", "Limit", "Append", "Result"]
        func walk(_ node: JSONValue, top: Bool) {
            switch node {
            case .array(let items): items.forEach { walk($0, top: top) }
            case .object(let object):
                let type = object["Node Type"]?.stringValue
                if type == "ModifyTable" { modifies = true }
                if let name = object["Relation Name"]?.stringValue { relations.append((object["Schema"]?.stringValue ?? "", name)) }
                if let type, top || (!type.hasSuffix("Scan") && !passThrough.contains(type)) {
                    for item in object["Output"]?.arrayValue ?? [] { if let s = item.stringValue { expressions.append(s) } }
                }
                for key in ["Filter", "Index Cond", "Hash Cond", "Merge Cond", "Join Filter", "Recheck Cond", "Sort Key", "Group Key", "Presorted Key"] {
                    if let s = object[key]?.stringValue { expressions.append(s) }
                    for item in object[key]?.arrayValue ?? [] { if let s = item.stringValue { expressions.append(s) } }
                }
                for member in object.members where member.key != "Output" {
                    walk(member.value, top: top && type == nil)
                }
            default: break
            }
        }
        walk(plan, top: true)
        if modifies { throw QueryRefusal(.notReadOnly, "the statement would modify a table") }
        for relation in relations {
            if relation.schema == "pg_catalog" || relation.schema == "information_schema" || !policy.allows(table: relation.name) {
                throw QueryRefusal(.notAllowed, "table \(relation.schema.isEmpty ? "" : relation.schema + ".")\(relation.name) is not allowed for questions")
            }
        }
        // Column references appear as table.column, or bare when one relation is scanned; a sensitive one
        // refuses the statement (conservative: a string literal equal to a sensitive name refuses too).
        let tables = Set(relations.map { $0.name.lowercased() })
        for expression in expressions {
            for token in expression.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == ".") }) {
                let parts = token.split(separator: ".").map(String.init)
                guard let column = parts.last else { continue }
                let sensitive = parts.count >= 2
                    ? policy.isSensitive(table: parts[parts.count - 2], column: column) || tables.contains { policy.isSensitive(table: $0, column: column) }
                    : tables.contains { policy.isSensitive(table: $0, column: column) } || policy.isSensitive(table: nil, column: column)
                if sensitive {
                    throw QueryRefusal(.sensitiveColumn, "\(token) is a sensitive column; it cannot be read, filtered or sorted by")
                }
            }
        }
    }

    /// Runs the statement in single-row mode, keeping at most the caps; then cancels the rest.
    private func fetch(_ conn: OpaquePointer, _ sql: String, _ values: [String?]) throws(QueryRefusal) -> QueryResult {
        guard withParameters(values, { count, pointers in PQsendQueryParams(conn, sql, count, nil, pointers, nil, nil, 0) }) == 1 else {
            throw refusal(nil, conn)
        }
        PQsetSingleRowMode(conn)
        var columns: [String] = []
        var rows: [[JSONValue]] = []
        var seen = 0
        var bytes = 0
        var truncated = false
        var failure: QueryRefusal?
        while let res = PQgetResult(conn) {
            defer { PQclear(res) }
            let status = PQresultStatus(res)
            if status == PGRES_SINGLE_TUPLE || status == PGRES_TUPLES_OK {
                if columns.isEmpty { columns = (0..<PQnfields(res)).map { String(cString: PQfname(res, $0)) } }
                for r in 0..<PQntuples(res) {
                    seen += 1
                    guard !truncated else { continue }
                    if rows.count >= policy.maxRows || bytes >= policy.maxBytes {
                        truncated = true
                        // Stop the server from producing more (a 10^10-row join ends here, not at the timeout).
                        if let cancel = PQgetCancel(conn) {
                            var buffer = [CChar](repeating: 0, count: 256)
                            _ = PQcancel(cancel, &buffer, 256)
                            PQfreeCancel(cancel)
                        }
                        continue
                    }
                    var row: [JSONValue] = []
                    for c in 0..<PQnfields(res) {
                        if PQgetisnull(res, r, c) == 1 { row.append(.null); continue }
                        let text = String(cString: PQgetvalue(res, r, c))
                        bytes += text.utf8.count
                        row.append(Self.value(text, type: PQftype(res, c)))
                    }
                    rows.append(row)
                }
            } else if status != PGRES_COMMAND_OK {
                let error = refusal(res, conn)
                // The cancel we sent after the cap is not a failure.
                if !(truncated && sqlState(res) == "57014") { failure = failure ?? error }
            }
        }
        if let failure { throw failure }
        return QueryResult(columns: columns, rows: rows, rowCount: seen, truncated: truncated, durationMs: 0, maskedColumns: [])
    }

    /// Numbers as numbers (int2/4/8, float4/8, numeric), booleans as booleans, the rest as text.
    private static func value(_ text: String, type: Oid) -> JSONValue {
        switch type {
        case 20, 21, 23: return Int64(text).map { .int($0) } ?? .string(text)
        case 700, 701, 1700: return Double(text).map { .number($0) } ?? .string(text)
        case 16: return .bool(text == "t")
        default: return .string(text)
        }
    }

    private func exec(_ conn: OpaquePointer, _ sql: String) throws(QueryRefusal) {
        let res = PQexec(conn, sql)
        defer { PQclear(res) }
        guard PQresultStatus(res) == PGRES_COMMAND_OK else { throw refusal(res, conn) }
    }

    private func sqlState(_ res: OpaquePointer?) -> String? {
        guard let res, let code = PQresultErrorField(res, Int32(UInt8(ascii: "C"))) else { return nil }
        return String(cString: code)
    }

    /// The server's error as a refusal with a stable code (SQLSTATE classes).
    private func refusal(_ res: OpaquePointer?, _ conn: OpaquePointer) -> QueryRefusal {
        let message = (res.map { String(cString: PQresultErrorMessage($0)) } ?? String(cString: PQerrorMessage(conn)))
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if PQstatus(conn) != CONNECTION_OK { return QueryRefusal(.unavailable, "the PostgreSQL source is down: \(message)") }
        switch sqlState(res) {
        case "57014": return QueryRefusal(.timeout, "the statement ran past \(policy.timeoutMilliseconds) ms and was stopped")
        case "25006": return QueryRefusal(.notReadOnly, message)
        case "42501": return QueryRefusal(.notAllowed, message)
        case "42601" where message.contains("multiple commands"): return QueryRefusal(.multipleStatements, "one statement at a time")
        default: return QueryRefusal(.invalid, message)
        }
    }

    /// Tables of schema `public` that are allowed, with columns, primary keys, row estimates (pg_class.reltuples)
    /// and a few values of low-cardinality text columns.
    public func tables() -> Result<[TableInfo], QueryRefusal> {
        do throws(QueryRefusal) {
            let conn = try connection()
            let res = PQexec(conn, """
                SELECT c.table_name, c.column_name, c.data_type, c.is_nullable = 'YES',
                    EXISTS (SELECT 1 FROM information_schema.table_constraints t JOIN information_schema.key_column_usage k
                        ON k.constraint_name = t.constraint_name AND k.table_name = t.table_name
                        WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_name = c.table_name AND k.column_name = c.column_name),
                    COALESCE((SELECT reltuples::bigint FROM pg_class WHERE relname = c.table_name AND relkind IN ('r', 'v', 'm') LIMIT 1), 0)
                FROM information_schema.columns c WHERE c.table_schema = 'public' ORDER BY c.table_name, c.ordinal_position
                """)
            defer { PQclear(res) }
            guard PQresultStatus(res) == PGRES_TUPLES_OK else { throw refusal(res, conn) }
            var tables: [TableInfo] = []
            for r in 0..<PQntuples(res) {
                let table = String(cString: PQgetvalue(res, r, 0))
                guard policy.allows(table: table) else { continue }
                let column = String(cString: PQgetvalue(res, r, 1))
                let info = ColumnInfo(
                    name: column, type: String(cString: PQgetvalue(res, r, 2)), nullable: String(cString: PQgetvalue(res, r, 3)) == "t",
                    primaryKey: String(cString: PQgetvalue(res, r, 4)) == "t", sensitive: policy.isSensitive(table: table, column: column), sampleValues: [])
                if tables.last?.name == table { tables[tables.count - 1].columns.append(info) } else {
                    tables.append(TableInfo(name: table, columns: [info], rowEstimate: max(0, Int(String(cString: PQgetvalue(res, r, 5))) ?? 0)))
                }
            }
            for t in tables.indices {
                for c in tables[t].columns.indices where !tables[t].columns[c].sensitive && ["text", "character varying"].contains(tables[t].columns[c].type) {
                    let column = quoteIdentifier(tables[t].columns[c].name)
                    if case .success(let values) = run("SELECT DISTINCT \(column) FROM \(quoteIdentifier(tables[t].name)) WHERE \(column) IS NOT NULL LIMIT 21"),
                        values.rows.count <= 20
                    {
                        tables[t].columns[c].sampleValues = values.rows.prefix(8).compactMap { $0.first?.stringValue }
                    }
                }
            }
            return .success(tables)
        } catch {
            return .failure(error)
        }
    }

    private func quoteIdentifier(_ name: String) -> String { "\"" + name.replacingAll("\"", with: "\"\"") + "\"" }
}

/// Calls `body` with libpq's parameter array (text format; nil is SQL NULL).
func withParameters<R>(_ values: [String?], _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    guard !values.isEmpty else { return body(0, nil) }
    let pointers = values.map { $0.map { strdup($0) } ?? nil }
    defer { pointers.forEach { free($0) } }
    let array = pointers.map { $0.map { UnsafePointer($0) } }
    return array.withUnsafeBufferPointer { body(Int32(values.count), $0.baseAddress) }
}

/// Calls `body` with a NULL-terminated array of C strings.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) }
    defer { pointers.forEach { free($0) } }
    let array = pointers.map { UnsafePointer($0) } + [nil]
    return array.withUnsafeBufferPointer { body($0.baseAddress!) }
}
