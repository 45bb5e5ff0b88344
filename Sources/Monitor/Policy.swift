// Policy: how severe an anomaly is (config `monitor.policy`), and the storm guard that keeps the monitor from
// opening an incident or filing a bug per bucket — one open incident per key, a cooldown after closing, and
// an hourly limit on automatic bug reports. Pure; the caller passes the clock.

public enum Severity: String, Sendable, CaseIterable, Comparable {
    case low, medium, high, critical

    public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }

    var rank: Int { Severity.allCases.firstIndex(of: self) ?? 0 }

    /// One level up, at most critical.
    var raised: Severity { Severity.allCases[min(rank + 1, Severity.allCases.count - 1)] }
}

/// When a level applies: the anomaly is at least `multiple` times its baseline, or affects at least `users`
/// users (when `users` > 0), or one of `keywords` appears (case-insensitive substring) in its subject, title or
/// samples.
public struct SeverityRule: Sendable, Equatable {
    public var multiple: Double
    public var users: Int
    public var keywords: [String]

    public init(multiple: Double, users: Int, keywords: [String] = []) {
        self.multiple = multiple
        self.users = users
        self.keywords = keywords
    }

    /// `m` nil: the multiple rule does not apply (a new error has no baseline).
    func applies(multiple m: Double?, users u: Int, text: String) -> Bool {
        m.map { $0 >= multiple } == true || (users > 0 && u >= users) || keywords.contains { !$0.isEmpty && text.contains($0.lowercased()) }
    }
}

public struct SeverityPolicy: Sendable, Equatable {
    public var critical = SeverityRule(multiple: 10, users: 100, keywords: ["password", "payment"])
    public var high = SeverityRule(multiple: 5, users: 20)
    public var medium = SeverityRule(multiple: 3, users: 5)
    /// Anomalies of these services go one level up.
    public var criticalServices: Set<String> = []

    public init() {}

    /// What a new error is at least: it is new and at volume, worth an admin's look, but its count alone says
    /// nothing of how bad it is (it has no baseline to be a multiple of).
    public static let newErrorLevel: Severity = .medium

    /// The anomaly's multiple of its baseline: value ÷ max(baseline, floor) — floor 1 for counts, 0.01 for
    /// error ratios, 1 ms for latency. The highest level whose rule applies wins (none: low); an auth burst is
    /// at least high (a security threat); then a critical service goes one level up.
    ///
    /// A new error has no baseline (its value is its first bucket's count, so the multiple would be the count
    /// and every new error at volume critical): the multiple rules do not apply to it; its level comes from its
    /// affected users and keywords, and is at least `newErrorLevel` (medium).
    public func severity(of anomaly: Anomaly, title: String) -> Severity {
        let floor: Double = anomaly.kind == .errorRate ? 0.01 : 1
        let multiple: Double? = anomaly.kind == .newError ? nil : anomaly.value / max(anomaly.baseline, floor)
        let text = ([anomaly.subject, title] + anomaly.samples).joined(separator: "\n").lowercased()
        var level: Severity =
            critical.applies(multiple: multiple, users: anomaly.affectedUsers, text: text) ? .critical
            : high.applies(multiple: multiple, users: anomaly.affectedUsers, text: text) ? .high
            : medium.applies(multiple: multiple, users: anomaly.affectedUsers, text: text) ? .medium : .low
        if anomaly.kind == .authBurst { level = max(level, .high) }
        if anomaly.kind == .newError { level = max(level, Self.newErrorLevel) }
        if criticalServices.contains(anomaly.service) { level = level.raised }
        return level
    }
}

public struct StormLimits: Sendable, Equatable {
    /// Automatic bug reports in any sliding hour (default 3).
    public var maxAutoBugsPerHour = 3
    /// After an incident closes, its key's anomalies are counted on it for this long (default 15 min).
    public var cooldownMs: Int64 = 900_000

    public init(maxAutoBugsPerHour: Int = 3, cooldownMs: Int64 = 900_000) {
        self.maxAutoBugsPerHour = maxAutoBugsPerHour
        self.cooldownMs = cooldownMs
    }
}

/// Whether an anomaly opens an incident or is counted on an existing one.
public enum Admission: Sendable, Equatable {
    case open
    case merge(String)
}

/// The storm limits' state: open incidents by key, recently closed ones, automatic bugs of the last hour.
/// Rebuilt from the stored incidents at startup.
public struct StormGuard: Sendable {
    public let limits: StormLimits
    private var open: [String: String] = [:]
    private var closed: [String: (id: String, at: Int64)] = [:]
    private var autoBugs: [Int64] = []

    public init(limits: StormLimits) { self.limits = limits }

    public mutating func incidentOpened(key: String, id: String) {
        open[key] = id
        closed[key] = nil
    }

    public mutating func incidentClosed(key: String, id: String, at: Int64) {
        if open[key] == id { open[key] = nil }
        closed[key] = (id, at)
    }

    /// `.merge(id)`: an open incident of this key, or one closed less than the cooldown ago; `.open` otherwise.
    public func admit(key: String, now: Int64) -> Admission {
        if let id = open[key] { return .merge(id) }
        if let last = closed[key], now - last.at < limits.cooldownMs { return .merge(last.id) }
        return .open
    }

    public func mayFileAutomatically(now: Int64) -> Bool {
        autoBugs.filter { now - $0 < 3_600_000 }.count < limits.maxAutoBugsPerHour
    }

    public mutating func autoBugFiled(at: Int64) {
        autoBugs.append(at)
        autoBugs.removeAll { at - $0 >= 3_600_000 }  // bounded: only the last hour is kept
    }
}

extension Anomaly {
    /// What one incident is about: the fingerprint for spikes and new errors (a new error that later spikes is
    /// the same incident), `kind:subject` otherwise.
    public var incidentKey: String { kind == .spike || kind == .newError ? subject : "\(kind.rawValue):\(subject)" }
}
