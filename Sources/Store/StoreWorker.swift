// StoreWorker: the thread that owns a Store's connection: queueing, group commit, reconnect with backoff.
import Foundation
import Logging

/// The single thread that talks to the database for one Store.
///
/// `@unchecked Sendable`: `queue`, `closing`, `paused`, `commitHandlers` and `thread` are guarded by
/// `condition`; `connection`, `reconnectDelay`, `nextAttempt` and `lastError` are touched only by the
/// worker thread (and by `init`, before the thread starts).
final class StoreWorker: @unchecked Sendable {
    /// A queued request.
    enum Job: Sendable {
        case write(StoreWrite, @Sendable (Result<WriteOutcome, StoreError>) -> Void)
        /// A read or self-contained transaction: `body` calls its completion on success; on a thrown error
        /// the worker calls `fail`.
        case task(@Sendable (any SQLConnection) throws(StoreError) -> Void, fail: @Sendable (StoreError) -> Void)

        func fail(_ error: StoreError) {
            switch self {
            case .write(_, let completion): completion(.failure(error))
            case .task(_, let fail): fail(error)
            }
        }
    }

    private let condition = NSCondition()
    private var queue: [Job] = []
    private var closing = false
    private var closed = false
    private var paused = false
    private var commitHandlers: [@Sendable (String, Int64) -> Void] = []
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    private var connection: (any SQLConnection)?
    private let connect: @Sendable () throws(StoreError) -> any SQLConnection
    private let logger: Logger
    private let options: Store.Options
    private var reconnectDelay: Double
    private var nextAttempt: Date?
    private var lastError: StoreError?

    init(
        connection: any SQLConnection, connect: @escaping @Sendable () throws(StoreError) -> any SQLConnection,
        logger: Logger, options: Store.Options
    ) {
        self.connection = connection
        self.connect = connect
        self.logger = logger
        self.options = options
        reconnectDelay = options.initialReconnectDelay
    }

    func start() {
        let t = Thread { [self] in
            run()
            finished.signal()
        }
        t.name = "medic-store"
        condition.lock()
        thread = t
        condition.unlock()
        t.start()
    }

    var isWorkerThread: Bool {
        condition.lock()
        defer { condition.unlock() }
        return thread.map { $0 == Thread.current } ?? false
    }

    /// Queues a job; after close it fails at once on the caller's thread.
    func submit(_ job: Job) {
        submit(contentsOf: [job])
    }

    /// Queues jobs under one lock and one wakeup, so the worker takes them as one group (a wakeup per
    /// job lets the worker, which may share the caller's core, start a group with the first alone).
    func submit(contentsOf jobs: [Job]) {
        guard !jobs.isEmpty else { return }
        condition.lock()
        if closing {
            condition.unlock()
            for job in jobs { job.fail(.unavailable("store is closed", scope: .request)) }
            return
        }
        queue.append(contentsOf: jobs)
        condition.signal()
        condition.unlock()
    }

    func addCommitHandler(_ handler: @escaping @Sendable (String, Int64) -> Void) {
        condition.lock()
        commitHandlers.append(handler)
        condition.unlock()
    }

    /// Test hook: while paused the worker takes nothing off the queue, so requests submitted meanwhile
    /// are served together (one group commit) on resume.
    func setPaused(_ value: Bool) {
        condition.lock()
        paused = value
        condition.signal()
        condition.unlock()
    }

    /// Drains the queue, closes the connection and joins the thread. Idempotent.
    func close() {
        condition.lock()
        let first = !closing
        closing = true
        condition.signal()
        let started = thread != nil
        let onWorker = thread.map { $0 == Thread.current } ?? false
        condition.unlock()
        guard first else { return }
        // Closed from inside a completion (e.g. the last Store reference dropped there): the thread cannot
        // wait for itself; it drains and exits on its own once this completion returns.
        if started && !onWorker { finished.wait() }
        condition.lock()
        closed = true
        condition.unlock()
    }

    // MARK: Worker thread

    private func run() {
        while true {
            var jobs: [Job] = []
            condition.lock()
            while true {
                if !queue.isEmpty && (!paused || closing) {
                    jobs = queue
                    queue = []
                    break
                }
                if closing { break }
                // While disconnected, wake up for the next reconnect attempt even with nothing queued, so
                // the store is back (and requests stop failing fast) as soon as the database is.
                if connection == nil, let due = nextAttempt {
                    if Date() >= due { break }
                    _ = condition.wait(until: due)
                } else {
                    condition.wait()
                }
            }
            let exit = closing && jobs.isEmpty
            condition.unlock()
            if exit { break }
            reconnectIfDue()
            process(jobs)
        }
        connection?.close()
        connection = nil
    }

    /// Serves jobs in order: runs of consecutive writes become group commits, reads run one by one.
    private func process(_ jobs: [Job]) {
        var i = 0
        while i < jobs.count {
            if case .task(let body, let fail) = jobs[i] {
                i += 1
                guard let connection else {
                    fail(unavailableNow())
                    continue
                }
                do throws(StoreError) {
                    try body(connection)
                } catch {
                    if error.scope == .connection { dropConnection(error) }
                    fail(error)
                }
                continue
            }
            var group: [(StoreWrite, @Sendable (Result<WriteOutcome, StoreError>) -> Void)] = []
            while i < jobs.count, group.count < max(1, options.maxBatchWrites), case .write(let w, let done) = jobs[i] {
                group.append((w, done))
                i += 1
            }
            commit(group)
        }
    }

    /// Commits a group of writes in one transaction, one savepoint per write.
    ///
    /// What callers learn, and why a failed write is never retried behind their back:
    /// - a write that fails by itself (constraint, bad reference) is rolled back to its savepoint and
    ///   fails alone; the others commit;
    /// - if the transaction fails before COMMIT was sent, nothing was committed; when the database said
    ///   so explicitly (deadlock, serialization failure) the group is retried here, otherwise every write
    ///   fails with store_unavailable ("not committed");
    /// - if the connection breaks *during* COMMIT, the outcome is unknown: the server may have committed
    ///   and lost only the reply. Retrying here could store every event twice (fresh seqs, same content),
    ///   so every write fails with store_unavailable ("outcome unknown"). The caller retries with the same
    ///   command id: the command record was part of the same transaction, so a retry of a write that did
    ///   commit returns `.duplicateCommand` and stores nothing again.
    private func commit(_ group: [(StoreWrite, @Sendable (Result<WriteOutcome, StoreError>) -> Void)]) {
        var attempt = 0
        while true {
            guard let connection else {
                let error = unavailableNow()
                for (_, done) in group { done(.failure(error)) }
                return
            }
            let now = nowMilliseconds()
            var results: [Result<WriteOutcome, StoreError>] = []
            var heads: [String: Int64] = [:]
            do throws(StoreError) {
                try connection.begin()
                var done = false
                if let pg = connection as? PostgresConnection, options.postgresPipelining {
                    if let outcomes = try StoreOperations.pipelined(group.map(\.0), on: pg, now: now) {
                        results = outcomes.map { .success($0) }
                        done = true
                    } else {
                        // Something in the group failed: nothing is committed; replay it write by write.
                        try connection.execute("ROLLBACK")
                        try connection.begin()
                    }
                }
                if !done {
                    for (w, _) in group {
                        try connection.execute("SAVEPOINT w")
                        do throws(StoreError) {
                            let outcome = try StoreOperations.apply(w, on: connection, now: now)
                            try connection.execute("RELEASE SAVEPOINT w")
                            results.append(.success(outcome))
                        } catch where error.scope == .request {
                            try connection.execute("ROLLBACK TO SAVEPOINT w")
                            try connection.execute("RELEASE SAVEPOINT w")
                            results.append(.failure(error))
                        }
                    }
                }
                for case .success(.committed(let events)) in results {
                    for e in events { heads[e.topic] = max(heads[e.topic] ?? 0, e.seq) }
                }
                if connection.dialect == .postgres && !done {
                    // pg_notify inside the transaction: Postgres delivers it only if COMMIT succeeds.
                    for (topic, head) in heads {
                        try connection.query("SELECT pg_notify('medic_events', $1)", [.text("\(topic) \(head)")])
                    }
                }
            } catch {
                if error.scope != .connection { try? connection.execute("ROLLBACK") }
                if error.scope == .transaction && attempt < options.transactionRetries {
                    attempt += 1
                    logger.debug("store: retrying group commit", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
                    continue
                }
                if error.scope == .connection { dropConnection(error) }
                let failure = StoreError.unavailable("write not committed: \(error.message)", scope: .request)
                for (_, done) in group { done(.failure(failure)) }
                return
            }
            options.beforeCommit?()
            do throws(StoreError) {
                try connection.execute("COMMIT")
            } catch {
                let failure: StoreError
                if connection.dialect == .postgres && error.scope == .connection {
                    failure = .unavailable(
                        "write outcome unknown (connection lost during COMMIT: \(error.message)); "
                            + "retry with the same command id, which cannot apply twice", scope: .request)
                } else {
                    // The database answered (SQLite runs in-process; Postgres sent an error on a live
                    // connection): a COMMIT that reports an error did not commit.
                    try? connection.execute("ROLLBACK")
                    if error.scope == .transaction && attempt < options.transactionRetries {
                        attempt += 1
                        continue
                    }
                    failure = .unavailable("write not committed: \(error.message)", scope: .request)
                }
                if error.scope == .connection { dropConnection(error) }
                for (_, done) in group { done(.failure(failure)) }
                return
            }
            for (i, (_, done)) in group.enumerated() { done(results[i]) }
            if connection.dialect == .sqlite && !heads.isEmpty {
                condition.lock()
                let handlers = commitHandlers
                condition.unlock()
                for (topic, head) in heads.sorted(by: { $0.key < $1.key }) {
                    for h in handlers { h(topic, head) }
                }
            }
            return
        }
    }

    /// Forgets a broken connection and schedules the first reconnect attempt.
    private func dropConnection(_ error: StoreError) {
        connection?.close()
        connection = nil
        lastError = error
        logger.warning("store: connection lost, reconnecting", metadata: ["error": "\(error.message)"])
        scheduleReconnect()
    }

    /// Exponential backoff: initialReconnectDelay, doubling, capped at maxReconnectDelay.
    private func scheduleReconnect() {
        nextAttempt = Date().addingTimeInterval(reconnectDelay)
        reconnectDelay = min(reconnectDelay * 2, options.maxReconnectDelay)
    }

    private func reconnectIfDue() {
        guard connection == nil, let due = nextAttempt, Date() >= due else { return }
        do throws(StoreError) {
            connection = try connect()
            logger.info("store: reconnected")
            reconnectDelay = options.initialReconnectDelay
            nextAttempt = nil
            lastError = nil
        } catch {
            lastError = error
            scheduleReconnect()
            logger.warning("store: reconnect failed", metadata: ["error": "\(error.message)"])
        }
    }

    /// The error for requests that arrive while disconnected: they fail fast rather than queue up.
    private func unavailableNow() -> StoreError {
        let wait = max(0, Int(((nextAttempt?.timeIntervalSinceNow ?? 0) * 1000).rounded()))
        return .unavailable(
            "store unavailable (\(lastError?.message ?? "not connected")); reconnecting in \(wait) ms", scope: .request)
    }
}
