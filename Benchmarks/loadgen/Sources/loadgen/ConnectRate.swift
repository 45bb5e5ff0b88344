// ConnectRate: connections set up per second — connect, upgrade (and for Medic, authenticate), then reset.
import CLoadgen

/// Keeps `concurrency` connections in setup; each one that completes (101, or Medic's `welcome`) is closed
/// with an RST (no TIME_WAIT on either side) and replaced.
final class ConnectRate: ClientHandler {
    private let options: Options
    private let driver: Driver
    private var completed = 0
    private var failed = 0
    private var started = 0
    private var histogram = Histogram()

    init(options: Options, driver: Driver) {
        self.options = options
        self.driver = driver
    }

    private func done(_ client: Client) {
        completed += 1
        histogram.record((lg_now_ns() - client.startedAt) / 1000)
        driver.close(client, reset: true)
    }

    func opened(_ client: Client, driver: Driver) {
        if !options.isMedic { done(client) }
    }

    func message(_ client: Client, _ message: UnsafeRawBufferPointer, now: UInt64, driver: Driver) {
        if MedicWire.kind(of: message) == .welcome { done(client) }
    }

    func closed(_ client: Client, driver: Driver, reason: String) {
        failed += 1
        driver.problem("connection closed during setup: \(reason)")
    }

    func run() {
        var report = Report(mode: "connect-rate", label: options.label)
        let start = Probe.take(pid: options.serverPID)
        let end = start.time + UInt64(options.duration * 1e9)
        driver.run(
            seconds: options.duration + 1,
            tick: { now in
                if now < end {
                    while self.driver.live < self.options.concurrency {
                        self.driver.connect(index: self.started)
                        self.started += 1
                    }
                }
                return Int((end - min(now, end)) / 1_000_000) + 1
            },
            until: { lg_now_ns() >= end })
        let finish = Probe.take(pid: options.serverPID)
        report.add("connections", completed)
        report.add("conn_per_s", Double(completed) / (Double(finish.time - start.time) / 1e9), digits: 0)
        report.add("failed", failed + driver.connectFailures + driver.upgradeFailures)
        report.addLatency(histogram, prefix: "setup_")
        report.addCPU(from: start, to: finish, per: completed, unit: "conn")
        report.print()
        driver.closeAll()
        driver.run(seconds: 0.5, until: { false })
    }
}
