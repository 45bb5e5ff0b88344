// Scaffold until the policy branch lands (replaced by Policy.swift).
public enum Severity: String, Sendable, CaseIterable, Comparable {
    case low, medium, high, critical
    public static func < (a: Severity, b: Severity) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }
}
public struct SeverityRule: Sendable, Equatable {
    public var multiple: Double
    public var users: Int
    public var keywords: [String]
    public init(multiple: Double, users: Int, keywords: [String] = []) { self.multiple = multiple; self.users = users; self.keywords = keywords }
}
public struct SeverityPolicy: Sendable, Equatable {
    public var critical = SeverityRule(multiple: 10, users: 100, keywords: ["password", "payment"])
    public var high = SeverityRule(multiple: 5, users: 20)
    public var medium = SeverityRule(multiple: 3, users: 5)
    public var criticalServices: Set<String> = []
    public init() {}
    public func severity(of anomaly: Anomaly, title: String) -> Severity {
        let text = ([anomaly.subject, title] + anomaly.samples).joined(separator: "\n").lowercased()
        if critical.keywords.contains(where: { text.contains($0.lowercased()) }) { return .critical }
        return .high
    }
}
public struct StormLimits: Sendable, Equatable {
    public var maxAutoBugsPerHour = 3
    public var cooldownMs: Int64 = 900_000
    public init() {}
}
public enum Admission: Sendable, Equatable { case open, merge(String) }
public struct StormGuard: Sendable {
    var open: [String: String] = [:]
    var closed: [String: (String, Int64)] = [:]
    var filed: [Int64] = []
    let limits: StormLimits
    public init(limits: StormLimits) { self.limits = limits }
    public mutating func incidentOpened(key: String, id: String) { open[key] = id }
    public mutating func incidentClosed(key: String, id: String, at: Int64) { open[key] = nil; closed[key] = (id, at) }
    public func admit(key: String, now: Int64) -> Admission {
        if let id = open[key] { return .merge(id) }
        if let (id, at) = closed[key], now - at < limits.cooldownMs { return .merge(id) }
        return .open
    }
    public func mayFileAutomatically(now: Int64) -> Bool { filed.filter { now - $0 < 3_600_000 }.count < limits.maxAutoBugsPerHour }
    public mutating func autoBugFiled(at: Int64) { filed.append(at) }
}
extension Anomaly {
    public var incidentKey: String { kind == .spike || kind == .newError ? subject : "\(kind.rawValue):\(subject)" }
}
