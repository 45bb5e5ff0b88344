// AskTests: questions answered over real sockets by a whole Medic — the model is the fake Anthropic server
// (streamed tool_use turns with input_json_delta, then the final JSON), the sources are a real SQLite file and
// a throwaway PostgreSQL database with the same users table. Numbers are checked against independent SQL run by
// the test itself (sqlite3 / psql), every hostile statement of issue 14 is refused or contained with the
// database unchanged (checksums before and after), and the audit, the memory and the restart are checked.
import Foundation
import MedicHost
import Protocol
import Store
import TestSupport
import Testing

// MARK: fixtures

/// The customer's users table, deterministic: 2,000 rows (as QuerySourceTests).
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

/// What the model writes for the Tokyo question.
private let tokyoSQL = """
    SELECT count(*) AS users FROM users WHERE gender = 'female' AND is_active = 1 AND country = 'Japan' AND region = 'Tokyo'
        AND wallet_balance_usd > 500 AND wallet_balance_usd < 1950
    """

/// The test's own SQL for the same number, written differently (run by sqlite3 / psql, not by Medic).
private let tokyoIndependent = """
    SELECT count(id) FROM users WHERE NOT (gender <> 'female') AND is_active <> 0 AND city = 'Tokyo' AND country IN ('Japan')
        AND wallet_balance_usd BETWEEN 500.000001 AND 1949.999999
    """

private let tokyoQuestion = "How many female users are currently active in the Tokyo, Japan region with above $500 but less than $1950 in the wallet?"

@discardableResult
private func run(_ executable: String, _ arguments: [String], input: String? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    let inputFile = FileManager.default.temporaryDirectory.appendingPathComponent("medic-ask-input-\(UUID().uuidString)")
    try Data((input ?? "").utf8).write(to: inputFile)
    defer { try? FileManager.default.removeItem(at: inputFile) }
    process.standardInput = try FileHandle(forReadingFrom: inputFile)
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    _ = waitForExit(process)
    return String(decoding: data, as: UTF8.self)
}

/// A users database file.
private func sqliteUsers(_ directory: String) throws -> String {
    let path = (directory as NSString).appendingPathComponent("users.sqlite")
    try run("/usr/bin/sqlite3", [path], input: createUsers + "INSERT INTO users VALUES " + usersRows().joined(separator: ",\n") + ";")
    return path
}

/// A throwaway PostgreSQL database with the same tables (nil without MEDIC_TEST_POSTGRES_URL), and its drop.
private func postgresUsers() throws -> (url: String, drop: () -> Void)? {
    guard let base = ProcessInfo.processInfo.environment["MEDIC_TEST_POSTGRES_URL"], let slash = base.lastIndex(of: "/") else { return nil }
    let name = "medic_ask_\(UInt32.random(in: 0...UInt32.max))"
    try run("/usr/bin/psql", [base, "-qc", "CREATE DATABASE \(name)"])
    let url = String(base[...slash]) + name
    try run("/usr/bin/psql", [url, "-q", "-v", "ON_ERROR_STOP=1"], input: createUsers.replacingOccurrences(of: "REAL", with: "DOUBLE PRECISION")
        + "INSERT INTO users VALUES " + usersRows().joined(separator: ",\n") + ";")
    return (url, { _ = try? run("/usr/bin/psql", [base, "-qc", "DROP DATABASE \(name) WITH (FORCE)"]) })
}

private func sqliteChecksum(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

private func postgresChecksum(_ url: String) throws -> String {
    try run("/usr/bin/psql", [url, "-tAc", "SELECT md5(string_agg(u::text, ',' ORDER BY id)) || (SELECT count(*) FROM secrets) || (SELECT count(*) FROM pg_tables WHERE schemaname = 'public') FROM users u"])
}

/// The fake's streamed tool calls (one turn).
private func toolTurn(_ calls: [(String, JSONValue)], text: String = "Let me look.") -> JSONValue {
    .object([
        "text": .string(text), "chunk_size": 7,
        "tool_uses": .array(calls.enumerated().map { i, call in
            .object(["id": .string("tu_\(UInt32.random(in: 0...UInt32.max))_\(i)"), "name": .string(call.0), "input": call.1])
        }),
    ])
}

/// The fake's final answer turn.
private func finalTurn(_ answer: String, _ sql: String) -> JSONValue {
    ["status": 200, "sse_text": .string(JSONValue.object(["answer": .string(answer), "sql": .string(sql)]).jsonString), "chunk_size": 11, "chunk_delay_ms": 2]
}

/// A Medic asking `fake`, with `sources`.
private func askMedic(_ fake: FakeAnthropic, sources: [SourceConfig], directory: String? = nil, store: String? = nil) throws -> MedicHarness {
    try MedicHarness(directory: directory) { configuration, _ in
        configuration.llm = .anthropic
        configuration.llmBaseURL = fake.baseURL
        configuration.llmModel = "claude-ask-model"
        configuration.anthropicAPIKey = "test-key"
        configuration.sources = sources
        if let store { configuration.storeURL = store }
    }
}

private func usersSource(_ name: String, _ url: String) -> SourceConfig {
    SourceConfig(name: name, url: url, tables: ["users"], sensitiveColumns: ["email", "wallet_address"], maxRows: 500, timeoutMs: 1500)
}

/// Asks and follows `ask:<id>` until it is answered or failed; returns the ask id, the ack and its stored events.
private func ask(_ session: MedicClient, _ question: String, source: String? = nil) throws -> (id: String, events: [JSONValue]) {
    let (id, events, _) = try askWithThinking(session, question, source: source)
    return (id, events)
}

/// `ask`, also returning the ephemeral `ask_thinking` events seen live.
private func askWithThinking(_ session: MedicClient, _ question: String, source: String? = nil) throws -> (id: String, events: [JSONValue], thinking: [JSONValue]) {
    var command: JSONObject = ["type": "ask", "question": .string(question)]
    if let source { command["source"] = .string(source) }
    let ack = try session.call(command)
    guard ack["type"]?.stringValue == "ack", let id = ack["ask"]?.stringValue else { throw TestClientError("ask refused: \(ack.jsonString)") }
    #expect(wireSchemas.violations(ack, answering: "ask") == [])
    #expect(ack["status"]?.stringValue == "thinking")
    #expect(try session.call(["type": "subscribe", "topic": .string("ask:\(id)"), "since": 0])["type"]?.stringValue == "ack")
    let seen = try session.until(2_000) { m in
        m["type"]?.stringValue == "event" && m["topic"]?.stringValue == "ask:\(id)" && m["kind"]?.stringValue == "status_changed"
            && ["answered", "failed"].contains(m["data"]?["status"]?.stringValue ?? "")
    }
    _ = try session.call(["type": "unsubscribe", "topic": .string("ask:\(id)")])
    // Stored events only (they have a seq); `ask_thinking` is ephemeral.
    // Every message received is what protocol/schema says (envelope, event data, the ask topics' rules).
    for message in seen { #expect(wireSchemas.violations(message, answering: nil) == [], "\(message.jsonString.prefix(300))") }
    let mine = seen.filter { $0["type"]?.stringValue == "event" && $0["topic"]?.stringValue == "ask:\(id)" }
    return (id, mine.filter { $0["seq"]?.intValue != nil }, mine.filter { $0["seq"]?.intValue == nil })
}

private func askKinds(_ events: [JSONValue]) -> [String] { events.compactMap { $0["kind"]?.stringValue } }
private func first(_ events: [JSONValue], _ kind: String) -> JSONValue? { events.first { $0["kind"]?.stringValue == kind }?["data"] }

private func restGET(_ medic: MedicHarness, _ path: String, token: String) throws -> (Int, JSONValue?) {
    let client = try TestClient(port: medic.port)
    try client.write(Array("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer \(token)\r\n\r\n".utf8))
    let (head, bytes) = try client.readHTTPResponse()
    return (Int(head.split(separator: " ")[1]) ?? 0, try? JSONValue.parse(bytes, limits: JSONParseLimits(maxBytes: 16 << 20)))
}

private func restSend(_ medic: MedicHarness, _ method: String, _ path: String, token: String, body: JSONValue) throws -> (Int, JSONValue?) {
    let client = try TestClient(port: medic.port)
    let bytes = body.bytes
    let head = "\(method) \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\n"
        + "Content-Length: \(bytes.count)\r\n\r\n"
    try client.write(Array(head.utf8) + bytes)
    let (response, answer) = try client.readHTTPResponse()
    return (Int(response.split(separator: " ")[1]) ?? 0, try? JSONValue.parse(answer))
}

private func systemPrompt(_ request: JSONValue) -> String { request["body"]?["system"]?.stringValue ?? "" }

private func number(_ value: JSONValue?) -> Int? {
    switch value {
    case .int(let n)?: Int(n)
    case .number(let d)?: Int(d)
    default: nil
    }
}

/// protocol/schema, loaded once (LiveSchemaTests' checker).
nonisolated(unsafe) private let wireSchemas = WireSchemas()

// MARK: tests

@Suite("Ask: questions answered from the sources", .serialized)
struct AskTests {
    /// Describe, run_sql, then the final JSON: the answer's number is the database's (checked with the test's own SQL).
    private func answersTokyo(source: String, url: String, independent: () throws -> Int) throws {
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        let medic = try askMedic(fake, sources: [usersSource(source, url)])
        defer { medic.stop() }
        let session = try medic.session(try medic.token("alice", role: "admin"))
        try fake.script([
            toolTurn([("describe_table", ["table": "users"])]),
            toolTurn([("run_sql", ["sql": .string(tokyoSQL)])]),
            finalTurn("There are 12345 such users.", tokyoSQL),  // the model's number is wrong on purpose
        ])
        let (id, events, thinking) = try askWithThinking(session, tokyoQuestion)
        let expected = try independent()
        // The model's text streamed live as ask_thinking (not stored), per round.
        #expect(thinking.allSatisfy { $0["kind"]?.stringValue == "ask_thinking" })
        let streamed = thinking.filter { $0["data"]?["round"]?.intValue == 3 }.compactMap { $0["data"]?["text"]?.stringValue }.joined()
        #expect(streamed.contains("12345"))
        #expect(expected > 10)
        #expect(askKinds(events) == [
            "ask_created", "status_changed", "tool_called", "sql_proposed", "sql_result", "sql_proposed", "sql_result", "answer", "status_changed",
        ])
        #expect(first(events, "ask_created")?["source"]?.stringValue == source)
        #expect(first(events, "tool_called")?["name"]?.stringValue == "describe_table")
        #expect(first(events, "sql_result")?["round"]?.intValue == 2)
        let answer = try #require(first(events, "answer"))
        #expect(number(answer["value"]) == expected)
        #expect(answer["sql"]?.stringValue == tokyoSQL)
        #expect(answer["row_count"]?.intValue == 1)
        #expect(answer["text"]?.stringValue == "There are 12345 such users.")
        #expect(events.last?["data"]?["status"]?.stringValue == "answered")
        // The model saw the describe result and the run_sql rows as tool results, streamed tool_use inputs parsed.
        let requests = try fake.requests()
        #expect(requests.count == 3)
        let tools = requests[0]["body"]?["tools"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(tools == ["list_tables", "describe_table", "run_sql", "structured_query"])
        let second = requests[1]["body"]?["messages"]?.jsonString ?? ""
        #expect(second.contains("tool_result") && second.contains("wallet_balance_usd"))
        let third = requests[2]["body"]?["messages"]?.jsonString ?? ""
        #expect(third.contains("\(expected)"))
        #expect(systemPrompt(requests[0]).contains("\"answer\""))
        // REST: the list, the detail and the events.
        let token = try medic.token("bob", role: "admin")
        let (status, list) = try restGET(medic, "/api/v1/asks", token: token)
        #expect(status == 200)
        #expect(list?["asks"]?.arrayValue?.first?["id"]?.stringValue == id)
        #expect(list?["asks"]?.arrayValue?.first?["status"]?.stringValue == "answered")
        let (_, detail) = try restGET(medic, "/api/v1/asks/\(id)", token: token)
        #expect(detail?["question"]?.stringValue == tokyoQuestion)
        #expect(detail?["steps"]?.arrayValue?.count == 2)
        #expect(number(detail?["answer"]?["value"]) == expected)
        let (_, page) = try restGET(medic, "/api/v1/asks/\(id)/events?since=0", token: token)
        #expect(page?["events"]?.arrayValue?.count == events.count)
    }

    /// The issue's other three example questions, each through tool-use turns (the model looks, then answers with
    /// its SQL), on both engines: every answer's rows are the ones the test's own SQL gets from the same data.
    private func answersTheOtherExamples(source: String, url: String, independent: (String) throws -> [[String]]) throws {
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        let medic = try askMedic(fake, sources: [usersSource(source, url)])
        defer { medic.stop() }
        let session = try medic.session(try medic.token("alice", role: "admin"))
        let examples: [(question: String, sql: String, independent: String)] = [
            ("Show me the top 10 most active users this week",
             "SELECT id, city, activity_score FROM users WHERE last_active >= '2026-11-23' ORDER BY activity_score DESC, id LIMIT 10",
             "SELECT id, city, activity_score FROM users WHERE NOT last_active < '2026-11-23' ORDER BY activity_score DESC, id ASC LIMIT 10"),
            ("What's the average wallet balance by region?",
             "SELECT region, round(avg(wallet_balance_usd)) AS average_usd FROM users GROUP BY region ORDER BY region",
             "SELECT region, round(sum(wallet_balance_usd) / count(*)) FROM users GROUP BY region ORDER BY 1"),
            ("How many users completed KYC?",
             "SELECT count(*) AS users FROM users WHERE kyc_verified = 1",
             "SELECT count(id) FROM users WHERE kyc_verified <> 0"),
        ]
        for example in examples {
            try fake.script([
                toolTurn([("describe_table", ["table": "users"])]),
                toolTurn([("run_sql", ["sql": .string(example.sql)])]),
                finalTurn("Here is what the data says.", example.sql),
            ])
            let (_, events) = try ask(session, example.question, source: source)
            let answer = try #require(first(events, "answer"), "\(example.question): \(askKinds(events))")
            #expect(answer["sql"]?.stringValue == example.sql)
            // Numbers compared as numbers (sqlite3 prints 1243.0 where Medic's JSON has 1243).
            let canonical = { (text: String) -> String in Double(text).map { $0 == $0.rounded() ? String(Int($0)) : String($0) } ?? text }
            let expected = try independent(example.independent).map { $0.map(canonical) }
            let rows = (answer["rows"]?.arrayValue ?? []).map { row in
                (row.arrayValue ?? []).map { cell -> String in
                    switch cell {
                    case .int(let n): String(n)
                    case .number(let d): d == d.rounded() ? String(Int(d)) : String(d)
                    case .string(let text): canonical(text)
                    default: cell.jsonString
                    }
                }
            }
            #expect(rows == expected, "\(example.question)")
            #expect(answer["row_count"]?.intValue == Int64(expected.count))
            #expect(!expected.isEmpty)
        }
        // The average by region is one label column and one number column: the page may chart it.
        try fake.script([finalTurn("Averages.", examples[1].sql)])
        #expect(first(try ask(session, examples[1].question, source: source).events, "answer")?["chart"] != nil)
    }

    @Test func theOtherExampleQuestionsOnSQLiteAreTheDatabasesAnswers() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-ask-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try sqliteUsers(directory)
        try answersTheOtherExamples(source: "users", url: "sqlite:\(path)") { sql in
            try run("/usr/bin/sqlite3", ["-separator", "\t", path, sql]).split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        }
    }

    @Test func theOtherExampleQuestionsOnPostgreSQLAreTheDatabasesAnswers() throws {
        guard let (url, drop) = try postgresUsers() else { return }
        defer { drop() }
        try answersTheOtherExamples(source: "pgusers", url: url) { sql in
            try run("/usr/bin/psql", [url, "-tA", "-F", "\t", "-c", sql]).split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        }
    }

    @Test func theTokyoQuestionOnSQLiteIsTheDatabasesNumber() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-ask-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try sqliteUsers(directory)
        try answersTokyo(source: "users", url: "sqlite:\(path)") {
            Int(try run("/usr/bin/sqlite3", [path, tokyoIndependent]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
    }

    @Test func theTokyoQuestionOnPostgreSQLIsTheDatabasesNumber() throws {
        guard let (url, drop) = try postgresUsers() else { return }
        defer { drop() }
        try answersTokyo(source: "pgusers", url: url) {
            Int(try run("/usr/bin/psql", [url, "-tAc", tokyoIndependent]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
    }

    /// Each hostile statement as the model's final SQL: `sql_refused`, the ask failed, the database unchanged.
    /// `contained`: statements that run but change nothing (PostgreSQL's set_config inside the rolled-back read-only
    /// transaction); a write after them is still refused.
    private func refusesHostile(_ statements: [String], contained: [String] = [], source: SourceConfig, checksum: () throws -> String) throws {
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        let medic = try askMedic(fake, sources: [source])
        defer { medic.stop() }
        let session = try medic.session(try medic.token("alice", role: "admin"))
        let before = try checksum()
        for sql in statements {
            try fake.script([finalTurn("done", sql)])
            let (_, events) = try ask(session, "please run \(sql.prefix(40))")
            let refused = first(events, "sql_refused")
            #expect(refused != nil, "not refused: \(sql)")
            #expect(refused?["sql"]?.stringValue == sql)
            #expect((refused?["code"]?.stringValue ?? "") != "")
            #expect(first(events, "answer") == nil, "answered: \(sql)")
            #expect(first(events, "ask_failed")?["reason"]?.stringValue?.contains("refused") == true)
            #expect(events.last?["data"]?["reason"] == first(events, "ask_failed")?["reason"])
        }
        for sql in contained {
            try fake.script([finalTurn("done", sql)])
            _ = try ask(session, "please run \(sql.prefix(40))")
            try fake.script([finalTurn("done", "UPDATE users SET age = 1")])
            #expect(first(try ask(session, "and now write").events, "sql_refused") != nil)
        }
        // The same through run_sql: the refusal goes back to the model, which then answers.
        try fake.script([toolTurn([("run_sql", ["sql": .string(statements[0])])]), finalTurn("fine", "SELECT count(*) FROM users")])
        let (_, events) = try ask(session, "drop it via the tool")
        #expect(askKinds(events).contains("sql_refused"))
        #expect(number(first(events, "answer")?["value"]) == 2000)
        let requests = try fake.requests()
        #expect(requests.last?["body"]?["messages"]?.jsonString.contains("\"is_error\":true") == true)
        #expect(try checksum() == before)
        // Every statement was audited with its refusal.
        let (status, audit) = try restGET(medic, "/api/v1/admin/query-audit?limit=1000", token: try medic.token("root", role: "admin"))
        #expect(status == 200)
        let rows = audit?["audit"]?.arrayValue ?? []
        for sql in statements {
            #expect(rows.contains { $0["sql"]?.stringValue == sql && $0["refusal_code"]?.stringValue != nil && $0["principal"]?.stringValue == "alice" })
        }
    }

    @Test func hostileStatementsAreRefusedOnSQLite() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-ask-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try sqliteUsers(directory)
        try refusesHostile([
            "DROP TABLE users", "UPDATE users SET age = 1", "INSERT INTO users (id) VALUES (99999)", "SELECT 1; DROP TABLE users",
            "ATTACH DATABASE '\(directory)/other.sqlite' AS other", "PRAGMA writable_schema = 1", "SELECT load_extension('/tmp/x')",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
            "SELECT count(*) FROM users a, users b, users c, users d", "SELECT * FROM secrets",
        ], source: usersSource("users", "sqlite:\(path)")) { try sqliteChecksum(path).base64EncodedString() }
    }

    @Test func hostileStatementsAreRefusedOnPostgreSQL() throws {
        guard let (url, drop) = try postgresUsers() else { return }
        defer { drop() }
        try refusesHostile([
            "DROP TABLE users", "UPDATE users SET age = 1", "INSERT INTO users (id) VALUES (99999)", "SELECT 1; DROP TABLE users",
            "WITH x AS (DELETE FROM users RETURNING id) SELECT count(*) FROM x", "SELECT pg_sleep(10)", "COPY users TO PROGRAM 'touch /tmp/medic-owned'",
            "SELECT dblink_exec('dbname=postgres', 'DROP TABLE users')",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
            "SELECT count(*) FROM users a, users b, users c, users d", "SELECT * FROM secrets", "SELECT email FROM users",
        ], contained: ["SELECT set_config('default_transaction_read_only', 'off', false), set_config('statement_timeout', '0', false)"],
           source: usersSource("pgusers", url)) { try postgresChecksum(url) }
    }

    /// SQLite reads a sensitive column as NULL: the answer carries it masked, never the addresses.
    @Test func sensitiveColumnsAreMaskedOnSQLite() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-ask-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try sqliteUsers(directory)
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        let medic = try askMedic(fake, sources: [usersSource("users", "sqlite:\(path)")])
        defer { medic.stop() }
        let session = try medic.session(try medic.token("alice", role: "admin"))
        try fake.script([finalTurn("emails", "SELECT email, wallet_address FROM users LIMIT 5")])
        let (_, events) = try ask(session, "list emails")
        let answer = try #require(first(events, "answer"))
        #expect(!answer.jsonString.contains("@example.com"))
        #expect(!answer.jsonString.contains("0x1"))
    }

    @Test func badAsksAreRefused() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-ask-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try sqliteUsers(directory)
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        let medic = try askMedic(fake, sources: [usersSource("users", "sqlite:\(path)")])
        defer { medic.stop() }
        let admin = try medic.session(try medic.token("alice", role: "admin"))
        let unknown = try admin.call(["type": "ask", "question": "how many?", "source": "nope"])
        #expect(unknown["code"]?.stringValue == "invalid_message")
        #expect(unknown["message"]?.stringValue?.contains("users, medic") == true)
        let huge = try admin.call(["type": "ask", "question": .string(String(repeating: "how many users? ", count: 6_400))])
        #expect(huge["code"]?.stringValue == "invalid_message")
        #expect(try admin.call(["type": "ask", "question": "   "])["code"]?.stringValue == "invalid_message")
        #expect(try admin.call(["type": "ask"])["code"]?.stringValue == "invalid_message")
        let viewerToken = try medic.token("vic", role: "viewer")
        let viewer = try medic.session(viewerToken)
        #expect(try viewer.call(["type": "ask", "question": "how many users?"])["code"]?.stringValue == "forbidden")
        #expect(try viewer.call(["type": "mark_answer", "ask": "a-xxxxxxxxxx", "correct": true])["code"]?.stringValue == "forbidden")
        #expect(try restSend(medic, "POST", "/api/v1/ask", token: viewerToken, body: ["question": "how many users?"]).0 == 403)
        #expect(try restSend(medic, "POST", "/api/v1/sources/users/query", token: viewerToken, body: ["table": "users"]).0 == 403)
        #expect(try restGET(medic, "/api/v1/admin/query-audit", token: viewerToken).0 == 403)
        #expect(try restGET(medic, "/api/v1/sources", token: viewerToken).0 == 403)
        // A bot may ask (REST, 201), an unknown ask cannot be marked.
        let bot = try medic.token("robot", role: "bot")
        try fake.script([finalTurn("2000", "SELECT count(*) FROM users")])
        let (created, body) = try restSend(medic, "POST", "/api/v1/ask", token: bot, body: ["question": "how many users?"])
        #expect(created == 201)
        #expect(body?["ask"]?.stringValue?.hasPrefix("a-") == true)
        #expect(try admin.call(["type": "mark_answer", "ask": "a-nonexisting", "correct": true])["code"]?.stringValue == "not_found")
        // A repeated command id answers the first ack and asks nothing more.
        try fake.script([finalTurn("2000", "SELECT count(*) FROM users"), finalTurn("2000", "SELECT count(*) FROM users")])
        let before = try fake.requests().count
        let first = try admin.call(["type": "ask", "id": "same-question", "question": "how many users now?"])
        let again = try admin.call(["type": "ask", "id": "same-question", "question": "how many users now?"])
        #expect(first["ask"]?.stringValue != nil && again["ask"] == first["ask"])
        Thread.sleep(forTimeInterval: 0.5)
        #expect(try fake.requests().count == before + 1)
        let (_, listed) = try restGET(medic, "/api/v1/asks?limit=1000", token: viewerToken)
        #expect(listed?["asks"]?.arrayValue?.filter { $0["question"]?.stringValue == "how many users now?" }.count == 1)
        #expect(fake.process.isRunning)
    }

    /// A source that is down: a clear refusal, the ask fails, the server keeps answering (and other sources work).
    @Test func aSourceThatIsDownFailsClearly() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-ask-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try sqliteUsers(directory)
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        let medic = try askMedic(fake, sources: [
            usersSource("users", "sqlite:\(path)"), usersSource("gone", "sqlite:\(directory)/missing/nothing.sqlite"),
            usersSource("pgdown", "postgres://127.0.0.1:1/nothing"),
        ])
        defer { medic.stop() }
        let token = try medic.token("alice", role: "admin")
        let session = try medic.session(token)
        for source in ["gone", "pgdown"] {
            try fake.script([finalTurn("1", "SELECT 1")])
            let (_, events) = try ask(session, "anything there?", source: source)
            #expect(first(events, "sql_refused")?["code"]?.stringValue == "unavailable")
            #expect(first(events, "ask_failed")?["reason"]?.stringValue?.contains("unavailable") == true)
        }
        let (status, sources) = try restGET(medic, "/api/v1/sources", token: token)
        #expect(status == 200)
        let list = sources?["sources"]?.arrayValue ?? []
        #expect(list.map { $0["name"]?.stringValue ?? "" } == ["users", "gone", "pgdown", "medic"])
        #expect(list[1]["error"]?.stringValue?.isEmpty == false)
        #expect(list[0]["tables"]?.arrayValue?.first?["name"]?.stringValue == "users")
        #expect(list[0]["kind"]?.stringValue == "sqlite")
        let columns = list[0]["tables"]?.arrayValue?.first?["columns"]?.arrayValue ?? []
        #expect(columns.first { $0["name"]?.stringValue == "email" }?["sensitive"]?.boolValue == true)
        #expect(columns.first { $0["name"]?.stringValue == "country" }?["sample_values"]?.arrayValue?.count == 3)
        try fake.script([finalTurn("2000", "SELECT count(*) FROM users")])
        #expect(number(first(try ask(session, "how many users?").events, "answer")?["value"]) == 2000)
        // The schema is cached until a refresh; a source that comes back answers again.
        try run("/usr/bin/sqlite3", [path, "CREATE TABLE users_archive (id INTEGER)"])
        func usersTables(_ query: String) throws -> [String] {
            let (_, body) = try restGET(medic, "/api/v1/sources\(query)", token: token)
            return body?["sources"]?.arrayValue?.first?["tables"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        }
        #expect(try usersTables("") == ["users"])
        try FileManager.default.createDirectory(atPath: "\(directory)/missing", withIntermediateDirectories: true)
        try run("/usr/bin/sqlite3", ["\(directory)/missing/nothing.sqlite", "CREATE TABLE users (id INTEGER); INSERT INTO users VALUES (1), (2)"])
        try fake.script([finalTurn("2", "SELECT count(*) FROM users")])
        #expect(number(first(try ask(session, "and now?", source: "gone").events, "answer")?["value"]) == 2)
    }

    @Test func introspectionIsCachedUntilARefresh() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-ask-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = (directory as NSString).appendingPathComponent("open.sqlite")
        try run("/usr/bin/sqlite3", [path, "CREATE TABLE first (id INTEGER, kind TEXT); INSERT INTO first VALUES (1, 'a'), (2, 'b')"])
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        let medic = try askMedic(fake, sources: [SourceConfig(name: "open", url: "sqlite:\(path)")])
        defer { medic.stop() }
        let token = try medic.token("alice", role: "admin")
        func tables(_ query: String) throws -> [JSONValue] {
            let (_, body) = try restGET(medic, "/api/v1/sources\(query)", token: token)
            return body?["sources"]?.arrayValue?.first { $0["name"]?.stringValue == "open" }?["tables"]?.arrayValue ?? []
        }
        let before = try tables("")
        #expect(before.compactMap { $0["name"]?.stringValue } == ["first"])
        #expect(before.first?["row_estimate"]?.intValue == 2)
        #expect(before.first?["columns"]?.arrayValue?.last?["sample_values"] == ["a", "b"])
        try run("/usr/bin/sqlite3", [path, "CREATE TABLE second (id INTEGER)"])
        #expect(try tables("").compactMap { $0["name"]?.stringValue } == ["first"])
        #expect(try tables("?refresh=1").compactMap { $0["name"]?.stringValue } == ["first", "second"])
    }

    /// The structured query endpoint: compiled, parameterized, run; audited.
    @Test func structuredQueriesOverREST() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-ask-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try sqliteUsers(directory)
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        let medic = try askMedic(fake, sources: [usersSource("users", "sqlite:\(path)")])
        defer { medic.stop() }
        let bot = try medic.token("robot", role: "bot")
        let (status, body) = try restSend(medic, "POST", "/api/v1/sources/users/query", token: bot, body: [
            "table": "users", "where": ["country": "Japan", "wallet_balance_usd": ["min": 500, "max": 1950]], "aggregate": "count",
        ])
        #expect(status == 200)
        let expected = Int(try run("/usr/bin/sqlite3", [path, "SELECT count(*) FROM users WHERE country = 'Japan' AND wallet_balance_usd >= 500 AND wallet_balance_usd <= 1950"])
            .trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(number(body?["result"]?["rows"]?.arrayValue?.first?.arrayValue?.first) == expected)
        #expect(body?["parameters"]?.arrayValue?.count == 3)
        #expect(body?["sql"]?.stringValue?.contains("Japan") == false)
        #expect(try restSend(medic, "POST", "/api/v1/sources/users/query", token: bot, body: ["table": "secrets"]).0 == 400)
        #expect(try restSend(medic, "POST", "/api/v1/sources/nope/query", token: bot, body: ["table": "users"]).0 == 404)
        let (_, audit) = try restGET(medic, "/api/v1/admin/query-audit", token: try medic.token("root", role: "admin"))
        let rows = audit?["audit"]?.arrayValue ?? []
        #expect(rows.contains { $0["principal"]?.stringValue == "robot" && $0["ask"] == .null && $0["row_count"]?.intValue == 1 })
    }

    /// Medic's own store as source `medic`: the views answer, principals and sessions cannot be read.
    private func medicSource(store: String?, medicSourceURL: String? = nil) throws {
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        let medic = try MedicHarness { configuration, _ in
            configuration.llm = .anthropic
            configuration.llmBaseURL = fake.baseURL
            configuration.anthropicAPIKey = "test-key"
            if let store { configuration.storeURL = store }
            configuration.medicSourceURL = medicSourceURL
        }
        defer { medic.stop() }
        let token = try medic.token("alice", role: "admin")
        let session = try medic.session(token)
        let before = try medic.store.sync { medic.store.proposalFigures(passingStatuses: [], completion: $0) }.proposals
        var write = StoreWrite()
        for i in 1...3 {
            write.proposals.append(ProposalRow(
                id: "p-ask\(i)\(UInt32.random(in: 0...UInt32.max))", title: "t\(i)", description: "secret description", repo: "r", status: "applied",
                currentRevision: 1, author: "alice", createdAt: 1, updatedAt: 1, attempts: 0, doc: "{}"))
        }
        _ = try medic.store.sync { medic.store.write(write, completion: $0) }
        try fake.script([finalTurn("3 proposals", "SELECT count(*) AS proposals FROM medic_proposals")])
        let (_, events) = try ask(session, "how many proposals are there?")
        #expect(number(first(events, "answer")?["value"]) == before + 3)
        #expect(first(events, "ask_created")?["source"]?.stringValue == "medic")  // the default without other sources
        for sql in ["SELECT * FROM principals", "SELECT token_hash FROM sessions", "SELECT * FROM commands", "SELECT code_hash FROM login_codes"] {
            try fake.script([finalTurn("x", sql)])
            let (_, refused) = try ask(session, "secrets please", source: "medic")
            #expect(first(refused, "sql_refused")?["code"]?.stringValue == "not_allowed", "\(sql)")
        }
        // The tables behind the views: never their documents or descriptions (refused, or read as NULL on SQLite).
        try fake.script([finalTurn("x", "SELECT description, doc FROM proposals")])
        let (_, behind) = try ask(session, "the documents please", source: "medic")
        #expect(first(behind, "answer") == nil || !(first(behind, "answer")?.jsonString.contains("secret description") ?? true))
        try fake.script([finalTurn("kinds", "SELECT topic_kind, count FROM medic_events_by_kind ORDER BY count DESC")])
        let (_, kindsEvents) = try ask(session, "which events are there?", source: "medic")
        #expect((first(kindsEvents, "answer")?["row_count"]?.intValue ?? 0) > 0)
        let (_, sources) = try restGET(medic, "/api/v1/sources", token: token)
        let medicTables = sources?["sources"]?.arrayValue?.first { $0["name"]?.stringValue == "medic" }?["tables"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(medicTables.contains("medic_proposals") && !medicTables.contains("principals") && !medicTables.contains("sessions"))
    }

    @Test func theMedicSourceOnSQLite() throws { try medicSource(store: nil) }

    @Test func theMedicSourceOnPostgreSQL() throws {
        guard let base = ProcessInfo.processInfo.environment["MEDIC_TEST_POSTGRES_URL"], let slash = base.lastIndex(of: "/") else { return }
        let name = "medic_ask_store_\(UInt32.random(in: 0...UInt32.max))"
        try run("/usr/bin/psql", [base, "-qc", "CREATE DATABASE \(name)"])
        defer { _ = try? run("/usr/bin/psql", [base, "-qc", "DROP DATABASE \(name) WITH (FORCE)"]) }
        try medicSource(store: String(base[...slash]) + name)
    }

    /// On PostgreSQL the medic source may connect as a role that can read only the views (SECURITY.md's GRANTs).
    @Test func theMedicSourceOnPostgreSQLWithAViewOnlyRole() throws {
        guard let base = ProcessInfo.processInfo.environment["MEDIC_TEST_POSTGRES_URL"], let slash = base.lastIndex(of: "/"),
            let at = base.firstIndex(of: "@")
        else { return }
        let name = "medic_ask_role_\(UInt32.random(in: 0...UInt32.max))"
        let role = "medic_self_reader_\(UInt32.random(in: 0...UInt32.max))"
        try run("/usr/bin/psql", [base, "-qc", "CREATE DATABASE \(name)"])
        defer {
            _ = try? run("/usr/bin/psql", [base, "-qc", "DROP DATABASE \(name) WITH (FORCE)"])
            _ = try? run("/usr/bin/psql", [base, "-qc", "DROP ROLE IF EXISTS \(role)"])
        }
        let store = String(base[...slash]) + name
        // The store's migrations make the views; then the role of SECURITY.md is granted them.
        let medic = try MedicHarness { configuration, _ in configuration.storeURL = store }
        medic.stop()
        try run("/usr/bin/psql", [store, "-q", "-v", "ON_ERROR_STOP=1"], input: """
            CREATE ROLE \(role) LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
            GRANT CONNECT ON DATABASE \(name) TO \(role);
            GRANT USAGE ON SCHEMA public TO \(role);
            GRANT SELECT ON medic_proposals, medic_revisions, medic_reviews, medic_bugs, medic_events_by_kind, medic_incidents, medic_fingerprints TO \(role);
            ALTER ROLE \(role) SET default_transaction_read_only = on;
            """)
        let reader = "postgres://\(role)" + String(base[at...slash]) + name
        try medicSource(store: store, medicSourceURL: reader)
    }

    /// A malformed final reply is asked once more; a marked answer is offered to the next similar question.
    @Test func memoryAndReask() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-ask-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try sqliteUsers(directory)
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        let medic = try askMedic(fake, sources: [usersSource("users", "sqlite:\(path)")])
        defer { medic.stop() }
        let session = try medic.session(try medic.token("alice", role: "admin"))
        // The asks collection's summaries are checked against the schema as they arrive (in `ask`).
        #expect(try session.call(["type": "subscribe", "topic": "asks"])["type"]?.stringValue == "ack")
        let kycSQL = "SELECT count(*) AS verified FROM users WHERE kyc_verified = 1"
        try fake.script([
            ["status": 200, "sse_text": "About 400, I think.", "chunk_size": 8, "chunk_delay_ms": 2],
            finalTurn("400 users completed KYC.", kycSQL),
        ])
        let (id, events) = try ask(session, "How many users completed KYC?")
        #expect(number(first(events, "answer")?["value"]) == 400)
        var requests = try fake.requests()
        #expect(requests.count == 2)
        #expect(requests[1]["body"]?["messages"]?.jsonString.contains("could not be used") == true)
        #expect(!systemPrompt(requests[0]).contains(kycSQL))
        // Marking: admins only after an answer; then remembered.
        let ack = try session.call(["type": "mark_answer", "ask": .string(id), "correct": true, "comment": "kyc_verified is the flag"])
        #expect(ack["type"]?.stringValue == "ack")
        #expect(ack["status"]?.stringValue == "answered")
        #expect(wireSchemas.violations(ack, answering: "mark_answer") == [])
        try fake.script([finalTurn("x", "DROP TABLE users")])
        let (failed, _) = try ask(session, "break it")
        #expect(try session.call(["type": "mark_answer", "ask": .string(failed), "correct": false])["code"]?.stringValue == "invalid_state")
        try fake.script([finalTurn("400", kycSQL)])
        _ = try ask(session, "How many users have completed their KYC check?")
        requests = try fake.requests()
        let prompt = systemPrompt(try #require(requests.last))
        #expect(prompt.contains(kycSQL))
        #expect(prompt.contains("kyc_verified is the flag"))
        // An unrelated question gets no examples.
        try fake.script([finalTurn("4", "SELECT count(DISTINCT region) FROM users")])
        _ = try ask(session, "Which regions exist?")
        #expect(!systemPrompt(try #require(try fake.requests().last)).contains(kycSQL))
        let (_, detail) = try restGET(medic, "/api/v1/asks/\(id)", token: try medic.token("root", role: "admin"))
        #expect(detail?["mark"]?["correct"]?.boolValue == true)
        // stats carries the asks' figures (and matches its schema).
        let stats = try session.call(["type": "stats"])
        #expect(wireSchemas.violations(stats, answering: "stats") == [])
        #expect(stats["asks_answered"]?.intValue == 3 && stats["asks_failed"]?.intValue == 1 && stats["asks_thinking"]?.intValue == 0)
    }

    /// Offline: scripted entries with purpose "ask" answer with the final JSON directly (matched on the question).
    @Test func theScriptedModelAnswersWithTheFinalJSON() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-ask-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try sqliteUsers(directory)
        let script = (directory as NSString).appendingPathComponent("script.json")
        try Data(JSONValue.object(["replies": [
            ["purpose": "ask", "match": "completed KYC", "reply": ["answer": "400 users completed KYC.", "sql": "SELECT count(*) FROM users WHERE kyc_verified = 1"]],
            ["match": "completed KYC", "reply": "a fix reply, not for asks"],
        ]]).bytes).write(to: URL(fileURLWithPath: script))
        let medic = try MedicHarness { configuration, _ in
            configuration.llm = .scripted(path: script)
            configuration.sources = [usersSource("users", "sqlite:\(path)")]
        }
        defer { medic.stop() }
        let session = try medic.session(try medic.token("alice", role: "admin"))
        let (_, events) = try ask(session, "How many users completed KYC?")
        #expect(askKinds(events) == ["ask_created", "status_changed", "sql_proposed", "sql_result", "answer", "status_changed"])
        let expected = Int(try run("/usr/bin/sqlite3", [path, "SELECT sum(CASE WHEN kyc_verified = 1 THEN 1 ELSE 0 END) FROM users"]).trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(number(first(events, "answer")?["value"]) == expected)
        let (_, unscripted) = try ask(session, "What is the average age?")
        #expect(first(unscripted, "ask_failed")?["reason"]?.stringValue?.contains("the model failed") == true)
    }

    @Test func sourcesAreValidated() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        var example = MedicConfiguration()
        try example.load(file: root + "/config/medic.example.json")
        #expect(example.sources == [SourceConfig(name: "users", url: "sqlite:.medic/demo-users.sqlite", tables: ["users"], sensitiveColumns: ["email", "wallet_address"])])
        #expect(example.sources.first?.kind == "sqlite")
        let good = try SourceConfig.parse(flag: "app_db2=postgres://reader@db/app")
        #expect(good.name == "app_db2" && good.url == "postgres://reader@db/app" && good.kind == "postgres" && good.maxRows == 1000 && good.timeoutMs == 5000)
        for flag in ["users", "=sqlite:/x", ""] { #expect(throws: ConfigurationError.self, "\(flag)") { try SourceConfig.parse(flag: flag) } }
        let bad: [SourceConfig] = [
            SourceConfig(name: "medic", url: "sqlite:/x"), SourceConfig(name: "Users", url: "sqlite:/x"), SourceConfig(name: "1users", url: "sqlite:/x"),
            SourceConfig(name: String(repeating: "a", count: 33), url: "sqlite:/x"), SourceConfig(name: "a-b", url: "sqlite:/x"),
            SourceConfig(name: "users", url: "mysql://x"), SourceConfig(name: "users", url: "sqlite:"), SourceConfig(name: "users", url: "/tmp/x.sqlite"),
            SourceConfig(name: "users", url: "sqlite:/x", maxRows: 0), SourceConfig(name: "users", url: "sqlite:/x", timeoutMs: 5),
            SourceConfig(name: "users", url: "sqlite:/x", tables: [""]),
        ]
        for source in bad {
            var configuration = MedicConfiguration()
            configuration.sources = [source]
            #expect(throws: ConfigurationError.self, "\(source)") { try configuration.validate() }
        }
        var twice = MedicConfiguration()
        twice.sources = [SourceConfig(name: "users", url: "sqlite:/x"), SourceConfig(name: "users", url: "postgres://db/app")]
        #expect(throws: ConfigurationError.self) { try twice.validate() }
        twice.sources[1].name = String(repeating: "b", count: 32)
        try twice.validate()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("medic-sources-\(UUID().uuidString).json").path
        try #"{"sources": [{"name": "medic", "url": "sqlite:/x"}]}"#.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var refused = MedicConfiguration()
        #expect(throws: ConfigurationError.self) { try refused.load(file: path) }
    }

    /// An ask in flight when the server stops is failed at the next start.
    @Test func anAskInterruptedByARestartFails() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-ask-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try sqliteUsers(directory)
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        var medic = try askMedic(fake, sources: [usersSource("users", "sqlite:\(path)")], directory: directory)
        let token = try medic.token("alice", role: "admin")
        try fake.script([["hang": true, "seconds": 20]])
        let ack = try medic.session(token).call(["type": "ask", "question": "how many users?"])
        let id = try #require(ack["ask"]?.stringValue)
        medic.stop()
        medic = try askMedic(fake, sources: [usersSource("users", "sqlite:\(path)")], directory: directory)
        defer { medic.stop() }
        var detail: JSONValue?
        for _ in 0..<50 {
            detail = try restGET(medic, "/api/v1/asks/\(id)", token: token).1
            if detail?["status"]?.stringValue == "failed" { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(detail?["status"]?.stringValue == "failed")
        #expect(detail?["reason"]?.stringValue == "interrupted by a restart")
        let (_, page) = try restGET(medic, "/api/v1/asks/\(id)/events?since=0", token: token)
        #expect(page?["events"]?.arrayValue?.suffix(2).compactMap { $0["kind"]?.stringValue } == ["ask_failed", "status_changed"])
    }
}
