// Echo: C connections, each keeping `window` messages in flight; CPU per round trip and round-trip latency.
import CLoadgen

/// Every echoed message is answered with a new one until the duration ends; then in-flight messages drain.
final class Echo: ClientHandler {
    private let options: Options
    private let driver: Driver
    private var ready = 0
    private var failed = 0
    private var started = 0
    private var sending = false
    private var sent = 0
    private var received = 0
    private var histogram = Histogram()
    private var payload: [UInt8] = []

    init(options: Options, driver: Driver) {
        self.options = options
        self.driver = driver
    }

    func opened(_ client: Client, driver: Driver) {
        if !options.isMedic { ready += 1 }
    }

    func message(_ client: Client, _ message: UnsafeRawBufferPointer, now: UInt64, driver: Driver) {
        guard let (ts, _) = Payload.parse(message) else {
            if options.isMedic && client.state == 0 && MedicWire.kind(of: message) == .welcome {
                client.state = 1
                ready += 1
            }
            return
        }
        received += 1
        histogram.record(now > ts ? (now - ts) / 1000 : 0)
        if sending { send(client) }
    }

    func closed(_ client: Client, driver: Driver, reason: String) {
        failed += 1
        driver.problem("connection \(client.index) closed: \(reason)")
    }

    private func send(_ client: Client) {
        Payload.write(into: &payload, size: options.payload, timestamp: lg_now_ns(), seq: sent)
        sent += 1
        driver.sendText(client, payload)
    }

    func run() {
        var report = Report(mode: "echo", label: options.label)
        let n = options.connections
        var clients: [Client] = []
        driver.run(
            seconds: options.setupTimeout,
            tick: { _ in
                while self.started < n && self.driver.pending < self.options.concurrency {
                    if let c = self.driver.connect(index: self.started) { clients.append(c) }
                    self.started += 1
                }
                return -1
            },
            until: { self.ready + self.failed + self.driver.connectFailures >= n })
        let start = Probe.take(pid: options.serverPID)
        sending = true
        for client in clients where client.phase == .open {
            for _ in 0..<options.window { send(client) }
        }
        let end = start.time + UInt64(options.duration * 1e9)
        driver.run(seconds: options.duration + 1, tick: { now in Int((end - min(end, now)) / 1_000_000) }, until: { lg_now_ns() >= end })
        sending = false
        let stopped = Probe.take(pid: options.serverPID)
        let receivedAtStop = received
        driver.run(seconds: 3, until: { self.received == self.sent })
        let finish = Probe.take(pid: options.serverPID)
        report.add("connections", ready)
        report.add("round_trips", received)
        report.add("round_trips_per_s", Double(receivedAtStop) / (Double(stopped.time - start.time) / 1e9), digits: 0)
        report.add("lost", sent - received)
        report.addLatency(histogram)
        report.addCPU(from: start, to: finish, per: received, unit: "rt")
        report.add("remote_closes", driver.remoteCloses)
        report.print()
        driver.closeAll()
    }
}
