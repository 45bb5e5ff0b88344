// QuerySource: running SQL that an LLM wrote against a team's own database without any way to write. The
// databases enforce it (issue 14, "Safety, enforced by the database engines, not by string matching"):
// SQLite sources are opened read-only, with `query_only`, an authorizer that allows only reads of allowed
// tables, one statement, `sqlite3_stmt_readonly`, and a progress-handler deadline; PostgreSQL sources run in
// `BEGIN READ ONLY` with local statement and idle timeouts, one statement through the extended protocol, and
// the planner's relation list checked against the allow-list before anything runs. Results are capped in
// rows and bytes; sensitive columns never come back. Blocking: the host calls these on a worker thread.
public import Protocol

/// What a source allows.
public struct SourcePolicy: Sendable, Equatable {
    /// Tables that may be read (lowercase); nil: every table of the database except the engine's own.
    public var allowedTables: Set<String>?
    /// Columns that never come back (lowercase `column` or `table.column`): SQLite reads them as NULL (shown
    /// masked); a PostgreSQL statement that references one is refused.
    public var sensitiveColumns: Set<String>
    /// Most rows returned (default 1,000); more are counted as truncated.
    public var maxRows: Int
    /// Most bytes of cell text returned (default 1 MiB).
    public var maxBytes: Int
    /// Deadline of one statement (default 5 s).
    public var timeoutMilliseconds: Int

    public init(
        allowedTables: Set<String>? = nil, sensitiveColumns: Set<String> = [], maxRows: Int = 1000, maxBytes: Int = 1 << 20,
        timeoutMilliseconds: Int = 5000
    ) {
        self.allowedTables = allowedTables.map { Set($0.map { $0.lowercased() }) }
        self.sensitiveColumns = Set(sensitiveColumns.map { $0.lowercased() })
        self.maxRows = max(1, maxRows)
        self.maxBytes = max(1024, maxBytes)
        self.timeoutMilliseconds = max(10, timeoutMilliseconds)
    }

    func allows(table: String) -> Bool {
        let name = table.lowercased()
        return allowedTables?.contains(name) ?? true
    }

    func isSensitive(table: String?, column: String) -> Bool {
        let column = column.lowercased()
        return sensitiveColumns.contains(column) || table.map { sensitiveColumns.contains($0.lowercased() + "." + column) } == true
    }
}

/// A statement's result.
public struct QueryResult: Sendable, Equatable {
    public var columns: [String]
    public var rows: [[JSONValue]]
    /// Rows seen (up to one past the cap).
    public var rowCount: Int
    public var truncated: Bool
    public var durationMs: Int
    /// Result columns that came from a sensitive column (their values are masked).
    public var maskedColumns: [String]

    public var json: JSONValue {
        .object([
            "columns": .array(columns.map { .string($0) }), "rows": .array(rows.map { .array($0) }), "row_count": .int(Int64(rowCount)),
            "truncated": .bool(truncated), "duration_ms": .int(Int64(durationMs)), "masked_columns": .array(maskedColumns.map { .string($0) }),
        ])
    }
}

/// Why a statement did not run (or stopped). `code` is stable: the audit log and the wire use it.
public struct QueryRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case empty, tooLarge = "too_large", multipleStatements = "multiple_statements", notReadOnly = "not_read_only"
        case notAllowed = "not_allowed", sensitiveColumn = "sensitive_column", timeout, invalid, unavailable
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// A column of a table, as introspection sees it.
public struct ColumnInfo: Sendable, Equatable {
    public var name: String
    public var type: String
    public var nullable: Bool
    public var primaryKey: Bool
    public var sensitive: Bool
    /// A few distinct values of a low-cardinality text column (never of a sensitive one).
    public var sampleValues: [String]
}

public struct TableInfo: Sendable, Equatable {
    public var name: String
    public var columns: [ColumnInfo]
    public var rowEstimate: Int
}

/// A source the host can ask. Blocking; one statement at a time per source object.
public protocol QuerySource: AnyObject {
    var kind: String { get }
    /// Runs one statement; `parameters` bind `?N` (SQLite) / `$N` (PostgreSQL) placeholders.
    func run(_ sql: String, parameters: [JSONValue]) -> Result<QueryResult, QueryRefusal>
    func tables() -> Result<[TableInfo], QueryRefusal>
}

extension QuerySource {
    public func run(_ sql: String) -> Result<QueryResult, QueryRefusal> { run(sql, parameters: []) }

    /// A structured query (`StructuredQuery`) compiled against this source's schema and run.
    public func run(structured request: JSONValue) -> Result<(CompiledQuery, QueryResult), QueryRefusal> {
        let dialect: StructuredQuery.Dialect = kind == "postgres" ? .postgres : .sqlite
        return tables().flatMap { StructuredQuery.compile(request, tables: $0, dialect: dialect) }
            .flatMap { compiled in run(compiled.sql, parameters: compiled.parameters).map { (compiled, $0) } }
    }
}

/// The longest statement accepted (an LLM's SQL is short; 100 KB is an attack).
public let maxStatementBytes = 16 << 10

func checkStatementText(_ sql: String) -> QueryRefusal? {
    if sql.utf8.count > maxStatementBytes { return QueryRefusal(.tooLarge, "the statement is \(sql.utf8.count) bytes; at most \(maxStatementBytes)") }
    if sql.allSatisfy({ $0.isWhitespace || $0 == ";" }) { return QueryRefusal(.empty, "the statement is empty") }
    if sql.utf8.contains(0) { return QueryRefusal(.invalid, "the statement contains a NUL byte") }
    return nil
}
