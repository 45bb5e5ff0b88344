// QuerySourceTests: untrusted SQL against real SQLite and PostgreSQL sources — the answers, and every hostile
// statement of issue 14 refused or contained with the database unchanged (checksum before and after).
import Foundation
import TestSupport
import Protocol
import QuerySources
import Testing

/// The customer's users table, deterministic: 2,000 rows.
private func usersRows() -> [String] {
    let regions = [("Japan", "Tokyo", "Tokyo"), ("Japan", "Osaka", "Osaka"), ("USA", "California", "San Francisco"), ("Germany", "Berlin", "Berlin")]
    return (1...2000).map { i in
        let (country, region, city) = regions[i % regions.count]
        let gender = i % 3 == 0 ? "female" : (i % 3 == 1 ? "male" : "other")
        let balance = Double((i * 37) % 2500) + 0.5
        return "(\(i), '0x\(String(i, radix: 16))', 'user\(i)@example.com', '\(gender)', \(18 + i % 50), '\(country)', '\(region)', '\(city)', \(balance), "
            + "'2026-11-\(10 + i % 20)', \(i % 7 == 0 ? 0 : 1), \(i % 100), \(i % 5 == 0 ? 1 : 0), \(i % 3), '2025-01-01', '2026-01-01')"
    }
}

private let createUsers = """
    CREATE TABLE users (id INTEGER PRIMARY KEY, wallet_address TEXT, email TEXT, gender TEXT, age INTEGER, country TEXT, region TEXT,
        city TEXT, wallet_balance_usd REAL, last_active TEXT, is_active INTEGER, activity_score INTEGER, kyc_verified INTEGER,
        kyc_level INTEGER, created_at TEXT, updated_at TEXT);
    CREATE TABLE secrets (id INTEGER PRIMARY KEY, value TEXT);
    INSERT INTO secrets VALUES (1, 'the launch codes');
    """

private let tokyo = """
    SELECT count(*) FROM users WHERE gender = 'female' AND is_active = 1 AND country = 'Japan' AND region = 'Tokyo'
        AND wallet_balance_usd > 500 AND wallet_balance_usd < 1950
    """

private let policy = SourcePolicy(allowedTables: ["users"], sensitiveColumns: ["email", "users.wallet_address"], maxRows: 100, timeoutMilliseconds: 1500)

private func sqliteSource() throws -> (SQLiteQuerySource, String) {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("medic-source-\(UUID().uuidString).sqlite").path
    let script = createUsers + "INSERT INTO users VALUES " + usersRows().joined(separator: ",\n") + ";"
    try run("/usr/bin/sqlite3", [path], input: script)
    return (try SQLiteQuerySource(path: path, policy: policy), path)
}

@discardableResult
private func run(_ executable: String, _ arguments: [String], input: String? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    // Input through a file, not a pipe: a child that exits early must not SIGPIPE the test process.
    let inputFile = FileManager.default.temporaryDirectory.appendingPathComponent("medic-input-\(UUID().uuidString)")
    try Data((input ?? "").utf8).write(to: inputFile)
    defer { try? FileManager.default.removeItem(at: inputFile) }
    process.standardInput = try FileHandle(forReadingFrom: inputFile)
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    _ = waitForExit(process)
    return String(decoding: data, as: UTF8.self)
}

private func fileChecksum(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

private func code(_ result: Result<QueryResult, QueryRefusal>) -> QueryRefusal.Code? {
    if case .failure(let refusal) = result { refusal.code } else { nil }
}


@Suite("SQLite source: read-only by the engine")
struct SQLiteSourceTests {
    @Test func answersQuestionsAndMasksSensitiveColumns() throws {
        let (source, path) = try sqliteSource()
        defer { try? FileManager.default.removeItem(atPath: path) }
        // The answer computed independently of the source: plain Swift over the same rows (Tokyo is i % 4 == 0,
        // female i % 3 == 0, inactive i % 7 == 0).
        let expected = (1...2000).filter { i in
            let balance = Double((i * 37) % 2500) + 0.5
            return i % 4 == 0 && i % 3 == 0 && i % 7 != 0 && balance > 500 && balance < 1950
        }.count
        let answer = try source.run(tokyo).get()
        #expect(expected > 10)
        #expect(answer.rows == [[.int(Int64(expected))]])
        let emails = try source.run("SELECT id, email, upper(email) AS shout, wallet_address FROM users ORDER BY id LIMIT 3").get()
        #expect(emails.maskedColumns == ["email", "wallet_address"])
        #expect(emails.rows.allSatisfy { $0[1] == "[masked]" && $0[3] == "[masked]" })
        #expect(emails.rows.allSatisfy { $0[2] == .null })  // an expression over a sensitive column reads NULL
        #expect(try source.run("SELECT count(*) FROM users WHERE email LIKE 'user1%'").get().rows == [[.int(0)]])
        let capped = try source.run("SELECT id FROM users").get()
        #expect(capped.rows.count == 100 && capped.truncated && capped.rowCount == 101)
        let tables = try source.tables().get()
        #expect(tables.map(\.name) == ["users"])
        #expect(tables[0].rowEstimate == 2000)
        #expect(tables[0].columns.first { $0.name == "region" }?.sampleValues.sorted() == ["Berlin", "California", "Osaka", "Tokyo"])
        #expect(tables[0].columns.first { $0.name == "email" }?.sensitive == true)
        #expect(tables[0].columns.first { $0.name == "email" }?.sampleValues == [])
    }

    @Test func everyHostileStatementIsRefusedAndTheDatabaseIsUnchanged() throws {
        let (source, path) = try sqliteSource()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let before = try fileChecksum(path)
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("medic-exfil-\(UUID().uuidString).db").path
        let hostile: [(String, QueryRefusal.Code)] = [
            ("DROP TABLE users", .notReadOnly),
            ("UPDATE users SET wallet_balance_usd = 0", .notReadOnly),
            ("INSERT INTO users (id) VALUES (999999)", .notReadOnly),
            ("DELETE FROM users", .notReadOnly),
            ("SELECT 1; DROP TABLE users", .multipleStatements),
            ("SELECT 1; SELECT 2", .multipleStatements),
            ("ATTACH DATABASE '\(copy)' AS x", .notReadOnly),
            ("PRAGMA writable_schema = 1", .notReadOnly),
            ("PRAGMA query_only = 0", .notReadOnly),
            ("SELECT load_extension('/tmp/evil.so')", .notAllowed),
            ("VACUUM INTO '\(copy)'", .notReadOnly),
            ("BEGIN IMMEDIATE", .notReadOnly),
            ("CREATE TEMP TABLE t AS SELECT * FROM users", .notReadOnly),
            ("SELECT * FROM secrets", .notAllowed),
            ("SELECT * FROM sqlite_master", .notAllowed),
            ("WITH s AS (SELECT * FROM secrets) SELECT * FROM s", .notAllowed),
            ("SELECT (SELECT value FROM secrets) FROM users LIMIT 1", .notAllowed),
            ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r", .timeout),
            ("SELECT count(*) FROM users a, users b, users c", .timeout),
            ("", .empty),
            ("  ;  ", .empty),
            (String(repeating: "SELECT 1 ", count: 12_000), .tooLarge),
        ]
        for (sql, expected) in hostile {
            let result = source.run(sql)
            #expect(code(result) == expected, "\(sql.prefix(80)) → \(result)")
        }
        #expect(!FileManager.default.fileExists(atPath: copy))
        #expect(try fileChecksum(path) == before)
        // The source still answers after all of that.
        #expect(try source.run("SELECT count(*) FROM users").get().rows == [[.int(2000)]])
    }

    @Test func aMissingOrBogusFileIsAClearError() throws {
        #expect(throws: QueryRefusal.self) { try SQLiteQuerySource(path: "/nonexistent/db.sqlite", policy: policy) }
        let bogus = FileManager.default.temporaryDirectory.appendingPathComponent("medic-bogus-\(UUID().uuidString)").path
        try Data("not a database at all, just text".utf8).write(to: URL(fileURLWithPath: bogus))
        defer { try? FileManager.default.removeItem(atPath: bogus) }
        #expect(throws: QueryRefusal.self) { try SQLiteQuerySource(path: bogus, policy: policy) }
    }
}

@Suite("PostgreSQL source: read-only by the engine", .serialized)
struct PostgresSourceTests {
    /// A fresh database on the test cluster, loaded with the same rows; nil when no cluster is configured.
    private func database() throws -> (url: String, drop: () -> Void)? {
        guard let base = ProcessInfo.processInfo.environment["MEDIC_TEST_POSTGRES_URL"] else { return nil }
        let name = "medic_source_" + UUID().uuidString.prefix(8).lowercased()
        try run("/usr/bin/psql", [base, "-qc", "CREATE DATABASE \(name)"])
        guard let slash = base.lastIndex(of: "/") else { return nil }
        let url = String(base[...slash]) + name
        let script = createUsers.replacingOccurrences(of: "REAL", with: "DOUBLE PRECISION")
            + "INSERT INTO users VALUES " + usersRows().joined(separator: ",\n") + ";"
        try run("/usr/bin/psql", [url, "-q", "-v", "ON_ERROR_STOP=1"], input: script)
        return (url, { _ = try? run("/usr/bin/psql", [base, "-qc", "DROP DATABASE \(name) WITH (FORCE)"]) })
    }

    private func checksum(_ url: String) throws -> String {
        try run("/usr/bin/psql", [url, "-tAc", "SELECT md5(string_agg(u::text, ',' ORDER BY id)) || (SELECT count(*) FROM secrets) FROM users u"])
    }

    @Test func answersAndRefusesLikeSQLite() throws {
        guard let (url, drop) = try database() else {
            Issue.record("MEDIC_TEST_POSTGRES_URL is not set (scripts/test.sh starts a cluster)")
            return
        }
        defer { drop() }
        let source = try PostgresQuerySource(url: url, policy: policy)
        let sqlite = try sqliteSource()
        defer { try? FileManager.default.removeItem(atPath: sqlite.1) }
        #expect(try source.run(tokyo).get().rows == (try sqlite.0.run(tokyo).get().rows))
        let capped = try source.run("SELECT id FROM users ORDER BY id").get()
        #expect(capped.rows.count == 100 && capped.truncated)
        #expect(capped.rows.first == [.int(1)])
        let tables = try source.tables().get()
        #expect(tables.map(\.name) == ["users"] && tables[0].columns.count == 16)
        #expect(tables[0].columns.first { $0.name == "region" }?.sampleValues.sorted() == ["Berlin", "California", "Osaka", "Tokyo"])

        let before = try checksum(url)
        let hostile: [(String, QueryRefusal.Code)] = [
            ("DROP TABLE users", .invalid),  // not a query: EXPLAIN refuses it before anything runs
            ("UPDATE users SET wallet_balance_usd = 0", .notReadOnly),
            ("INSERT INTO users (id) VALUES (999999)", .notReadOnly),
            ("WITH x AS (DELETE FROM users RETURNING *) SELECT count(*) FROM x", .notReadOnly),
            ("SELECT 1; DROP TABLE users", .multipleStatements),
            ("COPY users TO PROGRAM 'touch /tmp/medic-pwned'", .invalid),
            ("SELECT pg_sleep(10)", .timeout),
            ("SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b", .timeout),
            ("SELECT * FROM secrets", .notAllowed),
            ("SELECT * FROM pg_shadow", .notAllowed),
            ("SELECT e FROM (SELECT email AS e FROM users LIMIT 5) s", .sensitiveColumn),
            ("SELECT upper(wallet_address) FROM users ORDER BY id LIMIT 1", .sensitiveColumn),
            ("SELECT * FROM users LIMIT 1", .sensitiveColumn),
            ("SELECT rolname FROM pg_authid", .notAllowed),
            ("SELECT email FROM users", .sensitiveColumn),
            ("SELECT count(*) FROM users WHERE email LIKE 'user1%'", .sensitiveColumn),
            ("SELECT dblink_exec('dbname=postgres', 'DROP TABLE users')", .invalid),
            ("", .empty),
        ]
        for (sql, expected) in hostile {
            let result = source.run(sql)
            #expect(code(result) == expected, "\(sql.prefix(80)) → \(result)")
        }
        // set_config runs (it is a read), but only inside the rolled-back read-only transaction.
        _ = source.run("SELECT set_config('default_transaction_read_only', 'off', false), set_config('statement_timeout', '0', false)")
        #expect(code(source.run("UPDATE users SET age = 1")) == .notReadOnly)
        #expect(code(source.run("SELECT pg_sleep(10)")) == .timeout)
        #expect(!FileManager.default.fileExists(atPath: "/tmp/medic-pwned"))
        #expect(try checksum(url) == before)
        #expect(try source.run("SELECT count(*) FROM users").get().rows == [[.int(2000)]])
        // Questions that only count or group over a table with sensitive columns still run (no false refusal).
        #expect(try source.run("SELECT count(*) FROM users a JOIN users b ON a.id = b.id WHERE a.country = 'Japan'").get().rows == [[.int(1000)]])
        #expect(try source.run("SELECT region, avg(wallet_balance_usd) FROM users GROUP BY region ORDER BY region").get().rows.count == 4)
    }

    @Test func aSourceThatIsDownIsAClearError() throws {
        #expect(throws: QueryRefusal.self) { try PostgresQuerySource(url: "postgres://127.0.0.1:1/nothing", policy: policy) }
    }
}

@Suite("Structured queries compile to parameterized SQL", .serialized)
struct StructuredQueryTests {
    private func request(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

    private func check(_ source: any QuerySource) throws {
        let tokyo = try request(#"{"table": "users", "where": {"gender": "female", "is_active": 1, "country": "Japan", "region": "Tokyo", "wallet_balance_usd": {"min": 500, "max": 1950}}, "aggregate": "count"}"#)
        let (compiled, result) = try source.run(structured: tokyo).get()
        #expect(!compiled.sql.contains("Tokyo") && compiled.parameters.contains("Tokyo"))
        let raw = try source.run("SELECT count(*) FROM users WHERE gender = 'female' AND is_active = 1 AND country = 'Japan' AND region = 'Tokyo' AND wallet_balance_usd >= 500 AND wallet_balance_usd < 1950").get()
        #expect(result.rows == raw.rows && result.rows.first?.first?.intValue ?? 0 > 0)
        let byRegion = try source.run(structured: try request(#"{"table": "users", "group_by": "region", "aggregate": "avg", "of": "wallet_balance_usd", "order_by": "region"}"#)).get().1
        #expect(byRegion.columns == ["region", "avg_wallet_balance_usd"] && byRegion.rows.map { $0[0] } == ["Berlin", "California", "Osaka", "Tokyo"])
        let top = try source.run(structured: try request(#"{"table": "users", "where": {"kyc_verified": 1}, "order_by": "activity_score", "descending": true, "limit": 10}"#)).get().1
        #expect(top.rows.count == 10 && !top.columns.contains("email") && !top.columns.contains("wallet_address"))
        let injected = try source.run(structured: try request(#"{"table": "users", "where": {"region": "Tokyo' OR '1'='1"}, "aggregate": "count"}"#)).get().1
        #expect(injected.rows == [[.int(0)]])
        let hostile: [(String, QueryRefusal.Code)] = [
            (#"{"table": "secrets"}"#, .notAllowed),
            (#"{"table": "users", "where": {"email": "user1@example.com"}}"#, .sensitiveColumn),
            (#"{"table": "users", "group_by": "wallet_address"}"#, .sensitiveColumn),
            (#"{"table": "users", "where": {"region; DROP TABLE users": 1}}"#, .invalid),
            (#"{"table": "users", "aggregate": "sum", "of": "1); DROP TABLE users; --"}"#, .invalid),
            (#"{"table": "users", "aggregate": "median", "of": "age"}"#, .invalid),
            (#"{"table": "users", "order_by": "random()"}"#, .invalid),
            (#"{"table": "users", "limit": 0}"#, .invalid),
            (#"{"table": "users", "limit": 1000000000}"#, .invalid),
            (#"{"table": "users", "where": {"age": {"in": []}}}"#, .invalid),
            (#"{"table": "users", "where": {"age": {"between": [1, 2]}}}"#, .invalid),
            (#"{"table": "users", "where": {"age": [1, 2]}}"#, .invalid),
            (#"{"table": "users", "sql": "DROP TABLE users"}"#, .invalid),
            (#"[1]"#, .invalid),
        ]
        for (text, expected) in hostile {
            let result = source.run(structured: try request(text))
            if case .failure(let refusal) = result { #expect(refusal.code == expected, "\(text)") } else { Issue.record("accepted: \(text)") }
        }
        #expect(try source.run("SELECT count(*) FROM users").get().rows == [[.int(2000)]])
    }

    @Test func onSQLite() throws {
        let (source, path) = try sqliteSource()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try check(source)
    }

    @Test func onPostgreSQL() throws {
        guard let base = ProcessInfo.processInfo.environment["MEDIC_TEST_POSTGRES_URL"], let slash = base.lastIndex(of: "/") else {
            Issue.record("MEDIC_TEST_POSTGRES_URL is not set (scripts/test.sh starts a cluster)")
            return
        }
        let name = "medic_structured_" + UUID().uuidString.prefix(8).lowercased()
        try run("/usr/bin/psql", [base, "-qc", "CREATE DATABASE \(name)"])
        defer { _ = try? run("/usr/bin/psql", [base, "-qc", "DROP DATABASE \(name) WITH (FORCE)"]) }
        let url = String(base[...slash]) + name
        try run("/usr/bin/psql", [url, "-q", "-v", "ON_ERROR_STOP=1"], input: createUsers.replacingOccurrences(of: "REAL", with: "DOUBLE PRECISION")
            + "INSERT INTO users VALUES " + usersRows().joined(separator: ",\n") + ";")
        try check(try PostgresQuerySource(url: url, policy: policy))
    }
}
