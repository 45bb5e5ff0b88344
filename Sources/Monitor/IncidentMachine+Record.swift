// The stored form of an incident (the `workflows` row's `doc`, kind "incident"): its detail plus what the
// machine needs to continue, versioned. A document of an unknown version is refused, never guessed at.
public import Protocol

public struct IncidentRecordError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
}

extension IncidentMachine {
    public static let recordVersion = 1

    public func record(updatedAt: Int64) -> String {
        var o = detail(updatedAt: updatedAt)
        o["v"] = .int(Int64(Self.recordVersion))
        o["baseline_at_open"] = .number(baselineAtOpen)
        o["bug_status"] = bugStatus.map(JSONValue.string) ?? .null
        o["quiet_since"] = quietSince.map(JSONValue.int) ?? .null
        o["loud_since"] = loudSince.map(JSONValue.int) ?? .null
        o["closed_at"] = closedAt.map(JSONValue.int) ?? .null
        o["heal_window_ms"] = .int(settings.healWindowMs)
        o["grace_ms"] = .int(settings.graceMs)
        return JSONValue.object(o).jsonString
    }

    public static func load(document: String) throws(IncidentRecordError) -> IncidentMachine {
        guard case .object(let o)? = try? JSONValue.parse(document) else { throw IncidentRecordError(description: "not a JSON object") }
        guard let v = o["v"]?.intValue else { throw IncidentRecordError(description: "no record version") }
        guard v == Int64(recordVersion) else { throw IncidentRecordError(description: "record version \(v); this build reads \(recordVersion)") }
        func string(_ k: String) throws(IncidentRecordError) -> String {
            guard let s = o[k]?.stringValue else { throw IncidentRecordError(description: "field \(k) missing") }
            return s
        }
        func int(_ k: String) throws(IncidentRecordError) -> Int64 {
            guard let n = o[k]?.intValue else { throw IncidentRecordError(description: "field \(k) missing") }
            return n
        }
        func number(_ k: String) throws(IncidentRecordError) -> Double {
            switch o[k] {
            case .int(let n)?: return Double(n)
            case .number(let d)?: return d
            default: throw IncidentRecordError(description: "field \(k) missing")
            }
        }
        func optString(_ k: String) -> String? { o[k]?.stringValue }
        func optInt(_ k: String) -> Int64? { o[k]?.intValue }
        guard let kind = Anomaly.Kind(rawValue: try string("kind")) else { throw IncidentRecordError(description: "unknown kind") }
        guard let severity = Severity(rawValue: try string("severity")) else { throw IncidentRecordError(description: "unknown severity") }
        guard let status = IncidentStatus(rawValue: try string("status")) else { throw IncidentRecordError(description: "unknown status") }
        var settings = IncidentSettings()
        settings.bucketMs = try int("bucket_ms")
        settings.healWindowMs = try int("heal_window_ms")
        settings.graceMs = try int("grace_ms")
        var m = IncidentMachine(
            id: try string("id"), key: try string("key"), kind: kind, subject: try string("subject"), service: try string("service"),
            title: try string("title"), settings: settings, severity: severity, status: status, value: try number("value"),
            baseline: try number("baseline"), baselineAtOpen: try number("baseline_at_open"), peak: try number("peak"),
            affectedUsers: Int(try int("affected_users")), occurrences: Int(try int("occurrences")), firstSeen: try int("first_seen"),
            lastSeen: try int("last_seen"), openedAt: try int("opened_at"),
            samples: (o["samples"]?.arrayValue ?? []).compactMap(\.stringValue), stack: optString("stack"))
        m.series = (o["series"]?.arrayValue ?? []).compactMap { point in
            guard let pair = point.arrayValue, pair.count == 2, let start = pair[0].intValue else { return nil }
            let value: Double? = switch pair[1] {
            case .int(let n): Double(n)
            case .number(let d): d
            default: nil
            }
            return value.map { Point(start: start, value: $0) }
        }
        m.bug = optString("bug")
        m.bugStatus = optString("bug_status")
        m.proposal = optString("proposal")
        m.automatic = o["automatic"]?.boolValue ?? false
        m.appliedAt = optInt("applied_at")
        m.quietSince = optInt("quiet_since")
        m.loudSince = optInt("loud_since")
        m.healedAt = optInt("healed_at")
        m.closedAt = optInt("closed_at")
        m.mutedUntil = optInt("muted_until")
        m.acknowledgedBy = optString("acknowledged_by")
        m.resolvedBy = optString("resolved_by")
        m.reason = optString("reason")
        return m
    }
}
