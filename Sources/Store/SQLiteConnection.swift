// SQLiteConnection: the SQLite backend of SQLConnection (WAL, synchronous=FULL, cached prepared statements).
import CSQLite
import Foundation

/// Tunables of the SQLite backend.
struct SQLiteOptions: Sendable {
    /// How long a statement waits for another connection's lock before failing with SQLITE_BUSY
    /// (reported as store_unavailable). Default 5 s: long enough for a checkpoint or a backup, short
    /// enough that a wedged lock holder surfaces as an error rather than a hang.
    var busyTimeoutMs: Int32 = 5000
    /// Upper bound on the database size in pages (nil: SQLite's default). Tests use it to simulate a full disk.
    var maxPageCount: Int? = nil
}

/// An SQLite connection opened in WAL mode with synchronous=FULL.
///
/// Why FULL rather than NORMAL: in WAL mode NORMAL skips the fsync at commit, so a power loss can roll
/// back transactions that were already acknowledged. Our clients will have seen those events with their
/// seqs (invariant 1, "durable before visible"), and after the rollback the same seqs would be handed out
/// again with different content — a silent break of invariant 2. FULL costs one fsync of the WAL per
/// commit, and group commit amortises that over every write queued while the previous commit ran.
final class SQLiteConnection: SQLConnection {
    let dialect = SQLDialect.sqlite
    private var db: OpaquePointer?
    /// Prepared statements by SQL text; the store uses a fixed set of statements, so this stays small.
    private var statements: [String: OpaquePointer] = [:]
    private let path: String

    /// Opens (creating the file and its directory) and applies the connection pragmas.
    init(path: String, options: SQLiteOptions) throws(StoreError) {
        self.path = path
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            } catch {
                throw .unavailable("cannot create data directory \(dir): \(error)")
            }
        }
        var handle: OpaquePointer?
        // NOMUTEX: the connection is confined to one thread at a time, so SQLite's own mutex is wasted work.
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw .unavailable("cannot open SQLite database \(path): \(message) (code \(rc))")
        }
        db = handle
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, options.busyTimeoutMs)
        do throws(StoreError) {
            let mode = try query("PRAGMA journal_mode=WAL", []).first?.first?.text ?? ""
            guard mode.lowercased() == "wal" else {
                throw StoreError.unavailable("SQLite refused WAL mode for \(path) (journal_mode=\(mode))")
            }
            try execute("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            if let pages = options.maxPageCount { try query("PRAGMA max_page_count=\(pages)", []) }
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    func close() {
        for (_, stmt) in statements { sqlite3_finalize(stmt) }
        statements = [:]
        if let db { sqlite3_close_v2(db) }
        db = nil
    }

    func begin() throws(StoreError) { try execute("BEGIN IMMEDIATE") }

    func execute(_ sql: String) throws(StoreError) {
        guard let db else { throw .unavailable("SQLite connection is closed") }
        // Single statements (BEGIN, SAVEPOINT, COMMIT … run several times per group) reuse a prepared
        // statement instead of being compiled on every call.
        if !sql.contains(";") {
            try query(sql, [])
            return
        }
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &err)
        let message = err.map { String(cString: $0) }
        sqlite3_free(err)
        if rc != SQLITE_OK { throw error(rc, message, sql: sql) }
    }

    @discardableResult
    func query(_ sql: String, _ params: [SQLValue]) throws(StoreError) -> [[SQLValue]] {
        guard let db else { throw .unavailable("SQLite connection is closed") }
        let stmt: OpaquePointer
        if let cached = statements[sql] {
            stmt = cached
        } else {
            // `$N` and `?N` both number parameters in SQLite, but `$N` is a *named* parameter whose index is
            // its order of first appearance; `?N` pins the index, so rewrite.
            let text = Self.numberedParameters(sql)
            var prepared: OpaquePointer?
            let rc = sqlite3_prepare_v3(db, text, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &prepared, nil)
            guard rc == SQLITE_OK, let prepared else { throw error(rc, nil, sql: sql) }
            statements[sql] = prepared
            stmt = prepared
        }
        defer {
            sqlite3_reset(stmt)
            sqlite3_clear_bindings(stmt)
        }
        for (i, value) in params.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(stmt, index)
            case .int(let v): rc = sqlite3_bind_int64(stmt, index, v)
            case .text(let s):
                rc = s.withCString { csqlite_bind_text_transient(stmt, index, $0, Int32(s.utf8.count)) }
            }
            if rc != SQLITE_OK { throw error(rc, nil, sql: sql) }
        }
        var rows: [[SQLValue]] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc, nil, sql: sql) }
            let n = sqlite3_column_count(stmt)
            var row: [SQLValue] = []
            row.reserveCapacity(Int(n))
            for c in 0..<n {
                switch sqlite3_column_type(stmt, c) {
                case SQLITE_NULL: row.append(.null)
                case SQLITE_INTEGER: row.append(.int(sqlite3_column_int64(stmt, c)))
                default:
                    let count = Int(sqlite3_column_bytes(stmt, c))
                    if let p = sqlite3_column_text(stmt, c) {
                        row.append(.text(String(decoding: UnsafeBufferPointer(start: p, count: count), as: UTF8.self)))
                    } else {
                        row.append(.text(""))
                    }
                }
            }
            rows.append(row)
        }
        return rows
    }

    /// Maps an SQLite result code to a StoreError with the right scope.
    private func error(_ rc: Int32, _ explicit: String?, sql: String) -> StoreError {
        let message = explicit ?? db.map { String(cString: sqlite3_errmsg($0)) } ?? "closed"
        let primary = rc & 0xff
        let where_ = sql.split(separator: "\n").first.map { String($0.prefix(60)) } ?? ""
        switch primary {
        case SQLITE_CONSTRAINT:
            // Extended codes (sqlite3.h): PRIMARYKEY = 19|6<<8, UNIQUE = 19|8<<8, FOREIGNKEY = 19|3<<8.
            switch rc {
            case 19 | (6 << 8), 19 | (8 << 8): return StoreError(code: StoreError.conflict, message: message)
            case 19 | (3 << 8):
                return StoreError(code: StoreError.notFound, message: "referenced row does not exist (\(message))")
            default: return .invalid(message)
            }
        case SQLITE_BUSY, SQLITE_LOCKED:
            // Another connection (or process) holds the lock past busy_timeout. The connection itself is
            // fine, but we treat it as unavailable so requests fail fast until the backoff says retry.
            return .unavailable("SQLite database \(path) is locked by another connection: \(message)")
        case SQLITE_FULL:
            return .unavailable("SQLite database \(path) is full (disk or max_page_count): \(message)")
        case SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_READONLY, SQLITE_NOTADB, SQLITE_CORRUPT, SQLITE_NOMEM:
            return .unavailable("SQLite I/O failure on \(path): \(message) (code \(rc))")
        case SQLITE_MISUSE, SQLITE_ERROR:
            return .invalid("SQLite error in `\(where_)`: \(message)")
        default:
            return .invalid("SQLite error \(rc) in `\(where_)`: \(message)")
        }
    }

    /// `$N` → `?N`, only for `$` followed by a digit outside string literals: a JSON path such as
    /// `'$.testResult'` is SQL text, not a parameter.
    static func numberedParameters(_ sql: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(sql.utf8.count)
        var inLiteral = false
        var previous: UInt8 = 0
        for byte in sql.utf8 {
            if byte == UInt8(ascii: "'") { inLiteral.toggle() }
            if previous == UInt8(ascii: "$"), !inLiteral, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                out[out.count - 1] = UInt8(ascii: "?")
            }
            out.append(byte)
            previous = byte
        }
        return String(decoding: out, as: UTF8.self)
    }
}
