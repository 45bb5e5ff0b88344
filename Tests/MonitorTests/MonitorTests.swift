// MonitorTests: parsing what applications write (hostile lines included), fingerprints, and detection on
// replayed traces with an injected clock — a quiet day stays quiet, spikes and bursts are found in time.
import Foundation
@testable import Monitor
import Protocol
import Testing

@Suite struct IngestParsingTests {
    let now: Int64 = 1_800_000_000_000

    @Test func jsonLinesAreValidatedOneByOne() {
        let good = #"{"ts": 1800000000500, "service": "api", "level": "warning", "message": "slow query", "route": "/login", "status": 503, "latency_ms": 812.5, "user": "u1", "tags": {"ip": "10.0.0.1", "n": 3}}"#
        let event = try? IngestParser.parse(Array(good.utf8), number: 1, now: now).get()
        #expect(event?.level == .warning && event?.status == 503 && event?.latencyMs == 812.5 && event?.ts == 1_800_000_000_500)
        #expect(event?.tags == ["ip": "10.0.0.1"] && event?.isError == true && event?.clockSkewed == false)
        func reason(_ line: String) -> String? {
            if case .failure(let error) = IngestParser.parse(Array(line.utf8), number: 7, now: now) { error.reason } else { nil }
        }
        #expect(reason("not json") == "not a JSON object")
        #expect(reason("[1,2]") == "not a JSON object")
        #expect(reason(#"{"service": "api"}"#)?.contains("message") == true)
        #expect(reason(#"{"service": "", "message": "x"}"#)?.contains("service") == true)
        #expect(reason(#"{"service": "api", "message": "x", "level": "apocalyptic"}"#)?.contains("level") == true)
        #expect(reason(String(repeating: "a", count: 100_000))?.contains("at most") == true)
        // A timestamp a day in the future is replaced by server time and flagged.
        let future = try? IngestParser.parse(Array(#"{"ts": 1800086400000, "service": "a", "message": "m"}"#.utf8), number: 1, now: now).get()
        #expect(future?.ts == now && future?.clockSkewed == true)
        let huge = try? IngestParser.parse(Array(("{\"service\":\"a\",\"message\":\"" + String(repeating: "é", count: 20_000) + "\"}").utf8), number: 1, now: now).get()
        #expect(huge.map { $0.message.utf8.count <= IngestLimits().maxMessageBytes + 3 } == true)
    }

    @Test func pythonTracebacksSpanLines() {
        var parser = LineFormatParser(format: .python, service: "web")
        let lines = [
            "INFO started", "Traceback (most recent call last):", "  File \"/srv/app/auth/login.py\", line 45, in check", "    return hash(pw) == stored",
            "ValueError: bad salt 'x9'", "Traceback (most recent call last):", "  File \"/srv/app/a.py\", line 1, in f",
        ]
        var events: [LogEvent] = []
        for (i, line) in lines.enumerated() { events += parser.feed(line, number: i + 1, now: now).compactMap { try? $0.get() } }
        #expect(events.map(\.message) == ["started", "ValueError: bad salt 'x9'"])  // the level word is the level, not the message
        #expect(events[0].level == .info && events[1].level == .error)
        #expect(events[1].stack?.contains("login.py\", line 45") == true)
        #expect(parser.flush(now: now).first?.stack?.contains("a.py") == true)
    }

    @Test func nginxAccessLinesCarryStatusAndLatency() throws {
        var parser = LineFormatParser(format: .nginx, service: "edge")
        let line = #"10.1.2.3 - alice [04/Dec/2026:10:00:00 +0000] "POST /login HTTP/1.1" 502 157 "-" "curl/8.0" 0.734"#
        let event = try #require(try parser.feed(line, number: 1, now: now).first?.get())
        #expect(event.status == 502 && event.route == "/login" && event.user == "alice" && event.tags["ip"] == "10.1.2.3")
        #expect(abs((event.latencyMs ?? 0) - 734) < 0.01 && event.isError)
        if case .failure = parser.feed("garbage without quotes", number: 2, now: now).first {} else { Issue.record("garbage accepted") }
    }
}

@Suite struct FingerprintTests {
    @Test func variablePartsAreNormalised() {
        #expect(Fingerprint.normalise("User 42 'bob' not found at /srv/app/x.py") == "User <n> <q> not found at <path>")
        #expect(Fingerprint.normalise("Timeout after 30 s talking to 10.0.0.7:5432") == "Timeout after <n> s talking to <ip>:<n>")
        #expect(Fingerprint.normalise("request 3fa85f64-5717-4562-b3fc-2c963f66afa6 failed for a@b.com")
                == "request <uuid> failed for <email>")
        #expect(Fingerprint.normalise("bad token 0xdeadbeef") == "bad token <hex>")
        let a = Fingerprint.key(message: "invalid password for user_1234", innermostFrame: "app/auth/login.py:check")
        let b = Fingerprint.key(message: "invalid password for user_98765", innermostFrame: "app/auth/login.py:check")
        #expect(a == b && Fingerprint.id(a) == Fingerprint.id(b))
        #expect(Fingerprint.id(a) != Fingerprint.id(Fingerprint.key(message: "invalid password for user_1", innermostFrame: nil)))
        #expect(Fingerprint.normalise(String(repeating: "x ", count: 10_000)).count <= 300)
        #expect(Fingerprint.normalise("unterminated 'quote") == "unterminated <q>")
    }

    @Test func identityValuesPunctuationAndOtherScripts() {
        #expect(Fingerprint.normalise("denied User=bob, ip=10.0.0.1; path=/x") == "denied User=<v>, ip=<v>; path=<path>")
        #expect(Fingerprint.normalise("  failed:\t\tretry 3 of 5!  ") == "failed: retry <n> of <n>!")
        #expect(Fingerprint.normalise("order #12,345.00 (req-8812abc) [x]") == "order #<n>,<n> (req-<n>abc) [x]")
        #expect(Fingerprint.normalise("mot de passe\u{00A0}refusé pour «jean» 42") == "mot de passe refusé pour «jean» <n>")
        #expect(Fingerprint.normalise("ошибка 17 для 'Иван'") == "ошибка <n> для <q>")
        #expect(Fingerprint.normalise("emoji 👩‍💻 at 1.2.3.4:80") == "emoji 👩‍💻 at <ip>:<n>")
        #expect(Fingerprint.normalise("999.1.1") == "<n>" && Fingerprint.normalise("1.2.3.4.5") == "<n>")
        let long = String(repeating: "é", count: 5000)
        #expect(Fingerprint.normalise(long) == String(repeating: "é", count: 300))
    }

    @Test func clusteredWordsAreLettersOnly() {
        #expect(Detector.words("Wrong PASSWORD for user_42: mot-de-passe incorrecte, Пароль") == ["wrong", "password", "user", "passe", "incorrecte", "пароль"])
        #expect(Detector.words("Error: value None from file") == [])
        #expect(Detector.words(String(repeating: "abcd ", count: 100)).count == 20)
    }
}

/// A deterministic source of noise (SplitMix64) with Poisson counts.
struct Noise {
    var state: UInt64
    mutating func next() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }
    mutating func poisson(_ lambda: Double) -> Int {
        let limit = exp(-lambda)
        var k = 0
        var p = 1.0
        repeat { k += 1; p *= next() } while p > limit
        return k - 1
    }
}

@Suite struct DetectionTests {
    static let start: Int64 = 1_800_000_000_000
    static let minute: Int64 = 60_000

    /// One simulated minute of a steady service: 20 error kinds at 1…20 per minute and 100 requests (1 % 5xx,
    /// latency ~100 ms), all with daily seasonality (±50 %).
    static let kinds = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima", "mike",
                        "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"]

    static func quietMinute(_ detector: inout Detector, minute m: Int, noise: inout Noise) {
        let t = start + Int64(m) * minute
        let season = 1 + 0.5 * sin(2 * Double.pi * Double(m) / 1440)
        for kind in 1...20 {
            let message = "Error \(kinds[kind - 1]) in worker \(Int(noise.next() * 1000)): connection reset"
            for _ in 0..<noise.poisson(Double(kind) * season) {
                let event = LogEvent(ts: t, service: "api", level: .error, message: message, user: "u\(Int(noise.next() * 500))")
                detector.add(event, fingerprint: Fingerprint.id(Fingerprint.key(message: message, innermostFrame: nil)))
            }
        }
        for _ in 0..<noise.poisson(100 * season) {
            let failed = noise.next() < 0.01
            let latency = 80 + noise.next() * 40 + (noise.next() < 0.02 ? 100 : 0)
            detector.add(LogEvent(ts: t, service: "api", level: .info, message: "GET /", status: failed ? 500 : 200, latencyMs: latency), fingerprint: nil)
        }
    }

    @Test func aQuietDayWithSeasonalityRaisesNothing() {
        var detector = Detector(start: Self.start)
        var noise = Noise(state: 42)
        var anomalies: [Anomaly] = []
        for m in 0..<(24 * 60) {
            Self.quietMinute(&detector, minute: m, noise: &noise)
            anomalies += detector.tick(now: Self.start + Int64(m + 1) * Self.minute)
        }
        // The first minute's fingerprints are all new; at ≤ 20 per minute only the busiest could count as "new at
        // volume" — that is the one allowed finding of warm-up, nothing after it.
        #expect(anomalies.filter { $0.bucketStart > Self.start }.isEmpty, "\(anomalies.prefix(3))")
        #expect(detector.trackedFingerprints == 20)
    }

    @Test func spikesBurstsNewErrorsKeywordsAndDegradationsAreFoundWithinTwoBuckets() {
        var detector = Detector(start: Self.start)
        var noise = Noise(state: 7)
        for m in 0..<120 {
            Self.quietMinute(&detector, minute: m, noise: &noise)
            _ = detector.tick(now: Self.start + Int64(m + 1) * Self.minute)
        }
        let t = Self.start + 120 * Self.minute
        // A 10× spike of kind 10, a new error at volume, an auth burst, "password" in 60 distinct errors, and the
        // service degrading: 20 % 5xx and p95 ~900 ms.
        let spiked = "Error juliet in worker 1: connection reset"
        for i in 0..<100 { detector.add(LogEvent(ts: t, service: "api", level: .error, message: spiked, user: "u\(i)"), fingerprint: Fingerprint.id(Fingerprint.key(message: spiked, innermostFrame: nil))) }
        for _ in 0..<30 { detector.add(LogEvent(ts: t, service: "api", level: .critical, message: "KeyError: 'salt'"), fingerprint: "f-new") }
        for _ in 0..<25 { detector.add(LogEvent(ts: t, service: "auth", level: .warning, message: "login failed", tags: ["ip": "203.0.113.9"]), fingerprint: nil) }
        for i in 0..<60 { detector.add(LogEvent(ts: t, service: "auth", level: .error, message: "wrong password for account \(i) although correct"), fingerprint: "f-pw\(i % 3)") }
        for i in 0..<400 { detector.add(LogEvent(ts: t, service: "api", level: .info, message: "GET /", status: i % 5 == 0 ? 500 : 200, latencyMs: 900), fingerprint: nil) }
        let found = detector.tick(now: t + Self.minute)
        let kinds = Set(found.map(\.kind))
        #expect(kinds == [.spike, .newError, .authBurst, .keyword, .errorRate, .latency], "\(found.map { "\($0.kind) \($0.subject)" })")
        let spike = found.first { $0.kind == .spike }
        #expect(spike?.value == 100 && (spike?.baseline ?? 100) < 20 && spike?.affectedUsers == 100 && spike?.samples.last == spiked)
        #expect(found.contains { $0.kind == .authBurst && $0.subject == "203.0.113.9" })
        #expect(found.contains { $0.kind == .keyword && $0.subject == "password" })
        #expect(found.first { $0.kind == .latency }?.value == 900)
    }

    @Test func aNewErrorThatStartsLateInABucketIsJudgedOnItsFirstFullBucketOnce() {
        var detector = Detector(start: Self.start)
        let late = Self.start + Self.minute - 2_000   // the error starts 2 s before the bucket ends: 3 events there
        for i in 0..<3 { detector.add(LogEvent(ts: late + Int64(i), service: "auth", level: .error, message: "KeyError: 'salt'"), fingerprint: "f-late") }
        #expect(detector.tick(now: Self.start + Self.minute).isEmpty)
        for i in 0..<25 { detector.add(LogEvent(ts: Self.start + Self.minute + Int64(i), service: "auth", level: .error, message: "KeyError: 'salt'"), fingerprint: "f-late") }
        let found = detector.tick(now: Self.start + 2 * Self.minute)
        #expect(found.map(\.kind) == [.newError] && found.first?.subject == "f-late" && found.first?.value == 25)
        // Once: the third bucket is not new any more (and too early for a spike).
        for i in 0..<25 { detector.add(LogEvent(ts: Self.start + 2 * Self.minute + Int64(i), service: "auth", level: .error, message: "KeyError: 'salt'"), fingerprint: "f-late") }
        #expect(detector.tick(now: Self.start + 3 * Self.minute).isEmpty)
        // A fingerprint first seen at its bucket's start is judged on that bucket alone: few there, many next → not new.
        for _ in 0..<3 { detector.add(LogEvent(ts: Self.start + 3 * Self.minute, service: "auth", level: .error, message: "other"), fingerprint: "f-early") }
        #expect(detector.tick(now: Self.start + 4 * Self.minute).isEmpty)
        for _ in 0..<25 { detector.add(LogEvent(ts: Self.start + 4 * Self.minute, service: "auth", level: .error, message: "other"), fingerprint: "f-early") }
        #expect(detector.tick(now: Self.start + 5 * Self.minute).filter { $0.subject == "f-early" }.isEmpty)
    }

    @Test func memoryIsBoundedByTheFingerprintLimit() {
        var thresholds = DetectionThresholds()
        thresholds.maxFingerprints = 1000
        var detector = Detector(thresholds: thresholds, start: Self.start)
        for i in 0..<5000 {
            detector.add(LogEvent(ts: Self.start + Int64(i), service: "s", level: .error, message: "m\(i)"), fingerprint: "f\(i)")
        }
        #expect(detector.trackedFingerprints == 1000)
    }
}
