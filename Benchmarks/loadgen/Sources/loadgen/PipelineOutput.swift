// PipelineOutput: a test run printing L lines watched by N subscribers — does every line reach every watcher
// within 1 s of the run's end?
import CLoadgen

/// Watchers connect and authenticate first; an admin connection proposes a change (the server's test command
/// prints the lines, `L1` … `L<n>`); on the ack every watcher subscribes with `since: 0` (replay, then live).
/// A watcher is done at `test_finished`; its lag is its receive time minus that event's `ts` (both wall-clock
/// milliseconds on this machine). The first `countingWatchers` count every line; every watcher counts the bytes
/// of its `test_output` events and checks that `seq` has no gap — the server encodes each event once, so a
/// watcher with the counted watchers' bytes and no gap has every line (and the load generator does not spend
/// its CPU scanning a gigabyte of output).

final class PipelineOutput: ClientHandler {
    private let options: Options
    private let driver: Driver
    private var watchers: [Client] = []
    private var welcomed = 0
    private var failed = 0
    private var started = 0
    private var finished = 0
    private var proposal: String?
    private var admin: Client?
    private var lags: [Int64] = []
    private var finishedTs: Int64 = 0
    private var startedTs: Int64 = 0
    private var proposedAt: Int64 = 0
    private var outputEvents = 0
    private var errors = 0

    private var gaps = 0
    private static let countingWatchers = 10
    private static let adminRole = 0
    private static let watcherRole = 1

    init(options: Options, driver: Driver) {
        self.options = options
        self.driver = driver
    }

    func opened(_ client: Client, driver: Driver) {}

    func message(_ client: Client, _ message: UnsafeRawBufferPointer, now: UInt64, driver: Driver) {
        if client.role == Self.watcherRole && client.state == 2 {
            let head = UnsafeRawBufferPointer(rebasing: message.prefix(256))  // the envelope precedes `data`
            guard Bytes.contains(head, "\"type\":\"event\"") else { return }
            if let seq = Bytes.integer(after: "\"seq\":", in: head) {
                if Int(seq) != client.sent + 1 { gaps += 1 }
                client.sent = Int(seq)
            }
            if Bytes.contains(head, "\"kind\":\"test_output\"") {
                if client.index < Self.countingWatchers { client.received += Bytes.count(message, "\"L") }
                client.bytes += message.count
                outputEvents += 1
            } else if Bytes.contains(head, "\"kind\":\"test_started\"") {
                startedTs = Bytes.integer(after: "\"ts\":", in: head) ?? 0
            } else if Bytes.contains(head, "\"kind\":\"test_finished\"") {
                let ts = Bytes.integer(after: "\"ts\":", in: head) ?? 0
                finishedTs = ts
                lags.append(lg_wall_ms() - ts)
                client.state = 3
                finished += 1
            }
            return
        }
        switch (client.role, client.state, MedicWire.kind(of: message)) {
        case (Self.watcherRole, 0, .welcome):
            client.state = 1
            welcomed += 1
        case (Self.adminRole, 0, .welcome):
            client.state = 1
            proposedAt = lg_wall_ms()
            driver.sendText(client, MedicWire.propose(id: "out-\(lg_wall_ms())", repo: options.repo, content: "print"))
        case (Self.adminRole, 1, .ack):
            proposal = Bytes.string(after: "\"proposal\":\"", in: message)
            client.state = 2
            for watcher in watchers where watcher.state == 1 {
                driver.sendText(watcher, MedicWire.subscribe(topic: "proposal:\(proposal ?? "")", since: 0))
            }
        case (Self.watcherRole, 1, .ack):
            client.state = 2
        case (_, _, .error):
            errors += 1
            driver.problem("error from server: \(MedicWire.text(message))")
        default:
            break
        }
    }

    func closed(_ client: Client, driver: Driver, reason: String) {
        failed += 1
        driver.problem("\(client.role == Self.adminRole ? "admin" : "watcher \(client.index)") closed: \(reason)")
    }

    func run() {
        var report = Report(mode: "pipeline-output", label: options.label)
        let n = options.subscribers
        driver.run(
            seconds: options.setupTimeout,
            tick: { _ in
                while self.started < n && self.driver.pending < self.options.concurrency {
                    if let c = self.driver.connect(role: Self.watcherRole, index: self.started) { self.watchers.append(c) }
                    self.started += 1
                }
                return -1
            },
            until: { self.welcomed + self.failed + self.driver.connectFailures >= n })
        let start = Probe.take(pid: options.serverPID)
        admin = driver.connect(role: Self.adminRole)
        // Bounded: the pipeline deploys, runs the command and streams its output; 180 s is far beyond a healthy run.
        driver.run(seconds: 180, until: { self.finished + self.failed >= self.welcomed || self.admin?.phase == .closed })
        let finish = Probe.take(pid: options.serverPID)
        let counted = watchers.filter { $0.index < Self.countingWatchers }
        let reference = counted.first { $0.state == 3 && $0.received == options.lines }?.bytes ?? -1
        let complete = watchers.filter { $0.state == 3 && $0.bytes == reference }.count
        let lines = counted.map(\.received)
        lags.sort()
        report.add("watchers", welcomed)
        report.add("lines_expected", options.lines)
        report.add("lines_min", lines.min() ?? 0)
        report.add("lines_max", lines.max() ?? 0)
        report.add("watchers_complete", complete)
        report.add("output_bytes_per_watcher", reference)
        report.add("seq_gaps", gaps)
        report.add("test_output_events_per_watcher", welcomed > 0 ? outputEvents / welcomed : 0)
        report.add("run_ms", Int(finishedTs - startedTs))
        report.add("propose_to_finished_ms", Int(finishedTs - proposedAt))
        report.add("lag_p50_ms", Int(lags.isEmpty ? -1 : lags[lags.count / 2]))
        report.add("lag_max_ms", Int(lags.last ?? -1))
        report.add("within_1s", complete == n && gaps == 0 && (lags.last ?? 9999) <= 1000 ? "yes" : "no")
        report.addCPU(from: start, to: finish, per: max(1, complete * options.lines), unit: "line")
        report.add("errors", errors)
        report.add("remote_closes", driver.remoteCloses)
        report.print()
        driver.closeAll()
    }
}
