// medic bug: report a bug to a running Medic and read bugs back, over the REST API (/work/bug-spec.md, "Commands"
// and "Reads"): `report` → POST /api/v1/bugs with a random Idempotency-Key, `list` → GET /api/v1/bugs,
// `show ID` → GET /api/v1/bugs/{id}. HTTP is the project's own `HTTPClient` (libcurl multi on our loop).
import ArgumentParser
import EventLoop
import Foundation
import HTTPClient
import Logging
import Protocol

struct Bug: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Report a bug to a running Medic, list bugs, show one.", subcommands: [Report.self, List.self, Show.self])

    /// The server and the credentials every subcommand needs.
    struct ServerOptions: ParsableArguments {
        @Option(help: "Server URL: http(s)://HOST[:PORT].") var url: String = "http://127.0.0.1:8080"
        @Option(help: "Access token (or MEDIC_TOKEN).") var token: String?

        /// The URL without a trailing slash; refused unless http or https.
        func base() throws -> String {
            let trimmed = url.hasSuffix("/") ? String(url.dropLast()) : url
            guard trimmed.hasPrefix("http://") || trimmed.hasPrefix("https://"), trimmed.count > "https://".count else {
                throw ValidationError("--url must be http(s)://HOST[:PORT]")
            }
            return trimmed
        }

        func validate() throws {
            _ = try base()
            _ = try bearer()
        }

        func bearer() throws -> String {
            guard let token = token ?? ProcessInfo.processInfo.environment["MEDIC_TOKEN"], !token.isEmpty else {
                throw ValidationError("--token or MEDIC_TOKEN is required")
            }
            return token
        }
    }

    /// Limits of `report_bug` (bug-spec.md), checked before anything is sent so a mistake is named at once.
    enum Limits {
        static let titleCharacters = 200
        static let descriptionCharacters = 20_000
        static let evidenceItems = 20
        static let evidenceItemBytes = 64 << 10
        static let evidenceTotalBytes = 256 << 10
        static let severities = ["low", "medium", "high", "critical"]
        static let approaches = 1...5
    }

    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Report a bug; prints its id and the address of its page view.")

        @Option(help: "Repository name (as configured on the server).") var repo: String
        @Option(help: "One-line title (1–200 characters).") var title: String
        @Option(help: "The description as text.") var description: String?
        @Option(help: "Read the description from this file ('-' for standard input).") var descriptionFile: String?
        @Option(help: "low, medium, high or critical (server default: medium).") var severity: String?
        @Option(help: "A file of evidence (a log excerpt, a traceback); repeat for more (at most 20).") var evidenceFile: [String] = []
        @Option(help: "How many fix approaches to try (1–5, server default 3).") var approaches: Int?
        @Option(help: "Suite runs per qualified approach and for the base when comparing durations; the median counts (1–5, default 1).")
        var perfRuns: Int?
        @OptionGroup var server: ServerOptions

        func validate() throws {
            guard !repo.isEmpty else { throw ValidationError("--repo must not be empty") }
            let trimmed = title.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { throw ValidationError("--title must not be empty") }
            guard title.count <= Limits.titleCharacters else {
                throw ValidationError("--title has \(title.count) characters; at most \(Limits.titleCharacters)")
            }
            if description != nil && descriptionFile != nil {
                throw ValidationError("give --description or --description-file, not both")
            }
            if let severity, !Limits.severities.contains(severity) {
                throw ValidationError("--severity must be one of \(Limits.severities.joined(separator: ", "))")
            }
            if let perfRuns, !(1...5).contains(perfRuns) { throw ValidationError("--perf-runs must be 1…5") }
            if let approaches, !Limits.approaches.contains(approaches) {
                throw ValidationError("--approaches must be 1…5")
            }
            guard evidenceFile.count <= Limits.evidenceItems else {
                throw ValidationError("at most \(Limits.evidenceItems) --evidence-file")
            }
        }

        /// The request body, reading the description and evidence files.
        func body() throws -> JSONValue {
            var text = description ?? ""
            if let descriptionFile {
                text = try Self.readText(descriptionFile, option: "--description-file", limit: Limits.descriptionCharacters * 4)
            }
            guard text.count <= Limits.descriptionCharacters else {
                throw ValidationError("the description has \(text.count) characters; at most \(Limits.descriptionCharacters)")
            }
            var evidence: [JSONValue] = []
            var total = 0
            for path in evidenceFile {
                let item = try Self.readText(path, option: "--evidence-file", limit: Limits.evidenceItemBytes)
                total += item.utf8.count
                guard total <= Limits.evidenceTotalBytes else {
                    throw ValidationError("the evidence files together exceed \(Limits.evidenceTotalBytes / 1024) KiB")
                }
                evidence.append(.string(item))
            }
            var fields: JSONObject = ["repo": .string(repo), "title": .string(title), "description": .string(text)]
            if let severity { fields["severity"] = .string(severity) }
            if !evidence.isEmpty { fields["evidence"] = .array(evidence) }
            if let approaches { fields["approaches"] = .int(Int64(approaches)) }
            if let perfRuns { fields["perf_runs"] = .int(Int64(perfRuns)) }
            return .object(fields)
        }

        /// A file's text (UTF-8, at most `limit` bytes), or a ValidationError naming the option and the file.
        static func readText(_ path: String, option: String, limit: Int) throws -> String {
            let data: Data?
            if path == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                    throw ValidationError("\(option) \(path): no such file")
                }
                guard !isDirectory.boolValue else { throw ValidationError("\(option) \(path): is a directory") }
                data = FileManager.default.contents(atPath: path)
            }
            guard let data else { throw ValidationError("\(option) \(path): cannot be read") }
            guard data.count <= limit else { throw ValidationError("\(option) \(path): \(data.count) bytes; at most \(limit)") }
            guard let text = String(data: data, encoding: .utf8) else { throw ValidationError("\(option) \(path): not UTF-8 text") }
            return text
        }

        func run() throws {
            let base = try server.base()
            let token = try server.bearer()
            let body: JSONValue
            do { body = try self.body() } catch let error as ValidationError { throw inputError("report", error) }
            let key = "bug-" + UUID().uuidString.lowercased()
            let answer = try restCall(method: "POST", url: base + "/api/v1/bugs", token: token, body: body, idempotencyKey: key)
            guard let id = answer["bug"]?.stringValue ?? answer["id"]?.stringValue else {
                FileHandle.standardError.write(Data("medic bug report: the server's answer names no bug: \(answer.jsonString)\n".utf8))
                throw ExitCode(1)
            }
            print("bug \(id)" + (answer["status"]?.stringValue.map { " (\($0))" } ?? ""))
            print("\(base)/#/bugs/\(id)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List bugs, newest first.")
        @Option(help: "Only bugs with this status (analyzing, reproducing, fixing, proposed, fixed, unfixed, interrupted).")
        var status: String?
        @Option(help: "At most this many.") var limit: Int?
        @Flag(help: "Print the server's JSON answer.") var json = false
        @OptionGroup var server: ServerOptions

        func validate() throws {
            if let status, status.isEmpty || !status.allSatisfy({ $0.isASCII && ($0.isLetter || $0 == "_") }) {
                throw ValidationError("--status must be a status name")
            }
            if let limit, limit < 1 { throw ValidationError("--limit must be ≥ 1") }
        }

        func run() throws {
            var query: [String] = []
            if let status { query.append("status=\(status)") }
            if let limit { query.append("limit=\(limit)") }
            let path = "/api/v1/bugs" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
            let answer = try restCall(method: "GET", url: try server.base() + path, token: try server.bearer(), body: nil, idempotencyKey: nil)
            if json {
                print(answer.jsonString)
                return
            }
            for bug in answer["bugs"]?.arrayValue ?? [] {
                let reproduced: String
                switch bug["reproduced"] {
                case .bool(true)?: reproduced = "reproduced"
                case .bool(false)?: reproduced = "not reproduced"
                default: reproduced = "-"
                }
                let columns = [
                    bug["id"]?.stringValue ?? "?", bug["status"]?.stringValue ?? "?", bug["severity"]?.stringValue ?? "?",
                    bug["repo"]?.stringValue ?? "?", reproduced, bug["proposal"]?.stringValue ?? "-", bug["title"]?.stringValue ?? "",
                ]
                print(columns.joined(separator: "\t"))
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one bug's detail as indented JSON.")
        @Argument(help: "The bug id (b-…).") var id: String
        @OptionGroup var server: ServerOptions

        func validate() throws {
            guard (1...64).contains(id.count), id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
                throw ValidationError("'\(id)' is not a bug id")
            }
        }

        func run() throws {
            let answer = try restCall(
                method: "GET", url: try server.base() + "/api/v1/bugs/" + id, token: try server.bearer(), body: nil, idempotencyKey: nil)
            print(prettyJSON(answer))
        }
    }
}

/// A mistake found while running (a missing file, no token): the message on standard error and exit 64 (usage),
/// without the top-level usage text ArgumentParser prints for a ValidationError thrown from `run()`.
func inputError(_ command: String, _ error: ValidationError) -> ExitCode {
    FileHandle.standardError.write(Data("medic bug \(command): \(error.message)\n".utf8))
    return ExitCode.validationFailure
}

/// One REST call on a loop of its own (`label` starts its error messages): the answer's JSON on a 2xx status. On an error answer the server's code and
/// message go to standard error and the command exits 1; so does a transport failure.
func restCall(method: String, url: String, token: String, body: JSONValue?, idempotencyKey: String?, label: String = "medic bug") throws -> JSONValue {
    let loop = try EventLoop(logger: quietLogger("medic.bug"))
    let client = try HTTPClient(loop: loop)
    var headers = [("Authorization", "Bearer \(token)"), ("Accept", "application/json")]
    if body != nil { headers.append(("Content-Type", "application/json")) }
    if let idempotencyKey { headers.append(("Idempotency-Key", idempotencyKey)) }
    let request = HTTPClientRequest(
        method: method, url: url, headers: headers, body: body?.bytes ?? [], timeoutMilliseconds: 30_000,
        maxResponseBodyBytes: 16 << 20)
    var received: [UInt8] = []
    var outcome: Result<HTTPClientResponseHead, HTTPClientError>?
    client.execute(
        request, onHead: { _ in }, onBody: { chunk in received.append(contentsOf: chunk) },
        onComplete: { result in
            outcome = result
            loop.stop()
        })
    loop.run()
    client.close()
    let fail = { (message: String) -> ExitCode in
        FileHandle.standardError.write(Data("\(label): \(message)\n".utf8))
        return ExitCode(1)
    }
    switch outcome {
    case .failure(let error)?: throw fail("\(method) \(url): \(error.description)")
    case nil: throw fail("\(method) \(url): no answer")
    case .success(let head)?:
        let answer = try? JSONValue.parse(received, limits: JSONParseLimits(maxBytes: 16 << 20, maxDepth: 64))
        guard (200..<300).contains(head.status) else {
            if let error = answer?["error"], let code = error["code"]?.stringValue {
                throw fail("\(code): \(error["message"]?.stringValue ?? "") (HTTP \(head.status))")
            }
            throw fail("HTTP \(head.status): \(String(decoding: received.prefix(500), as: UTF8.self))")
        }
        guard let answer else { throw fail("HTTP \(head.status) with a body that is not JSON") }
        return answer
    }
}

/// Indented JSON with sorted keys, for people.
func prettyJSON(_ value: JSONValue) -> String {
    guard let object = try? JSONSerialization.jsonObject(with: Data(value.bytes), options: [.fragmentsAllowed]),
        let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
    else { return value.jsonString }
    return String(decoding: data, as: UTF8.self)
}
