// Fanout: one publisher, N subscribers; window-driven (throughput, CPU per delivery) or rate-driven (latency).
import CLoadgen

/// The publisher sends `payload`-byte messages — Medic: `comment` commands on a fresh proposal (authenticated,
/// stored, sequenced, acknowledged) with subscribers on `proposal:<id>`; plain: `pub:<payload>` to the NIO
/// peer, which relays to every other client. A message is *complete* when every subscriber has it; the window
/// bounds published-but-incomplete messages, so the server, not the publisher, sets the pace.
final class Fanout: ClientHandler {
    private let options: Options
    private let driver: Driver
    private var publisher: Client?
    private var proposal: String?
    private var ready = 0
    private var started = 0
    private var failedSubscribers = 0
    private var counts: [UInt32] = []
    private var published = 0
    private var completed = 0
    private var deliveries = 0
    private var acks = 0
    private var errors = 0
    private var publishing = false
    private var histogram = Histogram()
    private var payload: [UInt8] = []
    private var frame: [UInt8] = []
    private let nonce = lg_wall_ms()
    private var lastDelivery: UInt64 = 0
    private var expected = 0

    private static let publisherRole = 0
    private static let subscriberRole = 1

    init(options: Options, driver: Driver) {
        self.options = options
        self.driver = driver
    }

    func opened(_ client: Client, driver: Driver) {
        guard !options.isMedic else { return }  // Medic sessions start with `welcome`
        client.state = 2
        if client.role == Self.subscriberRole { ready += 1 }
    }

    func message(_ client: Client, _ message: UnsafeRawBufferPointer, now: UInt64, driver: Driver) {
        if client.role == Self.subscriberRole && client.state == 2, let (ts, seq) = Payload.parse(message) {
            deliveries += 1
            client.received += 1
            lastDelivery = now
            histogram.record(now > ts ? (now - ts) / 1000 : 0)
            if seq < counts.count {
                counts[seq] += 1
                if Int(counts[seq]) == expected {
                    completed += 1
                    if publishing && options.rate == 0 { publish(now: now) }
                }
            }
            return
        }
        guard options.isMedic else { return }
        let kind = MedicWire.kind(of: message)
        switch (client.role, client.state, kind) {
        case (_, 0, .welcome):
            client.state = 1
            if client.role == Self.publisherRole {
                driver.sendText(client, MedicWire.propose(id: "bench-\(nonce)", repo: options.repo))
            } else {
                driver.sendText(client, MedicWire.subscribe(topic: "proposal:\(proposal ?? "")", since: nil))
            }
        case (Self.publisherRole, 1, .ack):
            proposal = Bytes.string(after: "\"proposal\":\"", in: message)
            client.state = 2
        case (Self.subscriberRole, 1, .ack):
            client.state = 2
            ready += 1
        case (Self.publisherRole, 2, .ack):
            acks += 1
        case (_, _, .error):
            errors += 1
            driver.problem("error from server: \(MedicWire.text(message))")
        default:
            break  // presence, other events (proposal status changes), welcome repeats
        }
    }

    func closed(_ client: Client, driver: Driver, reason: String) {
        driver.problem("\(client.role == Self.publisherRole ? "publisher" : "subscriber \(client.index)") closed: \(reason)")
        if client.role == Self.subscriberRole && client.state != 2 { failedSubscribers += 1 }
    }

    /// Sends the next message: its payload carries the send time and its sequence number.
    private func publish(now: UInt64) {
        guard let publisher else { return }
        let seq = published
        Payload.write(into: &payload, size: options.payload, timestamp: lg_now_ns(), seq: seq)
        frame.removeAll(keepingCapacity: true)
        if options.isMedic {
            frame.append(contentsOf: "{\"type\":\"comment\",\"id\":\"c\(nonce)-\(seq)\",\"proposal\":\"\(proposal ?? "")\",\"text\":\"".utf8)
            frame.append(contentsOf: payload)
            frame.append(contentsOf: "\"}".utf8)
        } else {
            frame.append(contentsOf: "pub:".utf8)
            frame.append(contentsOf: payload)
        }
        counts.append(0)
        published += 1
        driver.sendText(publisher, frame)
    }

    func run() {
        var report = Report(mode: options.rate > 0 ? "fanout-rate" : "fanout", label: options.label)
        let setupStart = lg_now_ns()
        publisher = driver.connect(role: Self.publisherRole)
        guard driver.run(seconds: 15, until: { self.publisher?.state == 2 || self.publisher?.phase == .closed }),
            publisher?.state == 2
        else {
            print("loadgen: the publisher did not get ready (proposal: \(proposal ?? "none"))")
            return
        }
        let n = options.subscribers
        let cap = options.concurrency
        driver.run(
            seconds: options.setupTimeout,
            tick: { _ in
                while self.started < n && self.driver.pending < cap {
                    self.driver.connect(role: Self.subscriberRole, index: self.started, port: self.options.subscriberPort(self.started))
                    self.started += 1
                }
                return -1
            },
            until: { self.ready + self.failedSubscribers + self.driver.connectFailures >= n })
        let setupSeconds = Double(lg_now_ns() - setupStart) / 1e9
        // Let presence and other setup traffic settle so it is not counted as delivery work.
        driver.run(seconds: 0.5, until: { false })
        expected = ready
        guard ready > 0 else {
            print("loadgen: no subscriber got ready")
            return
        }

        let start = Probe.take(pid: options.serverPID, also: options.alsoPIDs)
        let end = start.time + UInt64(options.duration * 1e9)
        publishing = true
        lastDelivery = start.time
        var nextSend = start.time
        let interval = options.rate > 0 ? UInt64(1e9 / options.rate) : 0
        if options.rate == 0 {
            for _ in 0..<options.window { publish(now: start.time) }
        }
        driver.run(
            seconds: options.duration + 1,
            tick: { now in
                if now >= end { self.publishing = false }
                guard self.publishing, interval > 0 else { return self.publishing ? Int((end - now) / 1_000_000) + 1 : -1 }
                while nextSend <= now {
                    self.publish(now: now)
                    nextSend += interval
                }
                return Int((nextSend - now) / 1_000_000) + 1
            },
            until: { !self.publishing })
        // Drain: everything published must reach every subscriber; what has not after 3 s is lost.
        driver.run(seconds: 3, until: { self.completed == self.published })
        var finish = Probe.take(pid: options.serverPID, also: options.alsoPIDs)
        finish.time = lastDelivery

        let lost = published * expected - deliveries
        let seconds = Double(lastDelivery - start.time) / 1e9
        report.add("subscribers", expected)
        report.add("published", published)
        report.add("deliveries", deliveries)
        report.add("deliveries_per_s", Double(deliveries) / max(seconds, 1e-9), digits: 0)
        report.add("lost", lost)
        report.addLatency(histogram)
        report.addCPU(from: start, to: finish, per: deliveries, unit: "msg")
        report.add("acks", acks)
        report.add("errors", errors)
        report.add("setup_s", setupSeconds, digits: 2)
        report.add("remote_closes", driver.remoteCloses)
        report.print()
        driver.closeAll()
    }
}
