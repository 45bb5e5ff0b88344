// Detector: anomalies in a stream of events, per time bucket, against baselines it learns — spikes of an error
// fingerprint, a new error at volume, the error ratio and p95 latency of a service, bursts of authentication
// failures from one source, and a complaint word across many errors. Pure: the caller feeds events and closes
// buckets with its clock; nothing here reads time.

/// Thresholds (config `monitor.detection`; every one documented in README "Monitor").
public struct DetectionThresholds: Sendable, Equatable {
    /// Bucket length (default 60 s).
    public var bucketMilliseconds: Int64 = 60_000
    /// EWMA weight of the newest bucket (default 0.1: about ten buckets of memory).
    public var alpha = 0.1
    /// Buckets of history before a baseline may flag a spike (default 10).
    public var warmupBuckets = 10
    /// A spike: at least this many standard deviations over the baseline… (default 6)
    public var spikeSigma = 6.0
    /// …and this many times the baseline mean… (default 3)
    public var spikeRatio = 3.0
    /// …and at least this many events in the bucket (default 20).
    public var spikeMinCount = 20
    /// A fingerprint never seen before with at least this many events in its first bucket, or in its first full
    /// bucket when it started after the first one's start (default 20).
    public var newFingerprintMinCount = 20
    /// Service error ratio (5xx / requests) at least this (default 0.05) and this many times its baseline (3),
    /// over at least `minRequests` requests (50)…
    public var errorRatioFloor = 0.05
    public var errorRatioMultiple = 3.0
    public var minRequests = 50
    /// …with at least this many errors (default 10), more than `spikeSigma` binomial standard deviations over
    /// what the baseline ratio predicts for that many requests (a few 5xx in a small bucket are noise).
    public var errorRateMinErrors = 10
    /// p95 latency at least this many times its baseline (default 2) and this much higher (200 ms), and the
    /// requests slower than that line more than `spikeSigma` binomial standard deviations over the share the
    /// baseline predicts, at least 5 % (a service with a slow tail of a few percent flips its p95 in small buckets
    /// by chance).
    public var latencyMultiple = 2.0
    public var latencyMinIncreaseMs = 200.0
    /// Authentication failures from one source (user or ip) in one bucket (default 20).
    public var authFailuresPerSource = 20
    /// A word in at least this many error messages of one bucket (default 50), of at least two different errors,
    /// and 3× its baseline.
    public var keywordMinCount = 50
    /// Most fingerprints tracked (default 100,000; the least recently seen are dropped first).
    public var maxFingerprints = 100_000

    public init() {}
}

/// One finding.
public struct Anomaly: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case spike, newError = "new_error", errorRate = "error_rate", latency, authBurst = "auth_burst", keyword
    }

    public var kind: Kind
    /// The fingerprint id (spike, new_error), service (error_rate, latency), source (auth_burst), or word.
    public var subject: String
    public var service: String
    /// The bucket's value (count, ratio or p95 ms) and the baseline's.
    public var value: Double
    public var baseline: Double
    public var bucketStart: Int64
    public var firstSeen: Int64
    public var lastSeen: Int64
    public var affectedUsers: Int
    public var samples: [String]

    public init(
        kind: Kind, subject: String, service: String, value: Double, baseline: Double, bucketStart: Int64, firstSeen: Int64, lastSeen: Int64,
        affectedUsers: Int, samples: [String]
    ) {
        self.kind = kind
        self.subject = subject
        self.service = service
        self.value = value
        self.baseline = baseline
        self.bucketStart = bucketStart
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.affectedUsers = affectedUsers
        self.samples = samples
    }
}

/// What one closed bucket held, for the store (a restart replays these into the baselines) and for open
/// incidents (their series and healing).
public struct ClosedBucket: Sendable, Equatable {
    public struct ServiceFigures: Sendable, Equatable {
        public var requests: Int
        public var errors: Int
        /// p95 latency (ms) when the bucket had at least 20 timed requests, and the share of its requests over
        /// the slow line (`latencyMultiple` × the baseline p95, at least `latencyMinIncreaseMs` over it).
        public var p95: Double?
        public var slowShare: Double?
        public init(requests: Int, errors: Int, p95: Double?, slowShare: Double? = nil) {
            self.requests = requests
            self.errors = errors
            self.p95 = p95
            self.slowShare = slowShare
        }
    }

    public var start: Int64
    /// Error count per fingerprint id (only fingerprints seen in the bucket).
    public var fingerprints: [String: Int] = [:]
    public var services: [String: ServiceFigures] = [:]
    /// Authentication failures per source, and error-message words (transient: not stored).
    public var authFailures: [String: Int] = [:]
    public var keywords: [String: Int] = [:]
    public var anomalies: [Anomaly] = []

    public init(start: Int64) { self.start = start }

    /// The bucket's value of an incident's series (`Anomaly.kind` + subject): an error count, a ratio or a p95.
    public func value(kind: Anomaly.Kind, subject: String) -> Double {
        switch kind {
        case .spike, .newError: Double(fingerprints[subject] ?? 0)
        case .errorRate: services[subject].map { $0.requests > 0 ? Double($0.errors) / Double($0.requests) : 0 } ?? 0
        case .latency: services[subject]?.p95 ?? 0
        case .authBurst: Double(authFailures[subject] ?? 0)
        case .keyword: Double(keywords[subject] ?? 0)
        }
    }
}

/// Learned state of one series: EWMA mean and variance of bucket values.
public struct Baseline: Sendable, Equatable {
    public var mean = 0.0
    public var variance = 0.0
    public var buckets = 0

    /// Adds a bucket's value (West's incremental EWMA variance).
    public mutating func add(_ value: Double, alpha: Double) {
        if buckets == 0 {
            mean = value
            variance = 0
        } else {
            let diff = value - mean
            let increment = alpha * diff
            mean += increment
            variance = (1 - alpha) * (variance + diff * increment)
        }
        buckets += 1
    }

    public var deviation: Double { variance.squareRoot() }
}

public struct Detector: Sendable {
    public let thresholds: DetectionThresholds

    /// A fingerprint's state.
    struct Series: Sendable {
        var service: String
        var baseline = Baseline()
        var count = 0
        var firstSeen: Int64
        var lastSeen: Int64
        var users: Set<String> = []
        var samples: [String] = []
        /// Buckets closed since this fingerprint was first seen.
        var age = 0
        /// Whether it was first seen after its first bucket's start (that bucket is partial, so the next one is
        /// judged as new too), and whether `new_error` was reported for it.
        var partialFirst = false
        var reportedNew = false
    }

    struct ServiceBucket: Sendable {
        var requests = 0
        var errors = 0
        var latencies: [Double] = []
        var ratio = Baseline()
        var p95 = Baseline()
        var slowShare = Baseline()
        /// A restored bucket's p95 and slow share (its latencies were not stored).
        var replayedP95: Double?
        var replayedSlowShare: Double?
    }

    private var series: [String: Series] = [:]
    private var services: [String: ServiceBucket] = [:]
    private var authFailures: [String: (service: String, count: Int, first: Int64, last: Int64)] = [:]
    private var keywordCounts: [String: Int] = [:]
    private var keywordBaselines: [String: Baseline] = [:]
    private var keywordSamples: [String: [String]] = [:]
    /// The first fingerprint each word of the open bucket came with, and the words seen with a second one.
    private var keywordFirstFingerprint: [String: String] = [:]
    private var keywordSpread: Set<String> = []
    /// Start of the open bucket.
    public private(set) var bucketStart: Int64

    public init(thresholds: DetectionThresholds = DetectionThresholds(), start: Int64) {
        self.thresholds = thresholds
        self.bucketStart = start - start % thresholds.bucketMilliseconds
    }

    public var trackedFingerprints: Int { series.count }

    /// Counts one event into the open bucket. `fingerprint` is its `Fingerprint.id`, nil for events that are not
    /// errors (they still count as requests).
    public mutating func add(_ event: LogEvent, fingerprint: String?) {
        if event.status != nil || event.latencyMs != nil {
            var bucket = services[event.service] ?? ServiceBucket()
            bucket.requests += 1
            if (event.status ?? 0) >= 500 { bucket.errors += 1 }
            if let latency = event.latencyMs, bucket.latencies.count < 10_000 { bucket.latencies.append(latency) }
            services[event.service] = bucket
        }
        // A burst needs a source: failures with neither an ip tag nor a user cannot be told apart.
        if Self.isAuthFailure(event), let source = event.tags["ip"] ?? event.user {
            var entry = authFailures[source] ?? (event.service, 0, event.ts, event.ts)
            entry.count += 1
            entry.last = max(entry.last, event.ts)
            authFailures[source] = entry
        }
        guard let fingerprint, event.isError else { return }
        if series[fingerprint] == nil, series.count >= thresholds.maxFingerprints { evictOldest() }
        var s = series[fingerprint] ?? Series(service: event.service, firstSeen: event.ts, lastSeen: event.ts)
        s.count += 1
        s.lastSeen = max(s.lastSeen, event.ts)
        if let user = event.user, s.users.count < 10_000 { s.users.insert(user) }
        // The latest five distinct messages (an incident shows what is happening now, not last week).
        let sample = String(event.message.prefix(500))
        if !s.samples.contains(sample) {
            s.samples.append(sample)
            if s.samples.count > 5 { s.samples.removeFirst() }
        }
        series[fingerprint] = s
        for word in Set(Self.words(event.message)) {
            keywordCounts[word, default: 0] += 1
            if let first = keywordFirstFingerprint[word] {
                if first != fingerprint { keywordSpread.insert(word) }
            } else {
                keywordFirstFingerprint[word] = fingerprint
            }
            if keywordSamples[word, default: []].count < 3 { keywordSamples[word, default: []].append(String(event.message.prefix(200))) }
        }
    }

    /// Closes every bucket that ended by `now`, learning from it, and returns what was anomalous in it.
    public mutating func tick(now: Int64) -> [Anomaly] {
        close(now: now).flatMap(\.anomalies)
    }

    /// Closes every bucket that ended by `now`, learning from each, and returns them with their anomalies.
    /// After a long pause (more than `maxCatchUp` empty buckets) the empty buckets between are skipped, the
    /// baselines learning one empty bucket for the gap (a stopped server does not replay a week of zeros).
    public mutating func close(now: Int64) -> [ClosedBucket] {
        var out: [ClosedBucket] = []
        let length = thresholds.bucketMilliseconds
        while now >= bucketStart + length {
            var closed = ClosedBucket(start: bucketStart)
            closed.anomalies = closeBucket(into: &closed)
            out.append(closed)
            bucketStart += length
            let behind = (now - bucketStart) / length
            if behind > Int64(Self.maxCatchUp) { bucketStart += (behind - Int64(Self.maxCatchUp)) * length }
        }
        return out
    }

    static let maxCatchUp = 1440

    /// Replays stored buckets into the baselines (at startup, oldest first; buckets with nothing stored count as
    /// empty). Finds nothing: what was anomalous then was handled then. Sets the open bucket after the last.
    public mutating func learn(_ history: [ClosedBucket], until now: Int64) {
        let length = thresholds.bucketMilliseconds
        guard let first = history.first?.start else { return }
        let byStart = Dictionary(history.map { ($0.start - $0.start % length, $0) }, uniquingKeysWith: { a, _ in a })
        var start = first - first % length
        let end = now - now % length
        while start < end {
            if let bucket = byStart[start] {
                for (id, count) in bucket.fingerprints {
                    var s = series[id] ?? Series(service: "", firstSeen: start, lastSeen: start)
                    s.count += count
                    s.lastSeen = max(s.lastSeen, start)
                    series[id] = s
                }
                for (name, figures) in bucket.services {
                    var b = services[name] ?? ServiceBucket()
                    b.requests += figures.requests
                    b.errors += figures.errors
                    b.replayedP95 = figures.p95
                    b.replayedSlowShare = figures.slowShare
                    services[name] = b
                }
            }
            bucketStart = start
            var scratch = ClosedBucket(start: start)
            _ = closeBucket(into: &scratch)
            start += length
        }
        bucketStart = end
    }

    /// A fingerprint's service, first/last seen and latest samples (nil when not tracked).
    public func fingerprintInfo(_ id: String) -> (service: String, firstSeen: Int64, lastSeen: Int64, samples: [String])? {
        series[id].map { ($0.service, $0.firstSeen, $0.lastSeen, $0.samples) }
    }

    /// Fills in a restored fingerprint's service and samples (from the store) without touching its baseline.
    public mutating func describe(_ id: String, service: String, samples: [String]) {
        guard var s = series[id] else { return }
        s.service = service
        s.samples = Array(samples.suffix(5))
        series[id] = s
    }

    /// Closes the open bucket: records what it held in `closed`, learns from it, returns its anomalies.
    private mutating func closeBucket(into closed: inout ClosedBucket) -> [Anomaly] {
        let t = thresholds
        var out: [Anomaly] = []
        for (id, var s) in series {
            if s.count > 0 { closed.fingerprints[id] = s.count }
            let count = Double(s.count)
            let b = s.baseline
            if s.age == 0 { s.partialFirst = s.firstSeen > bucketStart }
            if s.age == 0 || (s.age == 1 && s.partialFirst) {
                // New: at least the minimum in its first bucket, or — when that one held only the end of a bucket
                // (the error started late in it) — in its first full bucket; reported once.
                if !s.reportedNew, s.count >= t.newFingerprintMinCount {
                    s.reportedNew = true
                    out.append(anomaly(.newError, id, s, value: count, baseline: 0))
                }
            } else if b.buckets >= t.warmupBuckets, s.count >= t.spikeMinCount,
                count >= b.mean * t.spikeRatio, count >= b.mean + t.spikeSigma * max(b.deviation, 1)
            {
                out.append(anomaly(.spike, id, s, value: count, baseline: b.mean))
            }
            s.baseline.add(count, alpha: t.alpha)
            s.age += 1
            s.count = 0
            s.users = []
            series[id] = s
        }
        for (name, var bucket) in services {
            if bucket.requests > 0 {
                let ratio = Double(bucket.errors) / Double(bucket.requests)
                let expected = bucket.ratio.mean * Double(bucket.requests)
                let sigma = (Double(bucket.requests) * bucket.ratio.mean * (1 - bucket.ratio.mean)).squareRoot()
                if bucket.ratio.buckets >= t.warmupBuckets, bucket.requests >= t.minRequests, ratio >= t.errorRatioFloor,
                    ratio >= bucket.ratio.mean * t.errorRatioMultiple, bucket.errors >= t.errorRateMinErrors,
                    Double(bucket.errors) >= expected + t.spikeSigma * max(sigma, 1)
                {
                    out.append(Anomaly(
                        kind: .errorRate, subject: name, service: name, value: ratio, baseline: bucket.ratio.mean, bucketStart: bucketStart,
                        firstSeen: bucketStart, lastSeen: bucketStart + t.bucketMilliseconds, affectedUsers: 0, samples: []))
                }
                bucket.ratio.add(ratio, alpha: t.alpha)
            }
            var p95: Double?
            var slowShare: Double?
            var slowSignificant = false
            if bucket.latencies.count >= 20 {
                let sorted = bucket.latencies.sorted()
                p95 = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.95))]
                // The slow line of the baseline, and whether more requests crossed it than its usual share.
                let line = max(bucket.p95.mean * t.latencyMultiple, bucket.p95.mean + t.latencyMinIncreaseMs)
                let n = Double(sorted.count)
                let slow = n - Double(sorted.partitioningIndex { $0 >= line })
                slowShare = slow / n
                // At least 5 %: by definition about 5 % of requests are over the baseline p95, so a line at twice it
                // or more is crossed less often than that in a normal bucket.
                let usual = Swift.max(bucket.slowShare.mean, 0.05)
                slowSignificant = slow >= usual * n + t.spikeSigma * (n * usual * (1 - usual)).squareRoot()
            } else if let replayed = bucket.replayedP95 {
                p95 = replayed
                slowShare = bucket.replayedSlowShare
            }
            if bucket.requests > 0 || p95 != nil {
                closed.services[name] = ClosedBucket.ServiceFigures(requests: bucket.requests, errors: bucket.errors, p95: p95, slowShare: slowShare)
            }
            if let slowShare { bucket.slowShare.add(slowShare, alpha: t.alpha) }
            if let p95 {
                if bucket.p95.buckets >= t.warmupBuckets, bucket.requests >= t.minRequests, p95 >= bucket.p95.mean * t.latencyMultiple,
                    p95 >= bucket.p95.mean + t.latencyMinIncreaseMs, slowSignificant
                {
                    out.append(Anomaly(
                        kind: .latency, subject: name, service: name, value: p95, baseline: bucket.p95.mean, bucketStart: bucketStart,
                        firstSeen: bucketStart, lastSeen: bucketStart + t.bucketMilliseconds, affectedUsers: 0, samples: []))
                }
                bucket.p95.add(p95, alpha: t.alpha)
            }
            bucket.requests = 0
            bucket.errors = 0
            bucket.latencies = []
            bucket.replayedP95 = nil
            bucket.replayedSlowShare = nil
            services[name] = bucket
        }
        for (source, entry) in authFailures { closed.authFailures[source] = entry.count }
        for (word, count) in keywordCounts { closed.keywords[word] = count }
        for (source, entry) in authFailures where entry.count >= t.authFailuresPerSource {
            out.append(Anomaly(
                kind: .authBurst, subject: source, service: entry.service, value: Double(entry.count), baseline: 0, bucketStart: bucketStart,
                firstSeen: entry.first, lastSeen: entry.last, affectedUsers: 1, samples: []))
        }
        authFailures = [:]
        var words = Set(keywordBaselines.keys)
        words.formUnion(keywordCounts.keys)
        for word in words {
            let count = Double(keywordCounts[word] ?? 0)
            var baseline = keywordBaselines[word] ?? Baseline()
            // Across at least two different errors: one error repeated is that error's own spike.
            if Int(count) >= t.keywordMinCount, count >= max(1, baseline.mean) * 3, keywordSpread.contains(word) {
                out.append(Anomaly(
                    kind: .keyword, subject: word, service: "", value: count, baseline: baseline.mean, bucketStart: bucketStart, firstSeen: bucketStart,
                    lastSeen: bucketStart + t.bucketMilliseconds, affectedUsers: 0, samples: keywordSamples[word] ?? []))
            }
            baseline.add(count, alpha: t.alpha)
            // A word that has faded out entirely is forgotten (bounded memory).
            if baseline.mean < 0.01 && count == 0 { keywordBaselines[word] = nil } else { keywordBaselines[word] = baseline }
        }
        keywordCounts = [:]
        keywordSamples = [:]
        keywordFirstFingerprint = [:]
        keywordSpread = []
        return out.sorted { ($0.kind.rawValue, $0.subject) < ($1.kind.rawValue, $1.subject) }
    }

    private func anomaly(_ kind: Anomaly.Kind, _ id: String, _ s: Series, value: Double, baseline: Double) -> Anomaly {
        Anomaly(
            kind: kind, subject: id, service: s.service, value: value, baseline: baseline, bucketStart: bucketStart, firstSeen: s.firstSeen,
            lastSeen: s.lastSeen, affectedUsers: s.users.count, samples: s.samples)
    }

    private mutating func evictOldest() {
        guard let oldest = series.min(by: { $0.value.lastSeen < $1.value.lastSeen })?.key else { return }
        series[oldest] = nil
    }

    /// Login and token failures: a 401/403 response, or a message that says so.
    static func isAuthFailure(_ event: LogEvent) -> Bool {
        if event.status == 401 || event.status == 403 { return true }
        let lower = Array(event.message.prefix(300).lowercased().utf8)
        return authPhrases.contains { lower.containsBytes($0) }
    }

    static let authPhrases = ["authentication failed", "login failed", "invalid password", "wrong password", "invalid credentials", "unauthorized"]
        .map { Array($0.utf8) }

    /// Words of an error message worth clustering: letters only, 4+ characters, not noise. Iterates Unicode
    /// scalars with an ASCII fast path (Character iteration and property lookups were a quarter of ingest).
    static func words(_ message: String) -> [String] {
        var out: [String] = []
        var word = String.UnicodeScalarView()
        var length = 0
        func take() {
            if length >= 4 {
                let w = String(word)
                if !wordNoise.contains(w) { out.append(w) }
            }
            word = String.UnicodeScalarView()
            length = 0
        }
        for s in message.prefix(500).lowercased().unicodeScalars {
            let letter = s.isASCII ? (s.value >= 0x61 && s.value <= 0x7A) : s.properties.isAlphabetic
            if letter {
                word.append(s)
                length += 1
            } else {
                take()
                if out.count >= 20 { break }
            }
        }
        if out.count < 20 { take() }
        return out
    }

    static let wordNoise: Set<String> = [
        "error", "exception", "failed", "traceback", "most", "recent", "call", "last", "line", "file", "with", "from", "that", "this", "none",
        "null", "true", "false", "value", "object",
    ]
}

extension Array where Element == Double {
    /// The first index whose element satisfies `belongs`, in an array where it holds for a suffix (binary search).
    func partitioningIndex(where belongs: (Double) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let mid = (low + high) / 2
            if belongs(self[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
