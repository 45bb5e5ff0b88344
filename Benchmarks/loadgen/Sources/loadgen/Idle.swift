// Idle: N connections opened and left idle; server RSS per connection from /proc/PID/status VmRSS.
import CLoadgen

/// Medic connections count once `welcome` arrives (upgraded and authenticated); plain ones at the 101.
final class Idle: ClientHandler {
    private let options: Options
    private let driver: Driver
    private var ready = 0
    private var failed = 0
    private var started = 0

    init(options: Options, driver: Driver) {
        self.options = options
        self.driver = driver
    }

    func opened(_ client: Client, driver: Driver) {
        if !options.isMedic { ready += 1 }
    }

    func message(_ client: Client, _ message: UnsafeRawBufferPointer, now: UInt64, driver: Driver) {
        if client.state == 0 && MedicWire.kind(of: message) == .welcome {
            client.state = 1
            ready += 1
        }
    }

    func closed(_ client: Client, driver: Driver, reason: String) {
        failed += 1
        driver.problem("connection \(client.index) closed: \(reason)")
    }

    func run() {
        var report = Report(mode: "idle", label: options.label)
        let n = options.connections
        // Warm the server with a few connections first so one-time allocations (buffers, tables) are not
        // charged to the measured connections.
        let warm = min(50, n)
        driver.run(
            seconds: 10,
            tick: { _ in
                while self.started < warm && self.driver.pending < self.options.concurrency {
                    self.driver.connect(index: self.started)
                    self.started += 1
                }
                return -1
            }, until: { self.ready + self.failed >= warm })
        driver.run(seconds: 0.5, until: { false })
        let rssBefore = lg_proc_rss_kb(options.serverPID)
        let readyBefore = ready
        let start = Probe.take(pid: options.serverPID)
        let target = n + warm
        driver.run(
            seconds: options.setupTimeout,
            tick: { _ in
                while self.started < target && self.driver.pending < self.options.concurrency {
                    self.driver.connect(index: self.started)
                    self.started += 1
                }
                return -1
            },
            until: { self.ready + self.failed + self.driver.connectFailures >= target })
        let opened = Probe.take(pid: options.serverPID)
        driver.run(seconds: 1, until: { false })
        let rssAfter = lg_proc_rss_kb(options.serverPID)
        let measured = ready - readyBefore
        report.add("connections", measured)
        report.add("rss_before_kb", Int(rssBefore))
        report.add("rss_after_kb", Int(rssAfter))
        report.add("rss_bytes_per_conn", measured > 0 ? Int((rssAfter - rssBefore) * 1024) / measured : 0)
        report.add("setup_conn_per_s", Double(measured) / (Double(opened.time - start.time) / 1e9), digits: 0)
        report.add("failed", failed + driver.connectFailures)
        report.print()
        driver.closeAll()
        driver.run(seconds: 0.5, until: { false })
    }
}
