// LogEvent: one ingested error or log line, and the parsers that make it from what applications write —
// newline-delimited JSON (the ingest API), Python tracebacks (multi-line), nginx access lines, plain text.
// Everything here is untrusted input: bounded, validated, never fatal.
public import Protocol

/// One event, normalised.
public struct LogEvent: Sendable, Equatable {
    public enum Level: String, Sendable, CaseIterable {
        case debug, info, warning, error, critical
    }

    /// Milliseconds since the epoch (server time when the event's own was missing or beyond the skew window).
    public var ts: Int64
    public var service: String
    public var level: Level
    public var message: String
    public var stack: String?
    public var route: String?
    public var status: Int?
    public var latencyMs: Double?
    public var user: String?
    public var tags: [String: String]
    /// The event's own timestamp was missing or too far from the server's clock and was replaced.
    public var clockSkewed: Bool

    public init(
        ts: Int64, service: String, level: Level, message: String, stack: String? = nil, route: String? = nil, status: Int? = nil,
        latencyMs: Double? = nil, user: String? = nil, tags: [String: String] = [:], clockSkewed: Bool = false
    ) {
        self.ts = ts
        self.service = service
        self.level = level
        self.message = message
        self.stack = stack
        self.route = route
        self.status = status
        self.latencyMs = latencyMs
        self.user = user
        self.tags = tags
        self.clockSkewed = clockSkewed
    }

    /// An error for the detector: level error/critical, or a 5xx response.
    public var isError: Bool { level == .error || level == .critical || (status ?? 0) >= 500 }
}

/// Bounds on what one event may carry.
public struct IngestLimits: Sendable, Equatable {
    /// Longest line accepted (default 64 KiB); longer lines are refused, never buffered whole.
    public var maxLineBytes = 64 << 10
    public var maxMessageBytes = 8 << 10
    public var maxStackBytes = 32 << 10
    public var maxTags = 16
    /// An event's `ts` further than this from the server clock is replaced by the server's (default 1 h).
    public var maxSkewMilliseconds: Int64 = 3_600_000

    public init() {}
}

/// Why a line was not accepted (reported per line, never fatal).
public struct LineError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var reason: String
    public var description: String { "line \(line): \(reason)" }
}

public enum IngestParser {
    /// Parses one NDJSON line of the ingest API: `{ts?, service, level?, message, stack?, route?, status?,
    /// latency_ms?, user?, tags?}`. `ts` is epoch milliseconds; missing means server time, and one further
    /// than `maxSkewMilliseconds` from the server clock (or not a number) is replaced by server time, flagged.
    public static func parse(_ line: some Collection<UInt8>, number: Int, now: Int64, limits: IngestLimits = IngestLimits()) -> Result<LogEvent, LineError> {
        guard line.count <= limits.maxLineBytes else { return .failure(LineError(line: number, reason: "line is \(line.count) bytes; at most \(limits.maxLineBytes)")) }
        guard let json = try? JSONValue.parse(Array(line), limits: JSONParseLimits(maxBytes: limits.maxLineBytes, maxDepth: 8)), case .object(let o) = json else {
            return .failure(LineError(line: number, reason: "not a JSON object"))
        }
        guard let message = o["message"]?.stringValue, !message.isEmpty else { return .failure(LineError(line: number, reason: "message (a non-empty string) is required")) }
        guard let service = o["service"]?.stringValue, !service.isEmpty, service.utf8.count <= 128 else {
            return .failure(LineError(line: number, reason: "service (a string of 1…128 bytes) is required"))
        }
        var level = LogEvent.Level.error
        if let text = o["level"]?.stringValue {
            guard let parsed = Self.level(text) else { return .failure(LineError(line: number, reason: "level '\(text.prefix(32))' is not one of debug, info, warning, error, critical")) }
            level = parsed
        }
        var ts = now
        var skewed = true
        if let value = o["ts"]?.intValue {
            if abs(value - now) <= limits.maxSkewMilliseconds { ts = value; skewed = false }
        } else if o["ts"] == nil {
            skewed = false  // no timestamp given: server time is the event's time
        }
        var tags: [String: String] = [:]
        for member in (o["tags"]?.objectValue?.members ?? []).prefix(limits.maxTags) {
            if let value = member.value.stringValue { tags[String(member.key.prefix(64))] = String(value.prefix(256)) }
        }
        let status = o["status"]?.intValue.flatMap { (100...599).contains($0) ? Int($0) : nil }
        let latency: Double? = switch o["latency_ms"] {
        case .int(let i)?: i >= 0 ? Double(i) : nil
        case .number(let d)?: d >= 0 && d.isFinite ? d : nil
        default: nil
        }
        return .success(LogEvent(
            ts: ts, service: service, level: level, message: truncate(message, limits.maxMessageBytes),
            stack: o["stack"]?.stringValue.map { truncate($0, limits.maxStackBytes) }, route: o["route"]?.stringValue.map { String($0.prefix(256)) },
            status: status, latencyMs: latency, user: o["user"]?.stringValue.map { String($0.prefix(128)) }, tags: tags, clockSkewed: skewed))
    }

    static func level(_ text: String) -> LogEvent.Level? {
        switch text.lowercased() {
        case "debug", "trace": .debug
        case "info", "notice": .info
        case "warn", "warning": .warning
        case "error", "err": .error
        case "critical", "crit", "fatal", "emergency", "alert": .critical
        default: nil
        }
    }

    static func truncate(_ text: String, _ bytes: Int) -> String {
        guard text.utf8.count > bytes else { return text }
        var out = String(decoding: text.utf8.prefix(bytes), as: UTF8.self)
        while out.last == "\u{FFFD}" { out.removeLast() }
        return out + "…"
    }
}

/// Lines of a tailed file in one format → events. Python tracebacks span lines: the parser holds the one in
/// progress (bounded) and emits it when the exception line arrives, or `flush` is called.
public struct LineFormatParser: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case json, python, plain, nginx
    }

    public let format: Format
    public let service: String
    private let limits: IngestLimits
    private var traceback: [String] = []
    private var tracebackBytes = 0

    public init(format: Format, service: String, limits: IngestLimits = IngestLimits()) {
        self.format = format
        self.service = service
        self.limits = limits
    }

    /// Feeds one line (without its newline); returns the events it completes.
    public mutating func feed(_ line: String, number: Int, now: Int64) -> [Result<LogEvent, LineError>] {
        switch format {
        case .json:
            return [IngestParser.parse(Array(line.utf8), number: number, now: now, limits: limits).map { event in
                var event = event
                if event.service.isEmpty { event.service = service }
                return event
            }]
        case .plain:
            return line.isEmpty ? [] : [.success(plain(line, now: now))]
        case .nginx:
            return line.isEmpty ? [] : [nginx(line, number: number, now: now)]
        case .python:
            return python(line, now: now)
        }
    }

    /// Emits a traceback still in progress (end of file, or a pause).
    public mutating func flush(now: Int64) -> [LogEvent] {
        guard !traceback.isEmpty else { return [] }
        let lines = traceback
        traceback = []
        tracebackBytes = 0
        return [LogEvent(ts: now, service: service, level: .error, message: lines.last ?? "Traceback", stack: lines.joined(separator: "\n"))]
    }

    private func plain(_ line: String, now: Int64) -> LogEvent {
        let upper = Array(line.prefix(80).uppercased().utf8)
        let has = { (word: StaticString) in upper.containsBytes(UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)) }
        let level: LogEvent.Level =
            has("CRITICAL") || has("FATAL") ? .critical
            : has("ERROR") ? .error : has("WARN") ? .warning : has("DEBUG") ? .debug : .info
        var event = LogEvent(ts: now, service: service, level: level, message: IngestParser.truncate(Self.stripPrefix(line), limits.maxMessageBytes))
        // logfmt-style `user=…` and `ip=…` name who is affected and where from.
        for field in line.prefix(2000).split(separator: " ") where field.hasPrefix("user=") || field.hasPrefix("ip=") {
            let parts = field.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[1].isEmpty else { continue }
            if parts[0] == "user" { event.user = String(parts[1].prefix(128)) } else { event.tags["ip"] = String(parts[1].prefix(64)) }
        }
        return event
    }

    /// A plain line without its leading timestamp and level (`2026-12-05T01:02:03Z ERROR auth: …` → `auth: …`):
    /// they differ on every line and are already the event's time and level.
    static func stripPrefix(_ line: String) -> String {
        var rest = Substring(line)
        for _ in 0..<3 {
            let trimmed = rest.drop { $0 == " " }
            let word = trimmed.prefix { $0 != " " }
            let bare = String(word).trimmingCharacters(in: "[]:,")
            let isTime = bare.count >= 8 && bare.first?.isNumber == true && bare.allSatisfy { $0.isNumber || "-:T.Z+/".contains($0) }
            let isLevel = IngestParser.level(bare) != nil
            guard !word.isEmpty, isTime || isLevel else { break }
            rest = trimmed.dropFirst(word.count)
        }
        let out = rest.drop { $0 == " " }
        return out.isEmpty ? line : String(out)
    }

    /// `Traceback (most recent call last):`, indented frame lines, then `SomeError: message` ends it. Other
    /// lines are plain log lines.
    private mutating func python(_ line: String, now: Int64) -> [Result<LogEvent, LineError>] {
        if line.hasPrefix("Traceback (most recent call last)") {
            let previous = flush(now: now).map { Result<LogEvent, LineError>.success($0) }
            traceback = [line]
            tracebackBytes = line.utf8.count
            return previous
        }
        if !traceback.isEmpty {
            if line.hasPrefix(" ") || line.hasPrefix("\t") || line.isEmpty {
                if tracebackBytes + line.utf8.count <= limits.maxStackBytes {
                    traceback.append(line)
                    tracebackBytes += line.utf8.count + 1
                }
                return []
            }
            // The exception line ends the traceback ("During handling…" lines start a chained one).
            if line.hasPrefix("During handling of the above exception") || line.hasPrefix("The above exception was the direct cause") {
                traceback.append(line)
                return []
            }
            traceback.append(line)
            let event = LogEvent(
                ts: now, service: service, level: .error, message: IngestParser.truncate(line, limits.maxMessageBytes),
                stack: IngestParser.truncate(traceback.joined(separator: "\n"), limits.maxStackBytes))
            traceback = []
            tracebackBytes = 0
            return [.success(event)]
        }
        return line.isEmpty ? [] : [.success(plain(line, now: now))]
    }

    /// nginx "combined" plus `$request_time` at the end (the common `log_format` with timing):
    /// `ip - user [time] "GET /path HTTP/1.1" status bytes "referer" "agent" request_time`.
    private func nginx(_ line: String, number: Int, now: Int64) -> Result<LogEvent, LineError> {
        let quoted = line.split(separator: "\"", omittingEmptySubsequences: false)
        guard quoted.count >= 3 else { return .failure(LineError(line: number, reason: "not an nginx access line")) }
        let head = quoted[0].split(separator: " ")
        let request = quoted[1].split(separator: " ")
        let after = quoted[2].split(separator: " ")
        guard let status = after.first.flatMap({ Int($0) }), (100...599).contains(status) else {
            return .failure(LineError(line: number, reason: "no status code"))
        }
        let latency = quoted.last.flatMap { tail in tail.split(separator: " ").last.flatMap { Double($0) } }.map { $0 * 1000 }
        let route = request.count >= 2 ? String(request[1].prefix(256)) : nil
        let method = request.first.map(String.init) ?? "-"
        let user = head.count >= 3 && head[2] != "-" ? String(head[2].prefix(128)) : nil
        var tags: [String: String] = [:]
        if let ip = head.first { tags["ip"] = String(ip.prefix(64)) }
        return .success(LogEvent(
            ts: now, service: service, level: status >= 500 ? .error : (status >= 400 ? .warning : .info),
            message: "\(method) \(route ?? "-") \(status)", route: route, status: status, latencyMs: latency, user: user, tags: tags))
    }
}

extension Array where Element == UInt8 {
    /// Whether `needle` occurs in these bytes (a plain scan: needles here are a few ASCII bytes, and
    /// `String.contains(String)` builds a search table per call, which dominated the ingest profile).
    func containsBytes<C: Collection>(_ needle: C) -> Bool where C.Element == UInt8 {
        let n = needle.count
        guard n > 0 else { return true }
        guard n <= count, let first = needle.first else { return false }
        var i = 0
        while i <= count - n {
            if self[i] == first {
                var j = 1
                var k = needle.index(after: needle.startIndex)
                while j < n && self[i + j] == needle[k] {
                    j += 1
                    k = needle.index(after: k)
                }
                if j == n { return true }
            }
            i += 1
        }
        return false
    }
}
