// SQLConnection: the small surface both backends implement, so the store's logic is written once.

/// A value bound to or read from a statement. Postgres rows come back as text (libpq text format);
/// the accessors convert, so callers never care which backend produced the row.
enum SQLValue: Sendable, Equatable {
    case null
    case int(Int64)
    case text(String)

    /// The value as an integer (0 for NULL or unparsable text — schema columns are NOT NULL where it matters).
    var int: Int64 {
        switch self {
        case .null: 0
        case .int(let v): v
        case .text(let s): Int64(s) ?? 0
        }
    }

    /// The value as text (empty for NULL).
    var text: String {
        switch self {
        case .null: ""
        case .int(let v): String(v)
        case .text(let s): s
        }
    }

    /// The value as optional text (nil for NULL).
    var optionalText: String? {
        if case .null = self { return nil }
        return text
    }
}

/// A bindable optional string.
func sqlText(_ s: String?) -> SQLValue { s.map(SQLValue.text) ?? .null }

/// Which SQL dialect a connection speaks; statements are written in the common subset with `$N`
/// placeholders and the few differing spots are chosen by dialect.
/// The SQL dialect a migration is written for (public: features declare their own migrations).
public enum SQLDialect: Sendable {
    case sqlite
    case postgres
}

/// One open database connection. Used only by the store's worker thread (or by `Store.open` before the
/// worker starts), never concurrently.
protocol SQLConnection: AnyObject {
    var dialect: SQLDialect { get }
    /// Runs one or more statements without parameters or results (DDL, BEGIN/COMMIT, savepoints).
    func execute(_ sql: String) throws(StoreError)
    /// Runs one statement with `$1…$N` parameters and returns its rows.
    @discardableResult
    func query(_ sql: String, _ params: [SQLValue]) throws(StoreError) -> [[SQLValue]]
    /// Starts a write transaction (SQLite takes the write lock up front: BEGIN IMMEDIATE).
    func begin() throws(StoreError)
    /// Releases resources; idempotent.
    func close()
}
