// Server: listeners (plain and TLS side by side), the connection table, the per-tick flush, timeouts, shutdown.
import CSystem
public import EventLoop
import Glibc
import HTTP1
import IOBytes
public import TLS
import WebSocket
import Logging

/// Counters for /metrics and the benchmarks. Plain integers: only the loop thread writes them.
public struct ServerMetrics: Sendable {
    public var connectionsAccepted = 0
    public var connectionsOpen = 0
    public var connectionsRefused = 0
    public var websocketsOpened = 0
    public var httpRequests = 0
    public var httpErrors = 0
    public var messagesIn = 0
    public var messagesOut = 0
    public var bytesIn = 0
    public var bytesOut = 0
    public var slowConsumerCloses = 0
}

/// An HTTP/1.1 + WebSocket server on one event loop.
public final class Server {
    public let loop: EventLoop
    public let configuration: ServerConfiguration
    let httpHandler: any HTTPHandler
    public let websocketHandler: (any WebSocketHandler)?
    public internal(set) var metrics = ServerMetrics()
    private var listeners: [Listener] = []
    /// Open connections by fd (a dense table: 8 bytes per fd, no hashing; see `Connection.id`).
    private var byFD = FDTable<Connection>()
    public private(set) var connectionCount = 0
    private var flushList: [Connection] = []
    /// Connections holding deferred fan-out writes, flushed by `releaseDeferredFlushes` or the deadline.
    private var deferredList: [Connection] = []
    private var deferredDeadline: TimerID?
    private var deferredReleased = false
    /// Outbound queues not lent to any connection (LIFO, so the warm ones are reused).
    private var outboundPool: [Outbound] = []
    private var closedList: [Connection] = []
    let vectors = IOVectors()
    /// One copy of the WebSocket limits for every connection.
    let websocketLimits: WebSocketLimits.Shared
    /// One copy of the restricted limits (before the handler lifts them) for every connection.
    let restrictedWebSocketLimits: WebSocketLimits.Shared
    /// permessage-deflate's zlib streams, one set per loop (made on first use; connections hold none, so an
    /// idle connection costs no zlib memory — RFC 7692 §7.1.1: no context takeover either way).
    private(set) lazy var deflater = MessageDeflater(level: configuration.deflate.level)
    private(set) lazy var inflater = MessageInflater()
    private var plaintextScratch: [UInt8] = []
    private var actionScratch: [WebSocketAction] = []
    private var sweepTimer: TimerID?
    public private(set) var isShuttingDown = false
    private var shutdownCompletion: (() -> Void)?
    private var cachedDate: (second: Int64, text: String) = (0, "")

    public init(loop: EventLoop, configuration: ServerConfiguration = .init(), http: any HTTPHandler, websocket: (any WebSocketHandler)?) {
        self.loop = loop
        self.configuration = configuration
        self.httpHandler = http
        self.websocketHandler = websocket
        self.websocketLimits = WebSocketLimits.Shared(configuration.websocket)
        self.restrictedWebSocketLimits = WebSocketLimits.Shared(configuration.restrictedWebSocket)
        loop.addBeforeSleepHook { [unowned self] in self.beforeSleep() }
        scheduleSweep()
    }

    deinit {
        unretained.invalidate()
        if reserveFD >= 0 { closeFD(reserveFD) }
    }

    /// What callbacks and the app hold instead of a `weak` reference (see `Unretained`).
    public private(set) lazy var unretained = Unretained(self)

    /// Opens a listener; `tls` makes it https/wss. Returns the bound port (useful with port 0).
    @discardableResult
    public func listen(_ address: SocketAddressSpec, tls: TLSContext? = nil, reusePort: Bool = false) throws(SystemError) -> UInt16 {
        let (fd, port) = try Socket.listen(address, reusePort: reusePort)
        let listener = Listener(server: self, fd: fd, tls: tls)
        do {
            listener.registration = try loop.register(fd: fd, interest: .read, handler: listener)
        } catch {
            closeFD(fd)
            throw error
        }
        listeners.append(listener)
        return port
    }

    /// Every open connection (for broadcasts in tests and shutdown; allocates).
    public var allConnections: [Connection] { byFD.elements }

    /// The open connection with this id, if any (O(1): the id's low 32 bits are its fd).
    public func connection(id: UInt64) -> Connection? {
        let fd = Int(UInt32(truncatingIfNeeded: id))
        guard let connection = byFD[fd], connection.id == id else { return nil }
        return connection
    }

    func accepted(fd: Int32, tls: TLSContext?) {
        guard !isShuttingDown, connectionCount < configuration.maxConnections else {
            metrics.connectionsRefused += 1
            closeFD(fd)
            return
        }
        var engine: TLSEngine?
        if let tls {
            do { engine = try TLSEngine(context: tls) } catch {
                loop.logger.warning("TLS engine setup failed", metadata: ["error": "\(error)"])
                closeFD(fd)
                return
            }
        }
        let connection = Connection(server: self, fd: fd, tls: engine, now: loop.now)
        do {
            let registration = try loop.register(fd: fd, interest: .read, handler: connection)
            connection.id = registration.uniqueID
            connection.isRegistered = true
        } catch {
            closeFD(fd)
            return
        }
        let slot = Int(fd)
        // A closed connection whose release is pending may still sit in this slot (its fd number was
        // reused at once); it is released from the closed list and must not clear the new one then.
        byFD[slot] = connection
        connectionCount += 1
        metrics.connectionsAccepted += 1
        metrics.connectionsOpen = connectionCount
    }

    /// An fd held in reserve for `refuseWithReserveFD` (-1 while spent).
    private var reserveFD: Int32 = open("/dev/null", O_RDONLY | O_CLOEXEC)
    private var lastFDWarning: UInt64 = 0

    /// At EMFILE/ENFILE: frees the reserve fd, accepts one pending connection and closes it, and takes
    /// the reserve back. Returns false when there is no reserve (nothing accepted). Logs once a second.
    func refuseWithReserveFD(listener: Int32) -> Bool {
        if loop.now &- lastFDWarning > 1_000_000_000 {
            lastFDWarning = loop.now
            loop.logger.warning("out of file descriptors: refusing connections (raise ulimit -n; README: Limits)",
                metadata: ["open": "\(connectionCount)"])
        }
        guard reserveFD >= 0 else { return false }
        closeFD(reserveFD)
        if case .processed(let client)? = try? Socket.accept(listener) {
            metrics.connectionsRefused += 1
            closeFD(client)
        }
        reserveFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        return reserveFD >= 0
    }

    func needsFlush(_ connection: Connection) {
        flushList.append(connection)
    }

    /// A fan-out write that may wait: it is flushed when the app calls `releaseDeferredFlushes()` (it knows
    /// when no more publications are coming soon) or after `deferredFlushMicroseconds`, whichever is first.
    /// Frames of several publications then leave in one writev per subscriber instead of one each.
    func needsDeferredFlush(_ connection: Connection) {
        if configuration.deferredFlushMicroseconds == 0 {
            connection.flushState = FlushState.listed
            flushList.append(connection)
            return
        }
        deferredList.append(connection)
        if deferredDeadline == nil {
            let unretained = self.unretained
            deferredDeadline = loop.schedule(afterNanoseconds: UInt64(configuration.deferredFlushMicroseconds) * 1_000) {
                guard let self = unretained.value else { return }
                self.deferredDeadline = nil
                self.deferredReleased = true
            }
        }
    }

    /// Lets the deferred fan-out writes go at the end of this tick.
    public func releaseDeferredFlushes() {
        if !deferredList.isEmpty { deferredReleased = true }
    }

    func lendOutbound() -> Outbound {
        outboundPool.popLast() ?? Outbound()
    }

    func recycle(_ outbound: Outbound) {
        if outboundPool.count < Self.outboundPoolLimit {
            outbound.reset()
            outboundPool.append(outbound)
        }
    }

    /// Enough for every subscriber of a busy topic to flush in one tick without allocating.
    static let outboundPoolLimit = 4096

    func connectionClosed(_ connection: Connection) {
        closedList.append(connection)
    }

    /// Before the loop sleeps: write every connection touched this tick (one writev each), then release
    /// closed connections and tell the app — never in the middle of a dispatch.
    private func beforeSleep() {
        if deferredReleased {
            deferredReleased = false
            if let deadline = deferredDeadline {
                loop.cancel(deadline)
                deferredDeadline = nil
            }
            for connection in deferredList where connection.flushState & FlushState.deferred != 0 { connection.flush() }
            deferredList.removeAll(keepingCapacity: deferredList.count < 4096)
        }
        var index = 0
        while index < flushList.count {
            let connection = flushList[index]
            if connection.flushState & FlushState.listed != 0 { connection.flush() }
            index += 1
        }
        flushList.removeAll(keepingCapacity: flushList.count < 4096)
        while !closedList.isEmpty {
            let closed = closedList
            closedList.removeAll()
            for connection in closed {
                let slot = Int(connection.fd)
                if byFD[slot] === connection { byFD[slot] = nil }
                connectionCount -= 1
                if connection.isWebSocket { websocketHandler?.didClose(connection) }
                connection.userData = nil
            }
        }
        metrics.connectionsOpen = connectionCount
        if isShuttingDown && connectionCount == 0, let completion = shutdownCompletion {
            shutdownCompletion = nil
            completion()
        }
    }

    private func scheduleSweep() {
        let unretained = self.unretained
        sweepTimer = loop.schedule(afterNanoseconds: 1_000_000_000) {
            guard let self = unretained.value else { return }
            let now = self.loop.now
            self.byFD.forEach { $0.sweep(now: now) }
            self.scheduleSweep()
        }
    }

    /// Graceful shutdown: stop accepting, send 1001 to every WebSocket, close idle HTTP connections, and
    /// call `completion` when all are gone or after the grace period (the rest are cut).
    public func shutdown(completion: @escaping () -> Void) {
        guard !isShuttingDown else { return }
        isShuttingDown = true
        shutdownCompletion = completion
        for listener in listeners { listener.close() }
        listeners.removeAll()
        for connection in allConnections { connection.beginShutdown() }
        let unretained = self.unretained
        loop.schedule(afterNanoseconds: UInt64(configuration.shutdownGraceMilliseconds) * 1_000_000) {
            guard let self = unretained.value else { return }
            for connection in self.allConnections { connection.abort() }
        }
    }

    /// The IMF-fixdate for the Date header, formatted at most once a second.
    func httpDate() -> String {
        let seconds = wallClockMilliseconds() / 1000
        if seconds != cachedDate.second { cachedDate = (seconds, HTTPDate.format(secondsSince1970: seconds)) }
        return cachedDate.text
    }

    func takePlaintextScratch() -> [UInt8] {
        var scratch: [UInt8] = []
        swap(&scratch, &plaintextScratch)
        scratch.removeAll(keepingCapacity: true)
        return scratch
    }

    func returnPlaintextScratch(_ scratch: [UInt8]) {
        if scratch.capacity <= 1 << 20 { plaintextScratch = scratch }
    }

    func takeActionScratch() -> [WebSocketAction] {
        var scratch: [WebSocketAction] = []
        swap(&scratch, &actionScratch)
        return scratch
    }

    func returnActionScratch(_ scratch: inout [WebSocketAction]) {
        scratch.removeAll(keepingCapacity: true)
        swap(&scratch, &actionScratch)
    }
}

/// Bits of `Connection.flushState`.
enum FlushState {
    /// In the server's flush list: written before the loop sleeps.
    static let listed: UInt8 = 1
    /// In the deferred list: written when released or at the deadline.
    static let deferred: UInt8 = 2
}

/// Accepts connections on one listening socket.
final class Listener: IOHandler {
    unowned let server: Server
    let fd: Int32
    let tls: TLSContext?
    var registration: Registration?

    init(server: Server, fd: Int32, tls: TLSContext?) {
        self.server = server
        self.fd = fd
        self.tls = tls
    }

    func ioReady(_ events: IOEvents) {
        // Accept in bursts, bounded so a connection storm cannot starve established connections.
        for _ in 0..<256 {
            do {
                switch try Socket.accept(fd) {
                case .processed(let client): server.accepted(fd: client, tls: tls)
                case .wouldBlock: return
                }
            } catch {
                if error.errno == EMFILE || error.errno == ENFILE {
                    // Out of fds: the pending connection would keep the (level-triggered) listener readable
                    // and the loop spinning. Spend the reserve fd to accept it and close it at once — the
                    // client sees a reset rather than a hang — then take the reserve back (libev's idea).
                    if !server.refuseWithReserveFD(listener: fd) { return }
                    continue
                }
                server.loop.logger.warning("accept failed", metadata: ["error": "\(error)"])
                return
            }
        }
    }

    func close() {
        if let registration { server.loop.unregister(registration) }
        registration = nil
        closeFD(fd)
    }
}
