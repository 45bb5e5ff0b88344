// medic ask: a plain-language question to a running Medic (issue 14; /work/ask-spec.md "Commands" and "Reads"), over
// the REST API: `POST /api/v1/ask` (random Idempotency-Key) → the ask's id, then `GET /api/v1/asks/{id}/events?since=N`
// until `answer` or `ask_failed`; prints the answer, the SQL it came from and its rows (the value when 1×1).
import ArgumentParser
import Foundation
import Protocol

struct Ask: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask a running Medic a question about a configured database; prints the answer, its SQL and rows.")

    static let questionCharacters = 4000

    @Argument(help: "The question, e.g. \"How many users completed KYC?\" (1–4000 characters).") var question: String
    @Option(help: "Source name (as configured on the server; default: the server's first application source).") var source: String?
    @Option(help: "Give up after this many seconds without an answer.") var timeout: Int = 300
    @Flag(help: "Print the answer event's JSON (with the ask's id) instead of text.") var json = false
    @OptionGroup var server: Bug.ServerOptions

    func validate() throws {
        let trimmed = question.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw ValidationError("the question must not be empty") }
        guard question.count <= Self.questionCharacters else {
            throw ValidationError("the question has \(question.count) characters; at most \(Self.questionCharacters)")
        }
        if let source {
            let bytes = Array(source.utf8)
            guard (1...32).contains(bytes.count), (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(bytes[0]),
                  bytes.allSatisfy({ (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "_") })
            else { throw ValidationError("--source must be a source name ([a-z][a-z0-9_]{0,31})") }
        }
        guard (1...86_400).contains(timeout) else { throw ValidationError("--timeout must be 1…86400 seconds") }
    }

    func run() throws {
        let base = try server.base()
        let token = try server.bearer()
        var fields: JSONObject = ["question": .string(question)]
        if let source { fields["source"] = .string(source) }
        let created = try restCall(
            method: "POST", url: base + "/api/v1/ask", token: token, body: .object(fields), idempotencyKey: "ask-" + UUID().uuidString.lowercased(),
            label: "medic ask")
        guard let id = created["ask"]?.stringValue ?? created["id"]?.stringValue,
              (1...64).contains(id.count), id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        else { throw Self.fail("the server's answer names no ask: \(created.jsonString)") }

        let deadline = Date().addingTimeInterval(TimeInterval(timeout))
        var since: Int64 = 0
        while true {
            let page = try restCall(
                method: "GET", url: "\(base)/api/v1/asks/\(id)/events?since=\(since)", token: token, body: nil, idempotencyKey: nil,
                label: "medic ask")
            let events = page["events"]?.arrayValue ?? []
            for event in events {
                if let seq = event["seq"]?.intValue { since = max(since, seq) }
                let data = event["data"] ?? .object([:])
                switch event["kind"]?.stringValue {
                case "answer":
                    if json {
                        var object = data.objectValue ?? [:]
                        object["ask"] = .string(id)
                        print(JSONValue.object(object).jsonString)
                    } else {
                        print(Self.render(answer: data).joined(separator: "\n"))
                    }
                    return
                case "ask_failed":
                    throw Self.fail("ask \(id) failed: \(Self.terminalSafe(data["reason"]?.stringValue ?? "no reason given"))")
                case "status_changed" where data["status"]?.stringValue == "failed":
                    throw Self.fail("ask \(id) failed: \(Self.terminalSafe(data["reason"]?.stringValue ?? "no reason given"))")
                default:
                    break
                }
            }
            // A full page means more may be waiting: read on at once; otherwise wait a little.
            if events.count < 500 {
                guard Date() < deadline else { throw Self.fail("no answer to ask \(id) within \(timeout) s") }
                Thread.sleep(forTimeInterval: 0.25)
            }
        }
    }

    static func fail(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("medic ask: \(message)\n".utf8))
        return ExitCode(1)
    }

    /// Rows shown in text output (the `answer` event carries up to 1,000; --json prints them all).
    static let shownRows = 20
    /// Characters shown of one cell.
    static let cellCharacters = 40

    /// The answer for people: its text, the SQL, the value (1×1) or a small table, and the row count.
    static func render(answer: JSONValue) -> [String] {
        var lines: [String] = []
        if let text = answer["text"]?.stringValue, !text.isEmpty { lines.append(terminalSafe(text, keepingNewlines: true)); lines.append("") }
        lines.append("SQL: " + terminalSafe(answer["sql"]?.stringValue ?? "(none)"))
        let columns = (answer["columns"]?.arrayValue ?? []).map { terminalSafe(cell($0)) }
        let rows = (answer["rows"]?.arrayValue ?? []).map { ($0.arrayValue ?? []).map { clip(terminalSafe(cell($0))) } }
        let count = answer["row_count"]?.intValue ?? Int64(rows.count)
        if let value = answer["value"] {
            lines.append("")
            lines.append((columns.first.map { "\($0) = " } ?? "") + terminalSafe(cell(value)))
        } else if !columns.isEmpty {
            lines.append("")
            lines.append(contentsOf: table(columns: columns, rows: Array(rows.prefix(shownRows))))
            if rows.count > shownRows { lines.append("… \(rows.count - shownRows) more rows not shown (--json prints them)") }
        }
        let truncated = answer["truncated"]?.boolValue == true ? " (truncated by the row cap)" : ""
        lines.append("(\(count) row\(count == 1 ? "" : "s")\(truncated))")
        return lines
    }

    /// Columns padded to their widest cell, a rule under the header.
    static func table(columns: [String], rows: [[String]]) -> [String] {
        var widths = columns.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            widths.indices.map { i in
                let cell = i < cells.count ? cells[i] : ""
                return cell + String(repeating: " ", count: widths[i] - cell.count)
            }.joined(separator: " | ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        return [line(columns), widths.map { String(repeating: "-", count: $0) }.joined(separator: "-+-")] + rows.map(line)
    }

    /// A JSON cell as text: strings as they are, null as NULL, numbers without a trailing ".0".
    static func cell(_ value: JSONValue) -> String {
        switch value {
        case .null: return "NULL"
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .number(let d): return d.rounded() == d && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        case .array, .object: return value.jsonString
        }
    }

    static func clip(_ text: String) -> String {
        text.count <= cellCharacters ? text : String(text.prefix(cellCharacters - 1)) + "…"
    }

    /// The model's text and database values are untrusted: control characters (an ESC sequence repainting the
    /// terminal, a carriage return hiding a line) are shown as U+FFFD; newlines and tabs become spaces.
    static func terminalSafe(_ text: String, keepingNewlines: Bool = false) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { scalar -> Unicode.Scalar in
            switch scalar.value {
            case 0x0A where keepingNewlines: return scalar
            case 0x0A, 0x09: return " "
            case 0x00..<0x20, 0x7F..<0xA0, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: return "\u{FFFD}"
            default: return scalar
            }
        }))
    }
}
