// MonitorService: what the monitor takes in and learns — NDJSON from `POST /api/v1/ingest` (rate-limited per
// token) and lines of the files it tails (`monitor.files`, LogTailer on the loop), each event fingerprinted
// and counted by the Detector; every closed bucket is stored (so a restart keeps the baselines) and handed
// with its anomalies to the incidents (`IncidentService`). Loop-bound.
import EventLoop
import LogTail
import Logging
import Monitor
import Protocol
import Store

/// A token bucket of lines per second, one per ingest principal.
struct LineBucket {
    var tokens: Double
    var updated: Int64

    /// Takes `lines` if they fit; otherwise how many seconds until they would (Retry-After).
    mutating func take(_ lines: Int, now: Int64, rate: Double, burst: Double) -> Int? {
        tokens = min(burst, tokens + Double(max(0, now - updated)) / 1000 * rate)
        updated = now
        guard Double(lines) <= tokens else {
            return max(1, Int(((Double(lines) - tokens) / rate).rounded(.up)))
        }
        tokens -= Double(lines)
        return nil
    }
}

/// Counters for stats and /metrics.
struct MonitorFigures {
    var ingested = 0, rejected = 0, skewed = 0, rateLimited = 0, tailed = 0, overlongLines = 0, rotations = 0, truncations = 0
}

final class MonitorService {
    let configuration: MonitorConfiguration
    let store: Store
    let clock: any WorkflowClock
    let logger: Logger
    private(set) var detector: Detector
    var figures = MonitorFigures()
    /// Told of every closed bucket (the incidents).
    var onBucket: (ClosedBucket) -> Void = { _ in }
    private var buckets: [String: LineBucket] = [:]
    /// Fingerprints seen in the open bucket: their key and an example stack, for the store.
    private var seen: [String: (key: String, stack: String?)] = [:]
    private var tailers: [(file: MonitorFile, tailer: LogTailer?, parser: LineFormatParser, lines: Int, state: String)] = []
    private var timer: TimerID?
    private let loop: EventLoop?
    private var lastPrune: Int64 = 0

    init(configuration: MonitorConfiguration, store: Store, loop: EventLoop?, clock: any WorkflowClock, logger: Logger) {
        self.configuration = configuration
        self.store = store
        self.loop = loop
        self.clock = clock
        self.logger = logger
        detector = Detector(thresholds: configuration.detection, start: clock.nowMilliseconds())
    }

    /// This node became the cluster's monitor: the baselines are learnt again from the stored buckets (the last
    /// monitor's included; the bucket it had open is lost with it). Blocking, once.
    func reload() throws {
        detector = Detector(thresholds: configuration.detection, start: clock.nowMilliseconds())
        seen = [:]
        try restore()
    }

    /// At startup (blocking; the loop is not running): the stored buckets of the last `restore_buckets` replayed
    /// into the baselines, and the fingerprints they name described from the store.
    func restore() throws {
        let now = clock.nowMilliseconds()
        let length = configuration.detection.bucketMilliseconds
        guard configuration.restoreBuckets > 0 else { return }
        let since = now - now % length - Int64(configuration.restoreBuckets) * length
        let rows = try store.sync { store.monitorBuckets(since: since, completion: $0) }
        guard !rows.isEmpty else { return }
        var history: [Int64: ClosedBucket] = [:]
        for row in rows {
            var bucket = history[row.bucket] ?? ClosedBucket(start: row.bucket)
            let value = Double(row.valueMilli) / 1000
            let name = String(row.series.dropFirst(2))
            switch row.series.prefix(2) {
            case "f:": bucket.fingerprints[name] = Int(value)
            case "r:": bucket.services[name, default: .init(requests: 0, errors: 0, p95: nil)].requests = Int(value)
            case "e:": bucket.services[name, default: .init(requests: 0, errors: 0, p95: nil)].errors = Int(value)
            case "l:": bucket.services[name, default: .init(requests: 0, errors: 0, p95: nil)].p95 = value
            case "s:": bucket.services[name, default: .init(requests: 0, errors: 0, p95: nil)].slowShare = value
            default: break
            }
            history[row.bucket] = bucket
        }
        detector.learn(history.values.sorted { $0.start < $1.start }, until: now)
        let ids = Array(Set(history.values.flatMap(\.fingerprints.keys)))
        for row in try store.sync({ store.fingerprints(ids: ids, completion: $0) }) {
            detector.describe(row.id, service: row.service, samples: row.samples)
        }
        logger.info("monitor: baselines restored from \(history.count) stored buckets, \(ids.count) fingerprints")
    }

    /// Starts the tailers and the bucket timer (on the loop).
    func start() {
        guard let loop else { return }
        for file in configuration.files {
            let index = tailers.count
            tailers.append((file, nil, LineFormatParser(format: file.format, service: file.service), 0, "waiting"))
            do {
                let tailer = try LogTailer(loop: loop, path: file.path, fromStart: false, onLines: { [weak self] lines in
                    self?.tailed(index, lines)
                }, onNotice: { [weak self] notice in self?.notice(index, notice) })
                tailers[index].tailer = tailer
            } catch {
                tailers[index].state = "error: \(error)"
                logger.error("monitor: cannot tail \(file.path): \(error)")
            }
        }
        scheduleTick()
    }

    func stop() {
        if let timer { loop?.cancel(timer) }
        timer = nil
        for entry in tailers { entry.tailer?.stop() }
    }

    private func scheduleTick() {
        guard let loop else { return }
        timer = loop.schedule(afterNanoseconds: 250_000_000) { [weak self] in
            guard let self else { return }
            self.tick()
            self.scheduleTick()
        }
    }

    // MARK: input

    /// Counts one event: fingerprinted when it is an error.
    func accept(_ event: Monitor.LogEvent) {
        var fingerprint: String?
        if event.isError {
            let key = Fingerprint.key(message: event.message, innermostFrame: Fingerprint.innermostFrame(event.stack))
            let id = Fingerprint.id(key)
            if seen[id] == nil { seen[id] = (key, event.stack) }
            fingerprint = id
        }
        detector.add(event, fingerprint: fingerprint)
    }

    /// `POST /api/v1/ingest`: the body's lines parsed one by one; nothing is counted when the principal is over
    /// its rate (the answer is then `.rateLimited(retryAfter)`), nor when the body has more lines than the
    /// bucket holds (`.tooManyLines`: it could never fit, so waiting would not help — the body must be split).
    /// Every line counts against the rate, blank ones included (they cost reading too).
    enum IngestOutcome {
        case accepted(JSONObject)
        case rateLimited(retryAfterSeconds: Int)
        case tooManyLines(lines: Int, max: Int)
    }

    func ingest(_ body: [UInt8], principal: String) -> IngestOutcome {
        let now = clock.nowMilliseconds()
        var lineCount = 0
        for byte in body where byte == 10 { lineCount += 1 }
        if body.last != 10, !body.isEmpty { lineCount += 1 }
        guard lineCount <= configuration.burstLines else {
            return .tooManyLines(lines: lineCount, max: configuration.burstLines)
        }
        var bucket = buckets[principal] ?? LineBucket(tokens: Double(configuration.burstLines), updated: now)
        if let wait = bucket.take(lineCount, now: now, rate: Double(configuration.maxLinesPerSecond), burst: Double(configuration.burstLines)) {
            buckets[principal] = bucket
            figures.rateLimited += 1
            return .rateLimited(retryAfterSeconds: wait)
        }
        buckets[principal] = bucket
        var accepted = 0, rejected = 0, skewed = 0
        var errors: [JSONValue] = []
        var number = 0
        var start = body.startIndex
        while start < body.endIndex {
            let end = body[start...].firstIndex(of: 10) ?? body.endIndex
            number += 1
            var line = body[start..<end]
            if line.last == 13 { line = line.dropLast() }
            start = end == body.endIndex ? end : end + 1
            if line.allSatisfy({ $0 == 32 || $0 == 9 }) { continue }  // blank lines are not events
            switch IngestParser.parse(line, number: number, now: now) {
            case .success(let event):
                accepted += 1
                if event.clockSkewed { skewed += 1 }
                accept(event)
            case .failure(let error):
                rejected += 1
                if errors.count < 100 { errors.append(.object(["line": .int(Int64(error.line)), "reason": .string(error.reason)])) }
            }
        }
        figures.ingested += accepted
        figures.rejected += rejected
        figures.skewed += skewed
        return .accepted([
            "accepted": .int(Int64(accepted)), "rejected": .int(Int64(rejected)), "skewed": .int(Int64(skewed)), "errors": .array(errors),
        ])
    }

    private func tailed(_ index: Int, _ lines: [String]) {
        let now = clock.nowMilliseconds()
        for line in lines {
            tailers[index].lines += 1
            for result in tailers[index].parser.feed(line, number: tailers[index].lines, now: now) {
                switch result {
                case .success(let event):
                    figures.tailed += 1
                    accept(event)
                case .failure:
                    figures.rejected += 1
                }
            }
        }
    }

    private func notice(_ index: Int, _ notice: TailNotice) {
        let path = tailers[index].file.path
        switch notice {
        case .opened: tailers[index].state = "following"
        case .rotated:
            figures.rotations += 1
            logger.info("monitor: \(path) was rotated; following the new file")
        case .truncated:
            figures.truncations += 1
            logger.info("monitor: \(path) was truncated; reading from its start")
        case .deleted:
            tailers[index].state = "deleted; waiting for it to come back"
            logger.warning("monitor: \(path) was deleted; waiting for it to come back")
        case .overlongLine(let prefix):
            figures.overlongLines += 1
            logger.warning("monitor: dropped an overlong line in \(path) starting \(prefix.debugDescription)")
        case .error(let text):
            tailers[index].state = "error: \(text)"
            logger.error("monitor: \(text)")
        }
    }

    // MARK: buckets

    /// Closes the buckets that ended: flushes tracebacks in progress, stores each bucket, tells the incidents.
    func tick() {
        let now = clock.nowMilliseconds()
        let length = configuration.detection.bucketMilliseconds
        guard now >= detector.bucketStart + length else { return }
        for i in tailers.indices {
            for event in tailers[i].parser.flush(now: now) { accept(event) }
        }
        for bucket in detector.close(now: now) {
            onBucket(bucket)
            store(bucket, now: now)
        }
        seen = [:]  // every fingerprint of the closed bucket is stored (bounded: one bucket's)
    }

    private func store(_ bucket: ClosedBucket, now: Int64) {
        var write = StoreWrite()
        for (id, count) in bucket.fingerprints {
            write.monitorBuckets.append(MonitorBucketRow(series: "f:" + id, bucket: bucket.start, valueMilli: Int64(count) * 1000))
            let info = detector.fingerprintInfo(id)
            let key = seen[id]?.key ?? id
            write.fingerprints.append(FingerprintRow(
                id: id, service: info?.service ?? "", key: String(key.prefix(1000)), total: Int64(count), firstSeen: info?.firstSeen ?? bucket.start,
                lastSeen: info?.lastSeen ?? bucket.start, samples: info?.samples ?? [], stack: seen[id]?.stack.map { String($0.prefix(8000)) }))
        }
        for (name, f) in bucket.services {
            write.monitorBuckets.append(MonitorBucketRow(series: "r:" + name, bucket: bucket.start, valueMilli: Int64(f.requests) * 1000))
            write.monitorBuckets.append(MonitorBucketRow(series: "e:" + name, bucket: bucket.start, valueMilli: Int64(f.errors) * 1000))
            if let p95 = f.p95 {
                write.monitorBuckets.append(MonitorBucketRow(series: "l:" + name, bucket: bucket.start, valueMilli: Int64((p95 * 1000).rounded())))
            }
            if let share = f.slowShare {
                write.monitorBuckets.append(MonitorBucketRow(series: "s:" + name, bucket: bucket.start, valueMilli: Int64((share * 1000).rounded())))
            }
        }
        if now - lastPrune > 3_600_000 {
            lastPrune = now
            write.monitorPruneBefore = now - Int64(configuration.retentionHours) * 3_600_000
        }
        guard !write.monitorBuckets.isEmpty || write.monitorPruneBefore != nil else { return }
        store.write(write) { [logger] result in
            if case .failure(let error) = result { logger.error("monitor: storing bucket \(bucket.start) failed: \(error)") }
        }
    }

    /// A fingerprint's key, samples and stack: from memory while tracked, else nil (the store has the rest).
    func describe(_ id: String) -> (key: String?, samples: [String], stack: String?, service: String)? {
        guard let info = detector.fingerprintInfo(id) else { return nil }
        return (seen[id]?.key, info.samples, seen[id]?.stack, info.service)
    }

    // MARK: views

    func status() -> JSONObject {
        [
            "files": .array(tailers.map { entry in
                .object([
                    "path": .string(entry.file.path), "service": .string(entry.file.service), "format": .string(entry.file.format.rawValue),
                    "lines": .int(Int64(entry.lines)), "state": .string(entry.state),
                ])
            }),
            "ingested": .int(Int64(figures.ingested)), "tailed": .int(Int64(figures.tailed)), "rejected": .int(Int64(figures.rejected)),
            "skewed": .int(Int64(figures.skewed)), "rate_limited": .int(Int64(figures.rateLimited)),
            "fingerprints": .int(Int64(detector.trackedFingerprints)), "bucket_seconds": .int(Int64(configuration.bucketSeconds)),
            "bucket_start": .int(detector.bucketStart),
        ]
    }
}
