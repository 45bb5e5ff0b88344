// ExamplesTests: every file in protocol/examples decodes, re-encodes to an equal value, and matches its schema.

import Foundation
import Protocol
import TestSupport
import Testing

/// The repository's `protocol/` folder, found from this file's path.
let protocolDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("protocol")

func jsonFiles(_ folder: String) throws -> [URL] {
    try FileManager.default.contentsOfDirectory(
        at: protocolDirectory.appendingPathComponent(folder), includingPropertiesForKeys: nil
    ).filter { $0.pathExtension == "json" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
}

func load(_ url: URL) throws -> JSONValue {
    try JSONValue.parse([UInt8](try Data(contentsOf: url)))
}

/// Command types a feature decodes itself (`ClientMessage.feature`): the navigator's `search_code`, the bug
/// workflow's, the asks' and the incidents' commands.
let featureCommandTypes: Set<String> = [
    "search_code", "report_bug", "choose_approach", "resume_bug", "ask", "mark_answer",
    "acknowledge_incident", "file_bug", "mute_incident", "resolve_incident",
]

/// Event kinds a feature publishes that `EventKind` does not list: the bug workflow's (topics `bug:<id>`, `bugs`).
let featureEventKinds: Set<String> = [
    "bug_reported", "bug_analysis", "reproducer_written", "reproducer_verified", "reproducer_rejected", "approach_started",
    "approach_status", "approach_duplicate", "approaches_ranked", "approach_chosen", "bug_proposed", "bug_unfixed", "bug_fixed",
    "proposal_status", "bug", "perf_measured",
    // The ask workflow's (topics `ask:<id>`, `asks`).
    "ask_created", "ask_thinking", "tool_called", "sql_proposed", "sql_result", "sql_refused", "answer", "ask_failed", "ask",
    // The monitor's incidents (topics `incident:<id>`, `incidents`).
    "incident_opened", "anomaly", "bucket", "incident_acknowledged", "bug_filed", "auto_bug_deferred", "bug_status", "fix_applied",
    "healed", "regressed", "incident_muted", "incident_resolved", "incident_reopened", "incident",
]

/// Bug statuses (`status_changed` on `bug:<id>`, `bug.status`) that are not proposal statuses.
let bugOnlyStatuses = ["reproducing", "fixed", "unfixed"]

/// Ask statuses (`status_changed` on `ask:<id>`, `ask.status`) that are neither proposal nor bug statuses.
let askOnlyStatuses = ["thinking", "answered", "failed"]

/// Feature event kinds that are ephemeral (sent live, never stored: no seq).
let featureEphemeralKinds: Set<String> = ["ask_thinking"]

/// `client.subscribe.resume.json` → (`client`, `subscribe`); events → (`server`, `event`) and the kind.
func schemaName(of example: URL) -> String {
    let parts = example.deletingPathExtension().lastPathComponent.split(separator: ".")
    return "\(parts[0]).\(parts[1])"
}

func loadSchema(named name: String) throws -> JSONValue? {
    let url = protocolDirectory.appendingPathComponent("schema/\(name).json")
    guard FileManager.default.fileExists(atPath: url.path) else { return nil }
    return try load(url)
}

@Suite struct ExamplesTests {
    @Test func schemaFilesAreValidJSONSchemasOfTheSupportedSubset() throws {
        let files = try jsonFiles("schema")
        #expect(files.count >= 34)
        for file in files {
            let schema = try load(file)
            #expect(schema["$schema"]?.stringValue == "https://json-schema.org/draft/2020-12/schema", "\(file)")
            #expect(schema["$id"]?.stringValue?.hasSuffix("/" + file.lastPathComponent) == true, "\(file)")
            // Validating any value exercises every keyword: unsupported keywords are reported.
            let problems = SchemaValidator.validate(.null, against: schema).filter { $0.contains("unsupported") }
            #expect(problems.isEmpty, "\(file.lastPathComponent): \(problems)")
        }
    }

    @Test func everyExampleNamesAnExistingSchemaAndMatchesIt() throws {
        let files = try jsonFiles("examples")
        #expect(!files.isEmpty)
        for file in files {
            let name = schemaName(of: file)
            let message = try load(file)
            guard let schema = try loadSchema(named: name) else {
                Issue.record("\(file.lastPathComponent) names schema \(name).json, which does not exist")
                continue
            }
            #expect(SchemaValidator.validate(message, against: schema) == [], "\(file.lastPathComponent)")
            if name == "server.event", let kind = message["kind"]?.stringValue {
                let dataSchema = try #require(try loadSchema(named: "event.\(kind)"), "no schema for kind \(kind)")
                #expect(
                    SchemaValidator.validate(message["data"]!, against: dataSchema) == [], "\(file.lastPathComponent)")
                let ephemeral = EventKind(rawValue: kind)?.isEphemeral ?? featureEphemeralKinds.contains(kind)
                #expect((message["seq"] == nil) == ephemeral, "\(file.lastPathComponent): seq iff durable")
            }
        }
    }

    @Test func everyAckExampleMatchesItsCommandsAckSchemaAndEveryCommandHasOne() throws {
        // server.ack.<command>[.<variant>].json is validated against ack.<command>.json too.
        var seen = Set<String>()
        for file in try jsonFiles("examples") where file.lastPathComponent.hasPrefix("server.ack.") {
            let command = String(file.deletingPathExtension().lastPathComponent.split(separator: ".")[2])
            guard let schema = try loadSchema(named: "ack.\(command)") else {
                Issue.record("\(file.lastPathComponent): no schema ack.\(command).json")
                continue
            }
            seen.insert(command)
            #expect(SchemaValidator.validate(try load(file), against: schema) == [], "\(file.lastPathComponent)")
        }
        #expect(seen == Set(ClientMessage.types).union(featureCommandTypes), "an ack example per client type")
        for type in Set(ClientMessage.types).union(featureCommandTypes) {
            let schema = try #require(try loadSchema(named: "ack.\(type)"), "ack schema for \(type)")
            // Ack schemas are closed: a field they do not list is refused.
            let extra = try JSONValue.parse(#"{"type":"ack","unexpected":1}"#)
            #expect(SchemaValidator.validate(extra, against: schema).contains { $0.contains("unexpected field") }, "\(type)")
        }
    }

    @Test func clientExamplesDecodeAndReencodeToAnEqualValue() throws {
        let files = try jsonFiles("examples").filter { $0.lastPathComponent.hasPrefix("client.") }
        var seenTypes = Set<String>()
        for file in files {
            let bytes = [UInt8](try Data(contentsOf: file))
            let original = try JSONValue.parse(bytes)
            switch ClientMessage.decode(bytes, featureTypes: featureCommandTypes) {
            case .success(let request):
                seenTypes.insert(request.message.type)
                #expect(request.message.type == original["type"]?.stringValue)
                #expect(request.id == original["id"]?.stringValue)
                #expect(request.json == original, "\(file.lastPathComponent)")
                #expect(try JSONValue.parse(request.encode()) == original, "\(file.lastPathComponent)")
                #expect(ClientMessage.decode(request.encode(), featureTypes: featureCommandTypes) == .success(request))
            case .failure(let error):
                Issue.record("\(file.lastPathComponent): \(error)")
            }
        }
        #expect(seenTypes == Set(ClientMessage.types).union(featureCommandTypes), "an example per client type")
        for type in Set(ClientMessage.types).union(featureCommandTypes) {
            #expect(try loadSchema(named: "client.\(type)") != nil, "schema for \(type)")
        }
    }

    @Test func serverExamplesDecodeAndReencodeToAnEqualValue() throws {
        let files = try jsonFiles("examples").filter { $0.lastPathComponent.hasPrefix("server.") }
        var seenTypes = Set<String>()
        var seenKinds = Set<String>()
        for file in files {
            let bytes = [UInt8](try Data(contentsOf: file))
            let original = try JSONValue.parse(bytes)
            switch ServerMessage.decode(bytes) {
            case .success(let message):
                seenTypes.insert(original["type"]!.stringValue!)
                if case .event(let event) = message { seenKinds.insert(event.kind) }
                #expect(try JSONValue.parse(message.encode()) == original, "\(file.lastPathComponent)")
            case .failure(let error):
                Issue.record("\(file.lastPathComponent): \(error)")
            }
        }
        #expect(seenTypes == Set(ServerMessage.types), "an example per server type")
        #expect(seenKinds == Set(EventKind.allCases.map(\.rawValue)).union(featureEventKinds), "an example per event kind")
        for type in ServerMessage.types {
            #expect(try loadSchema(named: "server.\(type)") != nil, "schema for \(type)")
        }
        for kind in EventKind.allCases.map(\.rawValue) + featureEventKinds.sorted() {
            #expect(try loadSchema(named: "event.\(kind)") != nil, "schema for \(kind)")
        }
        // Every event schema is for a kind the server sends.
        let schemaKinds = try jsonFiles("schema").map { $0.deletingPathExtension().lastPathComponent }.filter { $0.hasPrefix("event.") }
            .map { String($0.dropFirst("event.".count)) }
        #expect(Set(schemaKinds) == Set(EventKind.allCases.map(\.rawValue)).union(featureEventKinds))
    }

    @Test func errorCodesInTheSchemaMatchTheEnum() throws {
        let schema = try #require(try loadSchema(named: "server.error"))
        let codes = schema["properties"]?["code"]?["enum"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(codes == ErrorCode.allCases.map(\.rawValue))
        let statusSchema = try #require(try loadSchema(named: "event.status_changed"))
        let statuses = statusSchema["properties"]?["status"]?["enum"]?.arrayValue ?? []
        // Proposal statuses, then the bug statuses that are not proposal statuses (the bug topics' status_changed).
        #expect(statuses.compactMap(\.stringValue) == ProposalStatus.allCases.map(\.rawValue) + bugOnlyStatuses + askOnlyStatuses)
        let analysisSchema = try #require(try loadSchema(named: "event.analysis"))
        let categories = analysisSchema["properties"]?["category"]?["enum"]?.arrayValue ?? []
        #expect(categories.compactMap(\.stringValue) == FailureCategory.allCases.map(\.rawValue))
    }

    @Test func schemaValidatorRejectsBrokenMessages() throws {
        // The validator must be able to fail, or the example checks above prove nothing.
        let schema = try #require(try loadSchema(named: "client.approve"))
        let bad = try JSONValue.parse(#"{"type":"approve","proposal":"a/b","revision":"2"}"#)
        let problems = SchemaValidator.validate(bad, against: schema)
        #expect(problems.contains { $0.contains("$.proposal") })
        #expect(problems.contains { $0.contains("$.revision") })
        let missing = SchemaValidator.validate(try JSONValue.parse(#"{"type":"approve"}"#), against: schema)
        #expect(missing.contains { $0.contains("missing proposal") })
        let closed = try #require(try loadSchema(named: "event.comment"))
        let extra = SchemaValidator.validate(try JSONValue.parse(#"{"principal":"a","text":"t","seq":3}"#), against: closed)
        #expect(extra == ["$: unexpected field seq"])
        // maximum (mute_incident's duration_seconds is 60…604800).
        let mute = try #require(try loadSchema(named: "client.mute_incident"))
        for (seconds, expected) in [(59, ["$.duration_seconds: below 60"]), (60, []), (604_800, []), (604_801, ["$.duration_seconds: above 604800"])] {
            let message = try JSONValue.parse(#"{"type":"mute_incident","incident":"i-1","duration_seconds":\#(seconds)}"#)
            #expect(SchemaValidator.validate(message, against: mute) == expected, "\(seconds)")
        }
    }
}

@Suite struct ReadmeTests {
    /// The reference must mention every name the code knows, so the two cannot drift apart silently.
    @Test func readmeMentionsEveryTypeKindCodeStatusAndCloseCode() throws {
        let readme = try String(contentsOf: protocolDirectory.appendingPathComponent("README.md"), encoding: .utf8)
        for type in ClientMessage.types + ServerMessage.types { #expect(readme.contains("`\(type)`"), "\(type)") }
        for kind in EventKind.allCases { #expect(readme.contains("`\(kind.rawValue)`"), "\(kind)") }
        for kind in featureEventKinds { #expect(readme.contains("`\(kind)`"), "\(kind)") }
        for type in featureCommandTypes { #expect(readme.contains("`\(type)`"), "\(type)") }
        for status in bugOnlyStatuses + askOnlyStatuses { #expect(readme.contains("`\(status)`"), "\(status)") }
        for code in ErrorCode.allCases { #expect(readme.contains("`\(code.rawValue)`"), "\(code)") }
        for status in ProposalStatus.allCases { #expect(readme.contains("`\(status.rawValue)`"), "\(status)") }
        for category in FailureCategory.allCases { #expect(readme.contains("`\(category.rawValue)`"), "\(category)") }
        for close in CloseCode.allCases {
            #expect(
                readme.contains("| \(close.rawValue) |") || readme.contains("| **\(close.rawValue)** |"), "\(close)")
        }
    }
}
