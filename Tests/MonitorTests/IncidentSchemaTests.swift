// IncidentSchemaTests: what IncidentMachine publishes, whole lives of incidents driven event by event, matches
// protocol/schema (event.<kind>.json, the summary event.incident.json and the detail in event.incident_opened.json),
// and the schemas' enums are the code's. The live run over a real server is LiveSchemaTests'.
import Foundation
@testable import Monitor
import Protocol
import TestSupport
import Testing

private let schemaDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("protocol/schema")

private func schema(_ name: String) throws -> JSONValue {
    try JSONValue.parse([UInt8](try Data(contentsOf: schemaDirectory.appendingPathComponent("\(name).json"))))
}

private func enumValues(_ schema: JSONValue, _ field: String) -> [String] {
    schema["properties"]?[field]?["enum"]?.arrayValue?.compactMap(\.stringValue) ?? []
}

@Suite struct IncidentSchemaTests {
    let t0: Int64 = 1_800_000_000_000

    func anomaly(_ kind: Anomaly.Kind = .newError, value: Double = 30, baseline: Double = 0, at start: Int64) -> Anomaly {
        Anomaly(
            kind: kind, subject: kind == .newError || kind == .spike ? "f-0123456789abcdef" : "api", service: "api", value: value, baseline: baseline,
            bucketStart: start, firstSeen: start + 10, lastSeen: start + 900, affectedUsers: 7, samples: ["cache miss storm on shard 2"])
    }

    var settings: IncidentSettings {
        var s = IncidentSettings()
        s.bucketMs = 1000
        s.healWindowMs = 2000
        s.graceMs = 1000
        return s
    }

    /// Every action the machine publishes, checked against its kind's schema; the summary and detail after each step too.
    final class Checker {
        var kinds: [String] = []
        var problems: [String] = []

        func check(_ machine: IncidentMachine, _ actions: [IncidentAction], now: Int64) throws {
            for case .publish(let kind, let data) in actions {
                kinds.append(kind)
                problems += SchemaValidator.validate(.object(data), against: try schema("event.\(kind)"), at: kind).map { "\(kind): \($0)" }
            }
            // Stored and served the same way: through the record (GET /api/v1/incidents/{id} reads the stored document).
            let reloaded = try IncidentMachine.load(document: machine.record(updatedAt: now))
            problems += SchemaValidator.validate(.object(reloaded.summary(updatedAt: now)), against: try schema("event.incident"), at: "summary")
            problems += SchemaValidator.validate(.object(reloaded.detail(updatedAt: now)), against: try schema("event.incident_opened"), at: "detail")
        }
    }

    @Test func aWholeLifeFromDeferredToRegressedAndReopenedMatchesTheSchemas() throws {
        let checker = Checker()
        // A high-severity new error while the hourly limit is reached: open, auto_bug_deferred.
        let opened = IncidentMachine.open(
            id: "i-abcdefghjk", anomaly: anomaly(at: t0), severity: .high, title: "cache miss storm on shard <n>", stack: nil, settings: settings,
            mayFileAutomatically: false, now: t0 + 1000)
        var m = opened.0
        try checker.check(m, opened.1, now: t0 + 1000)
        #expect(m.status == .open)
        func step(_ event: IncidentEvent, now: Int64, expect status: IncidentStatus) throws {
            let actions = m.handle(event)
            #expect(!actions.contains { if case .reject = $0 { true } else { false } }, "\(event)")
            try checker.check(m, actions, now: now)
            #expect(m.status == status, "\(event)")
        }
        try step(.bucket(start: t0, value: 30), now: t0 + 1000, expect: .open)
        try step(.anomaly(anomaly(value: 40, at: t0 + 1000), severity: .critical, mayFileAutomatically: false, now: t0 + 2000), now: t0 + 2000, expect: .open)
        try step(.acknowledge(by: "alice", role: .admin), now: t0 + 2100, expect: .acknowledged)
        try step(.mute(by: "alice", role: .admin, durationMs: 600_000, now: t0 + 2200), now: t0 + 2200, expect: .muted)
        try step(.resolve(by: "alice", role: .admin, reason: nil, now: t0 + 2300), now: t0 + 2300, expect: .resolved)
        let filing = m.handle(.fileBug(by: "alice", role: .admin))
        #expect(filing == [.fileBug(automatic: false, by: "alice")])
        try step(.bugFiled(bug: "b-abcdefghjk", automatic: false, by: "alice"), now: t0 + 2400, expect: .fixing)
        try step(.bugStatus(bug: "b-abcdefghjk", status: "analyzing", proposal: nil), now: t0 + 2500, expect: .fixing)
        try step(.bugStatus(bug: "b-abcdefghjk", status: "proposed", proposal: "p-abcdefghjk"), now: t0 + 5000, expect: .fixing)
        try step(.proposalStatus(proposal: "p-abcdefghjk", status: .applied, commit: "9c1e5b7", now: t0 + 6000), now: t0 + 6000, expect: .watching)
        // Within the grace: not judged; then two quiet buckets (the window) heal it.
        try step(.bucket(start: t0 + 6000, value: 3), now: t0 + 7000, expect: .watching)
        try step(.bucket(start: t0 + 7000, value: 0), now: t0 + 8000, expect: .watching)
        try step(.bucket(start: t0 + 8000, value: 1), now: t0 + 9000, expect: .healed)
        // Within the cooldown the anomaly comes back: regressed; the fix is rolled back: open again.
        try step(.anomaly(anomaly(value: 50, at: t0 + 10_000), severity: .high, mayFileAutomatically: false, now: t0 + 11_000), now: t0 + 11_000, expect: .regressed)
        try step(.proposalStatus(proposal: "p-abcdefghjk", status: .rolledBack, commit: nil, now: t0 + 12_000), now: t0 + 12_000, expect: .open)
        try step(.resolve(by: "alice", role: .admin, reason: "known", now: t0 + 13_000), now: t0 + 13_000, expect: .resolved)
        #expect(checker.problems.isEmpty, "\(checker.problems)")
        let incidentKinds: Set<String> = [
            "incident_opened", "anomaly", "bucket", "incident_acknowledged", "bug_filed", "auto_bug_deferred", "bug_status", "fix_applied",
            "healed", "regressed", "incident_muted", "incident_resolved", "incident_reopened",
        ]
        #expect(incidentKinds.subtracting(checker.kinds).isEmpty, "not published: \(incidentKinds.subtracting(checker.kinds))")
    }

    @Test func automaticBugsReopeningsAndEveryAnomalyKindMatchTheSchemas() throws {
        let checker = Checker()
        for kind: Anomaly.Kind in [.spike, .newError, .errorRate, .latency, .authBurst, .keyword] {
            let value: Double = kind == .errorRate ? 0.4 : 250
            let opened = IncidentMachine.open(
                id: "i-\(kind.rawValue.prefix(8))", anomaly: anomaly(kind, value: value, baseline: value / 10, at: t0), severity: .critical, title: "t",
                stack: kind == .spike ? "Traceback (most recent call last):\n  File \"app/auth.py\", line 4, in check\nValueError: x" : nil,
                settings: settings, mayFileAutomatically: true, now: t0 + 1000)
            var m = opened.0
            #expect(opened.1.contains(.fileBug(automatic: true, by: "medic:monitor")))
            try checker.check(m, opened.1, now: t0 + 1000)
            try checker.check(m, m.handle(.bugFiled(bug: "b-1234567890", automatic: true, by: "medic:monitor")), now: t0 + 1100)
            // The bug workflow gives up: open again, with why.
            try checker.check(m, m.handle(.bugStatus(bug: "b-1234567890", status: "unfixed", proposal: nil)), now: t0 + 1200)
            #expect(m.status == .open && m.reason != nil)
            // A mute that ended: the next anomaly reopens it.
            try checker.check(m, m.handle(.mute(by: "bob", role: .admin, durationMs: 60_000, now: t0 + 1300)), now: t0 + 1300)
            try checker.check(m, m.handle(.anomaly(anomaly(kind, value: value, at: t0 + 70_000), severity: .low, mayFileAutomatically: true, now: t0 + 71_000)), now: t0 + 71_000)
            #expect(m.status == .fixing)
        }
        // Low severity: recorded (closed) at once.
        let (recorded, actions) = IncidentMachine.open(
            id: "i-recorded00", anomaly: anomaly(at: t0), severity: .low, title: "t", stack: nil, settings: settings, mayFileAutomatically: true, now: t0)
        #expect(recorded.status == .recorded)
        try checker.check(recorded, actions, now: t0)
        #expect(checker.problems.isEmpty, "\(checker.problems)")
        #expect(Set(checker.kinds).isSuperset(of: ["incident_opened", "bug_filed", "bug_status", "incident_reopened", "incident_muted", "anomaly"]))
    }

    @Test func theSchemasEnumsAreTheCodes() throws {
        let statuses = IncidentStatus.allCases.map(\.rawValue)
        let severities = Severity.allCases.map(\.rawValue)
        for name in ["event.incident", "event.incident_opened"] {
            let s = try schema(name)
            #expect(enumValues(s, "status") == statuses, "\(name)")
            #expect(enumValues(s, "severity") == severities, "\(name)")
            let kinds = enumValues(s, "kind")
            #expect(kinds.count == 6 && kinds.allSatisfy { Anomaly.Kind(rawValue: $0) != nil }, "\(name)")
        }
        for command in ["acknowledge_incident", "mute_incident", "resolve_incident"] {
            #expect(enumValues(try schema("ack.\(command)"), "status") == statuses, "\(command)")
        }
        // file_bug is acked once the bug is filed: fixing, with the new bug.
        let fileBug = try schema("ack.file_bug")
        #expect(fileBug["properties"]?["status"]?["const"]?.stringValue == IncidentStatus.fixing.rawValue)
        #expect(fileBug["required"]?.arrayValue?.contains(.string("bug")) == true)
        #expect(enumValues(try schema("event.anomaly"), "severity") == severities)
        #expect(enumValues(try schema("event.anomaly"), "kind") == enumValues(try schema("event.incident"), "kind"))
        // The summary and the detail share their fields: the detail is the summary plus its own.
        let summary = Set(try schema("event.incident")["properties"]?.objectValue?.members.map(\.key) ?? [])
        let detail = Set(try schema("event.incident_opened")["properties"]?.objectValue?.members.map(\.key) ?? [])
        #expect(summary.isSubset(of: detail))
        #expect(detail.subtracting(summary) == ["samples", "stack", "series", "quiet_threshold", "bucket_ms", "acknowledged_by", "resolved_by", "reason"])
    }
}
