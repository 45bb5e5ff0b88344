// PostgresListener: a thread with its own libpq connection that LISTENs on medic_events and fans out.
import CLibPQ
import Foundation
import Logging

/// Receives `medic_events` notifications ("topic seq", sent by every node's store worker after commit)
/// and calls the registered handlers on its own thread. Started by the first handler; reconnects with the
/// same backoff as the worker. Notifications sent while it was disconnected are lost (LISTEN is not
/// durable), so after every connection it hands `.resync` to the handlers: they read heads from the store.
///
/// `@unchecked Sendable`: `handlers`, `stopping` and `thread` are guarded by `condition`; the connection
/// is confined to the listener thread.
final class PostgresListener: @unchecked Sendable {
    /// The channel the worker NOTIFYs.
    static let channel = "medic_events"
    /// The channel presence changes are announced on (payload: the topic).
    static let presenceChannel = "medic_presence"
    /// The channel forwarded commands and their answers are announced on ("to <node> <id>", "answered <node> <id>").
    static let forwardChannel = "medic_forward"

    private let url: String
    private let options: PostgresOptions
    private let logger: Logger
    private let retry: Store.Options
    private let condition = NSCondition()
    private var handlers: [@Sendable (StoreNotification) -> Void] = []
    private var stopping = false
    private var started = false
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)
    /// Poll timeout: bounds how long close() waits for the thread to notice.
    private let pollMilliseconds: Int32 = 100

    init(url: String, options: PostgresOptions, logger: Logger, retry: Store.Options) {
        self.url = url
        self.options = options
        self.logger = logger
        self.retry = retry
    }

    func add(_ handler: @escaping @Sendable (StoreNotification) -> Void) {
        condition.lock()
        handlers.append(handler)
        let start = !started && !stopping
        started = started || start
        condition.unlock()
        if start {
            let t = Thread { [self] in
                run()
                finished.signal()
            }
            t.name = "medic-store-listen"
            condition.lock()
            thread = t
            condition.unlock()
            t.start()
        }
    }

    func close() {
        condition.lock()
        let wasStarted = started && !stopping
        stopping = true
        // Closed from a handler (on this very thread): it cannot wait for itself; it exits on its own.
        let onListener = thread.map { $0 == Thread.current } ?? false
        condition.unlock()
        if wasStarted && !onListener { finished.wait() }
    }

    private var isStopping: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopping
    }

    private func run() {
        var delay = retry.initialReconnectDelay
        while !isStopping {
            do throws(StoreError) {
                let conn = try PostgresConnection(url: url, options: options)
                try conn.execute("LISTEN \(Self.channel)")
                try conn.execute("LISTEN \(Self.presenceChannel)")
                try conn.execute("LISTEN \(Self.forwardChannel)")
                delay = retry.initialReconnectDelay
                // Listening now: whatever was sent before (while disconnected, or before the first connect)
                // was not heard — the handlers read the heads they care about from the store.
                deliver(.resync)
                try serve(conn)
                conn.close()
            } catch {
                logger.warning("store: listener connection failed", metadata: ["error": "\(error.message)"])
                let until = Date().addingTimeInterval(delay)
                delay = min(delay * 2, retry.maxReconnectDelay)
                while !isStopping && Date() < until { usleep(20_000) }
            }
        }
    }

    /// Waits for notifications until stopped or the connection fails.
    private func serve(_ conn: PostgresConnection) throws(StoreError) {
        while !isStopping {
            guard let pg = conn.raw else { throw .unavailable("listener connection closed") }
            let fd = PQsocket(pg)
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let n = poll(&pfd, 1, pollMilliseconds)
            if n < 0 && errno != EINTR { throw .unavailable("poll on listener socket failed: errno \(errno)") }
            if n <= 0 { continue }
            if PQconsumeInput(pg) == 0 || PQstatus(pg) != CONNECTION_OK {
                throw .unavailable("listener connection lost: \(String(cString: PQerrorMessage(pg)))")
            }
            while let note = PQnotifies(pg) {
                let payload = String(cString: note.pointee.extra)
                let channel = String(cString: note.pointee.relname)
                PQfreemem(note)
                if channel == Self.presenceChannel {
                    deliver(.presence(topic: payload))
                    continue
                }
                if channel == Self.forwardChannel {
                    let parts = payload.split(separator: " ")
                    guard parts.count == 3, let id = Int64(parts[2]) else { continue }
                    if parts[0] == "to" { deliver(.forwarded(node: String(parts[1]), id: id)) }
                    if parts[0] == "answered" { deliver(.answered(node: String(parts[1]), id: id)) }
                    continue
                }
                // "topic seq": topics never contain spaces in Medic, but split at the last one to be safe.
                guard let space = payload.lastIndex(of: " "), let head = Int64(payload[payload.index(after: space)...])
                else { continue }
                deliver(.head(topic: String(payload[..<space]), head: head))
            }
        }
    }

    private func deliver(_ note: StoreNotification) {
        condition.lock()
        let current = handlers
        condition.unlock()
        for h in current { h(note) }
    }
}
