// IncidentMachine: one incident of the monitor, from the anomaly that opened it to healed (or resolved) — pure,
// like the proposal and bug machines: events in, actions out, the clock only in what the events carry. The
// host (`IncidentService`) stores each step with its events before it acts (files bugs, acks commands).
//
//   open ──acknowledge──▶ acknowledged          (medium: waits for an admin)
//   open/acknowledged/regressed/muted ──bug filed──▶ fixing   (critical/high: automatically)
//   fixing ──linked proposal applied──▶ watching ──quiet for the healing window──▶ healed
//   watching ──the anomaly again, or never quiet for a whole window, after the grace──▶ regressed
//   fixing ──the bug workflow gave up──▶ open;  a rolled-back fix ──▶ open
//   any open status ──mute──▶ muted (until), ──resolve──▶ resolved;  low severity ──▶ recorded at once
public import Protocol

public enum IncidentStatus: String, Sendable, CaseIterable, Equatable {
    case open, acknowledged, fixing, watching, healed, regressed, muted, resolved, recorded

    /// Closed incidents take no commands but `file_bug`; anomalies of their key within the cooldown are
    /// counted on them instead of opening another.
    public var isClosed: Bool { self == .healed || self == .resolved || self == .recorded }

    /// Statuses the page's banner shows for a critical incident.
    public var isActive: Bool { [.open, .acknowledged, .fixing, .watching, .regressed].contains(self) }
}

/// Timing of healing (config `monitor.healing`, `monitor.bucket_seconds`).
public struct IncidentSettings: Sendable, Equatable {
    public var bucketMs: Int64 = 60_000
    /// Quiet this long after the grace → healed.
    public var healWindowMs: Int64 = 300_000
    /// After a fix is applied, buckets that start within the grace are not judged (requests in flight).
    public var graceMs: Int64 = 60_000
    public init() {}
}

/// What the machine is told.
public enum IncidentEvent: Sendable, Equatable {
    /// The detector found the incident's anomaly again (or a closed one's within the cooldown). `severity` is
    /// the policy's for it; `mayFileAutomatically` whether the storm limit allows an automatic bug now.
    case anomaly(Anomaly, severity: Severity, mayFileAutomatically: Bool, now: Int64)
    /// A closed bucket's value of the incident's series.
    case bucket(start: Int64, value: Double)
    case acknowledge(by: String, role: Role)
    /// An admin asks for a bug (`file_bug`): checked here, then filed by the host, which feeds `bugFiled`.
    case fileBug(by: String, role: Role)
    case bugFiled(bug: String, automatic: Bool, by: String)
    case bugNotFiled(reason: String)
    case mute(by: String, role: Role, durationMs: Int64, now: Int64)
    case resolve(by: String, role: Role, reason: String?, now: Int64)
    /// The linked bug changed status (raw `BugStatus`), with its proposal when it has one.
    case bugStatus(bug: String, status: String, proposal: String?)
    /// The linked bug's proposal changed status.
    case proposalStatus(proposal: String, status: ProposalStatus, commit: String?, now: Int64)
}

public enum IncidentAction: Sendable, Equatable {
    /// Store and publish on `incident:<id>`.
    case publish(kind: String, data: JSONObject)
    /// File a bug for this incident (the host builds the report).
    case fileBug(automatic: Bool, by: String)
    /// Refuse the command (wire error code, message); nothing changed.
    case reject(code: String, message: String)
    /// The machine ignored the event (for the log).
    case ignored(String)
}

public struct IncidentMachine: Sendable, Equatable {
    public struct Point: Sendable, Equatable {
        public var start: Int64
        public var value: Double
    }

    public let id: String
    public let key: String
    public let kind: Anomaly.Kind
    public let subject: String
    public let service: String
    public let title: String
    public let settings: IncidentSettings
    public internal(set) var severity: Severity
    public internal(set) var status: IncidentStatus
    public internal(set) var value: Double
    public internal(set) var baseline: Double
    /// The baseline when the incident opened: what "healed" is measured against.
    public internal(set) var baselineAtOpen: Double
    public internal(set) var peak: Double
    public internal(set) var affectedUsers: Int
    public internal(set) var occurrences: Int
    public internal(set) var firstSeen: Int64
    public internal(set) var lastSeen: Int64
    public let openedAt: Int64
    public internal(set) var samples: [String]
    public internal(set) var stack: String?
    public internal(set) var series: [Point] = []
    public internal(set) var bug: String?
    public internal(set) var bugStatus: String?
    public internal(set) var proposal: String?
    public internal(set) var automatic = false
    /// A bug is being filed (between `fileBug` and `bugFiled`/`bugNotFiled`).
    public internal(set) var filing = false
    public internal(set) var appliedAt: Int64?
    public internal(set) var quietSince: Int64?
    /// Since when the series has been above the quiet threshold while watching.
    public internal(set) var loudSince: Int64?
    public internal(set) var healedAt: Int64?
    public internal(set) var closedAt: Int64?
    public internal(set) var mutedUntil: Int64?
    public internal(set) var acknowledgedBy: String?
    public internal(set) var resolvedBy: String?
    public internal(set) var reason: String?

    static let maxSeries = 120

    /// Opens an incident for an anomaly the storm guard admitted. critical/high file a bug at once when the
    /// hourly limit allows (else `auto_bug_deferred`, open); medium stays open; low is recorded and closed.
    public static func open(
        id: String, anomaly: Anomaly, severity: Severity, title: String, stack: String?, settings: IncidentSettings,
        mayFileAutomatically: Bool, now: Int64
    ) -> (IncidentMachine, [IncidentAction]) {
        var m = IncidentMachine(
            id: id, key: anomaly.incidentKey, kind: anomaly.kind, subject: anomaly.subject, service: anomaly.service, title: title,
            settings: settings, severity: severity, status: severity == .low ? .recorded : .open, value: anomaly.value,
            baseline: anomaly.baseline, baselineAtOpen: anomaly.baseline, peak: anomaly.value, affectedUsers: anomaly.affectedUsers,
            occurrences: 1, firstSeen: anomaly.firstSeen, lastSeen: anomaly.lastSeen, openedAt: now, samples: Array(anomaly.samples.suffix(5)),
            stack: stack)
        if m.status == .recorded { m.closedAt = now }
        var actions: [IncidentAction] = [.publish(kind: "incident_opened", data: m.detail(updatedAt: now))]
        if severity >= .high { actions += m.fileAutomatically(mayFileAutomatically) }
        return (m, actions)
    }

    /// The value at or under which a bucket counts as quiet: half again the baseline the incident opened with,
    /// and at least 1 error (counts), a 1 % error ratio, or 1 ms.
    public var quietThreshold: Double {
        let floor: Double = switch kind {
        case .errorRate: 0.01
        default: 1
        }
        return max(baselineAtOpen * 1.5, floor)
    }

    // MARK: events

    public mutating func handle(_ event: IncidentEvent) -> [IncidentAction] {
        switch event {
        case .anomaly(let anomaly, let severity, let mayFile, let now): return anomalyAgain(anomaly, severity: severity, mayFile: mayFile, now: now)
        case .bucket(let start, let value): return bucket(start: start, value: value)
        case .acknowledge(let by, let role):
            if let refusal = refuse(role, [.open, .regressed, .muted], "acknowledge") { return [refusal] }
            status = .acknowledged
            acknowledgedBy = by
            mutedUntil = nil
            return [.publish(kind: "incident_acknowledged", data: ["by": .string(by)])]
        case .fileBug(let by, let role):
            if let refusal = refuse(role, [.open, .acknowledged, .regressed, .muted, .healed, .resolved, .recorded], "file a bug for") { return [refusal] }
            if filing { return [.reject(code: "invalid_state", message: "a bug is already being filed for incident \(id)")] }
            filing = true
            return [.fileBug(automatic: false, by: by)]
        case .bugFiled(let bug, let automatic, let by):
            filing = false
            self.bug = bug
            bugStatus = nil
            proposal = nil
            appliedAt = nil
            quietSince = nil
            self.automatic = automatic
            status = .fixing
            closedAt = nil
            reason = nil
            return [.publish(kind: "bug_filed", data: ["bug": .string(bug), "automatic": .bool(automatic), "by": .string(by)])]
        case .bugNotFiled(let why):
            filing = false
            if status == .fixing || status.isClosed { return [.ignored("bug not filed: \(why)")] }
            reason = why
            return [.publish(kind: "auto_bug_deferred", data: ["reason": .string(why)])]
        case .mute(let by, let role, let duration, let now):
            if let refusal = refuse(role, [.open, .acknowledged, .regressed, .muted, .fixing, .watching], "mute") { return [refusal] }
            status = .muted
            mutedUntil = now + duration
            return [.publish(kind: "incident_muted", data: ["until": .int(now + duration), "by": .string(by)])]
        case .resolve(let by, let role, let why, let now):
            if let refusal = refuse(role, IncidentStatus.allCases.filter { !$0.isClosed }, "resolve") { return [refusal] }
            status = .resolved
            resolvedBy = by
            reason = why
            closedAt = now
            mutedUntil = nil
            return [.publish(kind: "incident_resolved", data: ["by": .string(by), "reason": why.map(JSONValue.string) ?? .null])]
        case .bugStatus(let bug, let bugState, let proposal):
            guard bug == self.bug else { return [.ignored("bug \(bug) is not this incident's")] }
            bugStatus = bugState
            if let proposal { self.proposal = proposal }
            var actions: [IncidentAction] = [.publish(kind: "bug_status", data: [
                "bug": .string(bug), "status": .string(bugState), "proposal": self.proposal.map(JSONValue.string) ?? .null,
            ])]
            if status == .fixing, ["unfixed", "interrupted"].contains(bugState) {
                status = .open
                reason = "the bug workflow ended \(bugState): an admin decides"
                actions.append(.publish(kind: "incident_reopened", data: ["reason": .string(reason!)]))
            }
            return actions
        case .proposalStatus(let proposal, let proposalStatus, let commit, let now):
            self.proposal = proposal
            switch proposalStatus {
            case .applied where status == .fixing || status == .regressed || status == .muted:
                status = .watching
                appliedAt = now
                quietSince = nil
                loudSince = nil
                mutedUntil = nil
                return [.publish(kind: "fix_applied", data: ["proposal": .string(proposal), "commit": commit.map(JSONValue.string) ?? .null])]
            case .rolledBack where status == .watching || status == .regressed || status == .healed:
                status = .open
                appliedAt = nil
                healedAt = nil
                closedAt = nil
                reason = "the fix \(proposal) was rolled back"
                return [.publish(kind: "incident_reopened", data: ["reason": .string(reason!)])]
            default:
                return [.ignored("proposal \(proposal) is \(proposalStatus.rawValue)")]
            }
        }
    }

    private func refuse(_ role: Role, _ allowed: [IncidentStatus], _ what: String) -> IncidentAction? {
        guard role == .admin else { return .reject(code: "forbidden", message: "only admins may \(what) an incident") }
        guard allowed.contains(status) else { return .reject(code: "invalid_state", message: "cannot \(what) incident \(id): it is \(status.rawValue)") }
        return nil
    }

    static let hourlyLimitReason = "the hourly limit of automatic bug reports is reached: file_bug files one"

    /// Files a bug automatically when the hourly limit allows; else says so with `auto_bug_deferred` — once: while
    /// the incident's `reason` is still that deferral (nothing happened to it since), a further anomaly says
    /// nothing again.
    private mutating func fileAutomatically(_ allowed: Bool) -> [IncidentAction] {
        guard bug == nil, !filing else { return [] }
        guard allowed else {
            if reason == Self.hourlyLimitReason { return [.ignored("the automatic bug is still deferred")] }
            reason = Self.hourlyLimitReason
            return [.publish(kind: "auto_bug_deferred", data: ["reason": .string(Self.hourlyLimitReason)])]
        }
        filing = true
        return [.fileBug(automatic: true, by: "medic:monitor")]
    }

    private mutating func anomalyAgain(_ anomaly: Anomaly, severity newSeverity: Severity, mayFile: Bool, now: Int64) -> [IncidentAction] {
        value = anomaly.value
        baseline = anomaly.baseline
        peak = max(peak, anomaly.value)
        affectedUsers = max(affectedUsers, anomaly.affectedUsers)
        occurrences += 1
        lastSeen = max(lastSeen, anomaly.lastSeen)
        if !anomaly.samples.isEmpty { samples = Array(anomaly.samples.suffix(5)) }
        var actions: [IncidentAction] = [.publish(kind: "anomaly", data: [
            "kind": .string(anomaly.kind.rawValue), "value": .number(anomaly.value), "baseline": .number(anomaly.baseline),
            "bucket_start": .int(anomaly.bucketStart), "affected_users": .int(Int64(anomaly.affectedUsers)),
            "samples": .array(anomaly.samples.suffix(5).map(JSONValue.string)), "severity": .string(max(severity, newSeverity).rawValue),
        ])]
        severity = max(severity, newSeverity)
        switch status {
        case .watching where anomaly.bucketStart >= (appliedAt ?? 0) + settings.graceMs, .healed:
            status = .regressed
            quietSince = nil
            healedAt = nil
            closedAt = nil
            reason = "still happening after the fix \(proposal ?? "")"
            actions.append(.publish(kind: "regressed", data: [
                "value": .number(anomaly.value), "baseline": .number(baselineAtOpen), "proposal": proposal.map(JSONValue.string) ?? .null,
            ]))
        case .muted where now >= (mutedUntil ?? 0):
            status = bug == nil ? .open : .fixing
            mutedUntil = nil
            reason = "the mute ended and it is still happening"
            actions.append(.publish(kind: "incident_reopened", data: ["reason": .string(reason!)]))
        case .open, .acknowledged:
            if severity >= .high { actions += fileAutomatically(mayFile) }
        default:
            break
        }
        return actions
    }

    private mutating func bucket(start: Int64, value: Double) -> [IncidentAction] {
        guard !status.isClosed else { return [.ignored("closed")] }
        series.append(Point(start: start, value: value))
        if series.count > Self.maxSeries { series.removeFirst(series.count - Self.maxSeries) }
        var actions: [IncidentAction] = [.publish(kind: "bucket", data: ["bucket_start": .int(start), "value": .number(value)])]
        guard status == .watching, let appliedAt, start >= appliedAt + settings.graceMs else { return actions }
        guard value <= quietThreshold else {
            // Never quiet for a whole window after the fix: the fix did not help.
            quietSince = nil
            let since = loudSince ?? start
            loudSince = since
            if start + settings.bucketMs - since >= settings.healWindowMs {
                status = .regressed
                loudSince = nil
                reason = "still happening after the fix \(proposal ?? "")"
                actions.append(.publish(kind: "regressed", data: [
                    "value": .number(value), "baseline": .number(baselineAtOpen), "proposal": proposal.map(JSONValue.string) ?? .null,
                ]))
            }
            return actions
        }
        loudSince = nil
        let since = quietSince ?? start
        quietSince = since
        let end = start + settings.bucketMs
        if end - since >= settings.healWindowMs {
            status = .healed
            healedAt = end
            closedAt = end
            reason = nil
            actions.append(.publish(kind: "healed", data: [
                "time_to_heal_ms": .int(end - openedAt), "fix_to_heal_ms": .int(end - appliedAt), "window_ms": .int(settings.healWindowMs),
            ]))
        }
        return actions
    }

    // MARK: views

    /// The list item (and the `incident` event on topic `incidents`).
    public func summary(updatedAt: Int64) -> JSONObject {
        func opt(_ s: String?) -> JSONValue { s.map(JSONValue.string) ?? .null }
        func opt(_ n: Int64?) -> JSONValue { n.map(JSONValue.int) ?? .null }
        return [
            "id": .string(id), "key": .string(key), "kind": .string(kind.rawValue), "subject": .string(subject), "service": .string(service),
            "severity": .string(severity.rawValue), "status": .string(status.rawValue), "title": .string(title),
            "value": .number(value), "baseline": .number(baseline), "peak": .number(peak), "affected_users": .int(Int64(affectedUsers)),
            "occurrences": .int(Int64(occurrences)), "first_seen": .int(firstSeen), "last_seen": .int(lastSeen), "opened_at": .int(openedAt),
            "updated_at": .int(updatedAt), "bug": opt(bug), "proposal": opt(proposal), "automatic": .bool(automatic),
            "muted_until": opt(mutedUntil), "applied_at": opt(appliedAt), "healed_at": opt(healedAt),
            "time_to_heal_ms": opt(healedAt.map { $0 - openedAt }),
        ]
    }

    /// The incident view.
    public func detail(updatedAt: Int64) -> JSONObject {
        var o = summary(updatedAt: updatedAt)
        o["samples"] = .array(samples.map(JSONValue.string))
        o["stack"] = stack.map(JSONValue.string) ?? .null
        o["series"] = .array(series.map { .array([.int($0.start), .number($0.value)]) })
        o["quiet_threshold"] = .number(quietThreshold)
        o["bucket_ms"] = .int(settings.bucketMs)
        o["acknowledged_by"] = acknowledgedBy.map(JSONValue.string) ?? .null
        o["resolved_by"] = resolvedBy.map(JSONValue.string) ?? .null
        o["reason"] = reason.map(JSONValue.string) ?? .null
        return o
    }
}
