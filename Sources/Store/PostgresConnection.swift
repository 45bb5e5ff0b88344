// PostgresConnection: the libpq backend of SQLConnection (blocking calls; only ever on the store's own threads).
import CLibPQ
import Foundation

/// Tunables of the Postgres backend.
struct PostgresOptions: Sendable {
    /// libpq's connect_timeout in seconds: how long one connection attempt may take before it counts as failed.
    var connectTimeoutSeconds: Int = 5
    /// application_name reported in pg_stat_activity (lets operators and tests find our backends).
    var applicationName: String = "medic"
}

/// A libpq connection. Statements are prepared once per connection (named `s0`, `s1`, …) and executed with
/// text-format parameters.
final class PostgresConnection: SQLConnection {
    let dialect = SQLDialect.postgres
    private var conn: OpaquePointer?
    private var prepared: [String: String] = [:]

    /// Connects to `url` (a libpq URI). When the named database does not exist and `createDatabase` is
    /// set, creates it through the `postgres` maintenance database and connects again.
    init(url: String, options: PostgresOptions, createDatabase: Bool = false) throws(StoreError) {
        do throws(StoreError) {
            conn = try Self.connect(url: url, database: nil, options: options)
        } catch let error where createDatabase && error.message.contains("does not exist") {
            let name = Self.databaseName(url: url, options: options)
            let admin = try Self.connect(url: url, database: "postgres", options: options)
            defer { PQfinish(admin) }
            guard let name, let quoted = PQescapeIdentifier(admin, name, name.utf8.count) else {
                throw StoreError.invalid("cannot work out the database name in \(url)")
            }
            let sql = "CREATE DATABASE " + String(cString: quoted)
            PQfreemem(quoted)
            let res = PQexec(admin, sql)
            let status = PQresultStatus(res)
            let message = String(cString: PQresultErrorMessage(res))
            PQclear(res)
            // 42P04 duplicate_database: another process created it first — fine.
            if status != PGRES_COMMAND_OK && !message.contains("already exists") {
                throw StoreError.unavailable("cannot create database \(name): \(message)")
            }
            conn = try Self.connect(url: url, database: nil, options: options)
        }
    }

    /// One blocking connection attempt.
    private static func connect(url: String, database: String?, options: PostgresOptions) throws(StoreError)
        -> OpaquePointer
    {
        // expand_dbname=1: the first `dbname` value is parsed as a URI; later keywords override its parts.
        var keys = ["dbname", "connect_timeout", "application_name"]
        var values = [url, String(options.connectTimeoutSeconds), options.applicationName]
        if let database {
            keys.append("dbname")
            values.append(database)
        }
        let conn = withCStrings(keys) { k in withCStrings(values) { v in PQconnectdbParams(k, v, 1) } }
        guard let conn else { throw .unavailable("libpq could not allocate a connection") }
        if PQstatus(conn) != CONNECTION_OK {
            let message = String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(conn)
            throw .unavailable("cannot connect to Postgres: \(message)")
        }
        // Keep the server's notices (e.g. "relation already exists, skipping") out of our stderr.
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
        return conn
    }

    /// The database name a URL refers to (libpq parses it; we only read the result).
    private static func databaseName(url: String, options: PostgresOptions) -> String? {
        var err: UnsafeMutablePointer<CChar>?
        guard let opts = PQconninfoParse(url, &err) else {
            PQfreemem(err)
            return nil
        }
        defer { PQconninfoFree(opts) }
        var i = 0
        while let keyword = opts[i].keyword {
            if String(cString: keyword) == "dbname", let v = opts[i].val { return String(cString: v) }
            i += 1
        }
        return nil
    }

    deinit { close() }

    func close() {
        if let conn { PQfinish(conn) }
        conn = nil
        prepared = [:]
    }

    /// The raw libpq handle, for the listener's poll loop.
    var raw: OpaquePointer? { conn }

    /// The server process id of this connection (tests terminate it with pg_terminate_backend).
    var backendPID: Int32 { conn.map { PQbackendPID($0) } ?? 0 }

    func begin() throws(StoreError) { try execute("BEGIN") }

    func execute(_ sql: String) throws(StoreError) {
        guard let conn else { throw .unavailable("Postgres connection is closed") }
        let res = PQexec(conn, sql)
        defer { PQclear(res) }
        try check(res, sql: sql)
    }

    @discardableResult
    func query(_ sql: String, _ params: [SQLValue]) throws(StoreError) -> [[SQLValue]] {
        guard let conn else { throw .unavailable("Postgres connection is closed") }
        let name: String
        if let existing = prepared[sql] {
            name = existing
        } else {
            name = "s\(prepared.count)"
            let res = PQprepare(conn, name, sql, Int32(params.count), nil)
            defer { PQclear(res) }
            try check(res, sql: sql)
            prepared[sql] = name
        }
        let texts: [String?] = params.map {
            switch $0 {
            case .null: nil
            case .int(let v): String(v)
            case .text(let s): s
            }
        }
        let res = withOptionalCStrings(texts) { values in
            PQexecPrepared(conn, name, Int32(values.count), values, nil, nil, 0)
        }
        defer { PQclear(res) }
        try check(res, sql: sql)
        return rows(res)
    }

    /// Runs `statements` in libpq pipeline mode: everything is sent, then one sync, then the results are
    /// read — one network round trip for the lot instead of one per statement.
    ///
    /// After the first failing statement the server skips the rest up to the sync point (they come back as
    /// PGRES_PIPELINE_ABORTED, reported here as `nil`), so this suits all-or-nothing work: the caller
    /// inspects the results and rolls back if any is not a success. Throws only for connection failures.
    func pipeline(_ statements: [(sql: String, params: [SQLValue])]) throws(StoreError)
        -> [Result<[[SQLValue]], StoreError>?]
    {
        guard let conn else { throw .unavailable("Postgres connection is closed") }
        // Statements are prepared (synchronously, once per connection) before entering pipeline mode.
        for st in statements where prepared[st.sql] == nil {
            let name = "s\(prepared.count)"
            let res = PQprepare(conn, name, st.sql, Int32(st.params.count), nil)
            defer { PQclear(res) }
            try check(res, sql: st.sql)
            prepared[st.sql] = name
        }
        guard PQenterPipelineMode(conn) == 1 else { throw lost("cannot enter pipeline mode") }
        defer { _ = PQexitPipelineMode(conn) }
        for st in statements {
            let texts: [String?] = st.params.map {
                switch $0 {
                case .null: nil
                case .int(let v): String(v)
                case .text(let s): s
                }
            }
            let name = prepared[st.sql] ?? ""
            let sent = withOptionalCStrings(texts) { values in
                PQsendQueryPrepared(conn, name, Int32(values.count), values, nil, nil, 0)
            }
            if sent != 1 { throw lost("sending a pipelined statement failed") }
        }
        if PQpipelineSync(conn) != 1 { throw lost("sending the pipeline sync failed") }
        var results: [Result<[[SQLValue]], StoreError>?] = []
        results.reserveCapacity(statements.count)
        for st in statements {
            guard let res = PQgetResult(conn) else { throw lost("pipeline ended early") }
            let status = PQresultStatus(res)
            if status == PGRES_PIPELINE_ABORTED {
                results.append(nil)
            } else {
                do throws(StoreError) {
                    try check(res, sql: st.sql)
                    results.append(.success(rows(res)))
                } catch {
                    if error.scope == .connection {
                        PQclear(res)
                        throw error
                    }
                    results.append(.failure(error))
                }
            }
            PQclear(res)
            // Each statement's results end with a NULL.
            if let extra = PQgetResult(conn) {
                PQclear(extra)
                throw lost("unexpected extra result in pipeline")
            }
        }
        guard let sync = PQgetResult(conn) else { throw lost("pipeline sync missing") }
        let syncStatus = PQresultStatus(sync)
        PQclear(sync)
        if syncStatus != PGRES_PIPELINE_SYNC { throw lost("pipeline sync missing (status \(syncStatus.rawValue))") }
        return results
    }

    /// A connection-scoped error carrying libpq's own message.
    private func lost(_ what: String) -> StoreError {
        let detail = conn.map { String(cString: PQerrorMessage($0)) }?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return .unavailable("Postgres connection lost: \(what): \(detail)")
    }

    /// Converts a result's rows (text format) to SQLValues.
    private func rows(_ res: OpaquePointer?) -> [[SQLValue]] {
        let rows = Int(PQntuples(res))
        let cols = Int(PQnfields(res))
        var out: [[SQLValue]] = []
        out.reserveCapacity(rows)
        for r in 0..<rows {
            var row: [SQLValue] = []
            row.reserveCapacity(cols)
            for c in 0..<cols {
                if PQgetisnull(res, Int32(r), Int32(c)) != 0 {
                    row.append(.null)
                } else {
                    row.append(.text(String(cString: PQgetvalue(res, Int32(r), Int32(c)))))
                }
            }
            out.append(row)
        }
        return out
    }

    /// Throws the StoreError for a failed result; the SQLSTATE decides the scope.
    private func check(_ res: OpaquePointer?, sql: String) throws(StoreError) {
        let status = res.map { PQresultStatus($0) } ?? PGRES_FATAL_ERROR
        if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK { return }
        let connectionOK = conn.map { PQstatus($0) == CONNECTION_OK } ?? false
        var message = res.map { String(cString: PQresultErrorMessage($0)) } ?? ""
        if message.isEmpty, let conn { message = String(cString: PQerrorMessage(conn)) }
        message = message.trimmingCharacters(in: .whitespacesAndNewlines)
        let sqlstate = res.flatMap { PQresultErrorField($0, Int32(UInt8(ascii: "C"))) }.map { String(cString: $0) } ?? ""
        if !connectionOK {
            throw .unavailable("Postgres connection lost: \(message)")
        }
        throw Self.error(sqlstate: sqlstate, message: message)
    }

    /// Maps a SQLSTATE (PostgreSQL manual, Appendix A) to a StoreError.
    static func error(sqlstate: String, message: String) -> StoreError {
        switch sqlstate {
        case "23505": return StoreError(code: StoreError.conflict, message: message)
        case "23503": return StoreError(code: StoreError.notFound, message: "referenced row does not exist (\(message))")
        // 40001 serialization_failure, 40P01 deadlock_detected: the transaction is void, nothing committed.
        case "40001", "40P01": return .unavailable("transaction aborted: \(message)", scope: .transaction)
        default: break
        }
        switch sqlstate.prefix(2) {
        // 08 connection exception, 57 operator intervention (admin shutdown, crash shutdown, cannot connect
        // now), 53 insufficient resources (disk full, out of memory, too many connections), 58 system error.
        case "08", "57", "53", "58": return .unavailable("Postgres unavailable: \(message)")
        default: return .invalid("Postgres error \(sqlstate): \(message)")
        }
    }
}

/// Calls `body` with a NULL-terminated array of C strings that live for the duration of the call.
func withCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    withOptionalCStrings(strings) { body($0 + [nil]) }
}

/// Calls `body` with C strings (nil stays NULL) that live for the duration of the call.
func withOptionalCStrings<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let copies: [UnsafeMutablePointer<CChar>?] = strings.map { $0.flatMap { strdup($0) } }
    defer { for p in copies { free(p) } }
    return body(copies.map { $0.map { UnsafePointer($0) } })
}
