// MonitorConfiguration: the `monitor` object of the config file (README "Monitor" documents every key):
// which files the loop tails, bucket length and history, the ingest rate, the detector's thresholds, the
// severity policy with its storm limits, and healing timing.
import Foundation
public import Monitor

/// One file the monitor tails (`monitor.files[]`).
public struct MonitorFile: Sendable, Equatable, Decodable {
    public var path: String
    public var service: String
    public var format: LineFormatParser.Format

    public init(path: String, service: String, format: LineFormatParser.Format) {
        self.path = path
        self.service = service
        self.format = format
    }

    enum CodingKeys: String, CodingKey { case path, service, format }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let format = try c.decodeIfPresent(String.self, forKey: .format) ?? "plain"
        guard let parsed = LineFormatParser.Format(rawValue: format) else {
            throw ConfigurationError("monitor.files: format '\(format)' is not one of json, python, plain, nginx")
        }
        self.init(path: try c.decode(String.self, forKey: .path), service: try c.decode(String.self, forKey: .service), format: parsed)
    }
}

public struct MonitorConfiguration: Sendable, Equatable {
    /// The repository bugs are filed against (nil: the first configured).
    public var repo: String?
    public var files: [MonitorFile] = []
    public var detection = DetectionThresholds()
    /// Buckets read back at startup to rebuild the baselines (default 240).
    public var restoreBuckets = 240
    /// Stored buckets and fingerprints older than this are deleted (default 168 h).
    public var retentionHours = 168
    /// Per ingest token: sustained lines per second and the burst (token bucket).
    public var maxLinesPerSecond = 200_000
    public var burstLines = 400_000
    public var policy = SeverityPolicy()
    public var storm = StormLimits()
    /// Approaches of an automatically filed bug.
    public var autoBugApproaches = 3
    public var healing = IncidentSettings()

    public init() {}

    public var bucketSeconds: Int {
        get { Int(detection.bucketMilliseconds / 1000) }
        set {
            detection.bucketMilliseconds = Int64(newValue) * 1000
            healing.bucketMs = Int64(newValue) * 1000
        }
    }

    func validate() throws {
        guard (1...3600).contains(bucketSeconds) else { throw ConfigurationError("monitor.bucket_seconds must be 1…3600, got \(bucketSeconds)") }
        guard (0...100_000).contains(restoreBuckets) else { throw ConfigurationError("monitor.restore_buckets must be 0…100000") }
        guard (1...87_600).contains(retentionHours) else { throw ConfigurationError("monitor.retention_hours must be 1…87600") }
        guard maxLinesPerSecond >= 1, burstLines >= 1 else { throw ConfigurationError("monitor.ingest limits must be positive") }
        guard detection.alpha > 0, detection.alpha <= 1 else { throw ConfigurationError("monitor.detection.alpha must be in (0, 1]") }
        guard (1...10_000_000).contains(detection.maxFingerprints) else { throw ConfigurationError("monitor.detection.max_fingerprints must be 1…10000000") }
        guard (0...1000).contains(storm.maxAutoBugsPerHour) else { throw ConfigurationError("monitor.policy.max_auto_bugs_per_hour must be 0…1000") }
        guard (1...5).contains(autoBugApproaches) else { throw ConfigurationError("monitor.policy.auto_bug_approaches must be 1…5") }
        guard healing.healWindowMs >= healing.bucketMs else { throw ConfigurationError("monitor.healing.window_seconds must be at least one bucket") }
        var seen = Set<String>()
        for file in files {
            guard file.path.hasPrefix("/") || !file.path.isEmpty else { throw ConfigurationError("monitor.files: empty path") }
            guard !file.service.isEmpty, file.service.utf8.count <= 128 else { throw ConfigurationError("monitor.files: service must be 1…128 bytes") }
            guard seen.insert(file.path).inserted else { throw ConfigurationError("monitor.files: \(file.path) is listed twice") }
        }
    }

    /// The file form (snake_case, all optional).
    struct FileForm: Decodable {
        struct Ingest: Decodable { var max_lines_per_second: Int?; var burst_lines: Int? }
        struct Detection: Decodable {
            var alpha: Double?; var warmup_buckets: Int?; var spike_sigma: Double?; var spike_ratio: Double?; var spike_min_count: Int?
            var new_fingerprint_min_count: Int?; var error_ratio_floor: Double?; var error_ratio_multiple: Double?; var min_requests: Int?
            var error_rate_min_errors: Int?; var latency_multiple: Double?; var latency_min_increase_ms: Double?
            var auth_failures_per_source: Int?; var keyword_min_count: Int?; var max_fingerprints: Int?
        }
        struct Rule: Decodable { var multiple: Double?; var users: Int?; var keywords: [String]? }
        struct Policy: Decodable {
            var critical: Rule?; var high: Rule?; var medium: Rule?; var critical_services: [String]?
            var max_auto_bugs_per_hour: Int?; var cooldown_seconds: Int?; var auto_bug_approaches: Int?
        }
        struct Healing: Decodable { var window_seconds: Int?; var grace_seconds: Int? }
        var repo: String?
        var files: [MonitorFile]?
        var bucket_seconds: Int?
        var restore_buckets: Int?
        var retention_hours: Int?
        var ingest: Ingest?
        var detection: Detection?
        var policy: Policy?
        var healing: Healing?
    }

    /// Applies the file form on top of the current values.
    mutating func apply(_ f: FileForm) throws {
        if let v = f.repo { repo = v }
        if let v = f.files { files = v }
        if let v = f.bucket_seconds { bucketSeconds = v }
        if let v = f.restore_buckets { restoreBuckets = v }
        if let v = f.retention_hours { retentionHours = v }
        if let v = f.ingest?.max_lines_per_second { maxLinesPerSecond = v }
        if let v = f.ingest?.burst_lines { burstLines = v }
        if let d = f.detection {
            if let v = d.alpha { detection.alpha = v }
            if let v = d.warmup_buckets { detection.warmupBuckets = v }
            if let v = d.spike_sigma { detection.spikeSigma = v }
            if let v = d.spike_ratio { detection.spikeRatio = v }
            if let v = d.spike_min_count { detection.spikeMinCount = v }
            if let v = d.new_fingerprint_min_count { detection.newFingerprintMinCount = v }
            if let v = d.error_ratio_floor { detection.errorRatioFloor = v }
            if let v = d.error_ratio_multiple { detection.errorRatioMultiple = v }
            if let v = d.min_requests { detection.minRequests = v }
            if let v = d.error_rate_min_errors { detection.errorRateMinErrors = v }
            if let v = d.latency_multiple { detection.latencyMultiple = v }
            if let v = d.latency_min_increase_ms { detection.latencyMinIncreaseMs = v }
            if let v = d.auth_failures_per_source { detection.authFailuresPerSource = v }
            if let v = d.keyword_min_count { detection.keywordMinCount = v }
            if let v = d.max_fingerprints { detection.maxFingerprints = v }
        }
        if let p = f.policy {
            func rule(_ r: FileForm.Rule?, _ base: SeverityRule) -> SeverityRule {
                guard let r else { return base }
                return SeverityRule(multiple: r.multiple ?? base.multiple, users: r.users ?? base.users, keywords: r.keywords ?? base.keywords)
            }
            policy.critical = rule(p.critical, policy.critical)
            policy.high = rule(p.high, policy.high)
            policy.medium = rule(p.medium, policy.medium)
            if let v = p.critical_services { policy.criticalServices = Set(v) }
            if let v = p.max_auto_bugs_per_hour { storm.maxAutoBugsPerHour = v }
            if let v = p.cooldown_seconds { storm.cooldownMs = Int64(v) * 1000 }
            if let v = p.auto_bug_approaches { autoBugApproaches = v }
        }
        if let v = f.healing?.window_seconds { healing.healWindowMs = Int64(v) * 1000 }
        if let v = f.healing?.grace_seconds { healing.graceMs = Int64(v) * 1000 }
    }
}
