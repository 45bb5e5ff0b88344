// Connection: one accepted socket — read, HTTP/1.1 or WebSocket codec, optional TLS, write queue, close.
import CSystem
public import EventLoop
public import HTTP1
public import IOBytes
import TLS
import Logging
public import WebSocket

/// One client connection, owned by its `Server` and the loop thread. It starts in HTTP mode and may
/// switch to WebSocket after a valid upgrade (RFC 6455 §4.2). Closing is a request: the fd is closed at
/// once, but the object is released and `didClose` delivered in the loop's before-sleep phase.
public final class Connection: IOHandler {
    /// Unique for the life of the process.
    public let id: UInt64
    /// Application state attached to this session (the app's subscriber record, principal …).
    public var userData: AnyObject?

    unowned let server: Server
    let fd: Int32
    var registration: Registration?
    private var tls: TLSEngine?
    private var http: HTTPRequestParser?
    private var ws: WebSocketConnection?
    private var queue = WriteQueue()
    private var writeArmed = false
    var pendingFlush = false
    /// True once the socket is closed (the app may still hold the object until `didClose`).
    public private(set) var isClosed = false
    private var closeWhenDrained = false
    private var closingSince: UInt64 = 0
    /// Monotonic ns of the last inbound bytes.
    var lastActivity: UInt64
    /// Monotonic ns of the first byte of an unfinished HTTP request (0 = none).
    private var requestStartedAt: UInt64 = 0
    private var pingSentAt: UInt64 = 0
    private var awaitingResponse = false
    private var respondingToHead = false
    private var respondingKeepAlive = true
    private var processingHTTP = false

    init(server: Server, fd: Int32, id: UInt64, tls: TLSEngine?, now: UInt64) {
        self.server = server
        self.fd = fd
        self.id = id
        self.tls = tls
        self.lastActivity = now
        self.http = HTTPRequestParser(limits: server.configuration.http)
    }

    /// True once upgraded to WebSocket.
    public var isWebSocket: Bool { ws != nil }
    /// Bytes waiting to be written.
    public var queuedBytes: Int { queue.byteCount }
    /// False above the high-water mark: a fan-out may prefer to drop this subscriber early.
    public var isWritable: Bool { queue.byteCount < server.configuration.highWaterMark }
    public var isTLS: Bool { tls != nil }

    // MARK: reading

    public func ioReady(_ events: IOEvents) {
        if events.contains(.writable) { flush() }
        if events.contains(.readable) || events.contains(.hangup) { readAvailable() }
    }

    private func readAvailable() {
        let buffer = server.loop.readBuffer
        // Bounded reads per wakeup keep one fast sender from starving the others (level-triggered: we come back).
        for _ in 0..<4 where !isClosed {
            let n: Int
            do {
                switch try Socket.read(fd, into: buffer) {
                case .processed(let count): n = count
                case .wouldBlock: return
                }
            } catch {
                abort()
                return
            }
            if n == 0 {
                peerClosed()
                return
            }
            lastActivity = server.loop.now
            server.metrics.bytesIn += n
            let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            if tls != nil {
                receiveCiphertext(bytes)
            } else {
                receivePlaintext(bytes)
            }
            if n < buffer.count { return }
        }
    }

    private func receiveCiphertext(_ bytes: UnsafeRawBufferPointer) {
        guard let tls else { return }
        tls.feedCiphertext(bytes)
        var plaintext = server.takePlaintextScratch()
        defer { server.returnPlaintextScratch(plaintext) }
        let result = tls.readPlaintext(into: &plaintext)
        if !plaintext.isEmpty {
            plaintext.withUnsafeBytes { receivePlaintext($0) }
        }
        if tls.hasPendingCiphertext { scheduleFlush() }
        switch result {
        case .ok: break
        case .peerClosed: peerClosed()
        case .failed(let error):
            server.loop.logger.debug("TLS failure", metadata: ["connection": "\(id)", "error": "\(error)"])
            // Let a pending alert reach the peer, then close.
            closeAfterFlush()
        }
    }

    private func receivePlaintext(_ bytes: UnsafeRawBufferPointer) {
        if ws != nil {
            receiveWebSocket(bytes)
        } else if http != nil {
            if requestStartedAt == 0 && !awaitingResponse { requestStartedAt = server.loop.now }
            http!.feed(bytes)
            processHTTP()
        }
    }

    private func peerClosed() {
        // A WebSocket peer that vanishes without a close frame: RFC 6455 §7.1.5 abnormal closure (1006, never on the wire).
        if closeWhenDrained && queue.isEmpty { finishClose() } else { abort() }
    }

    // MARK: HTTP

    private func processHTTP() {
        guard !processingHTTP else { return }
        processingHTTP = true
        defer { processingHTTP = false }
        while !isClosed, !closeWhenDrained, !awaitingResponse, http != nil {
            let request: HTTPRequest?
            do {
                request = try http!.next()
            } catch {
                server.metrics.httpErrors += 1
                respondingKeepAlive = false
                awaitingResponse = true
                respond(HTTPResponse.text(error.status, error.message + "\n"))
                return
            }
            guard let request else {
                if !(http?.hasPartialRequest ?? false) { requestStartedAt = 0 }
                return
            }
            server.metrics.httpRequests += 1
            requestStartedAt = (http?.hasPartialRequest ?? false) ? server.loop.now : 0
            awaitingResponse = true
            respondingToHead = request.method == "HEAD"
            respondingKeepAlive = request.keepAlive && !server.isShuttingDown
            // RFC 9110 §7.8: an Upgrade to anything but websocket is ignored and served as plain HTTP.
            if request.headers.tokens("upgrade").contains("websocket") {
                upgrade(request)
                return
            }
            server.httpHandler.handle(request, on: self)
        }
    }

    /// Sends the response to the current request. Further pipelined requests are then processed.
    public func respond(_ response: HTTPResponse) {
        guard !isClosed, awaitingResponse else { return }
        awaitingResponse = false
        let bytes = response.encode(headOnly: respondingToHead, keepAlive: respondingKeepAlive, date: server.httpDate())
        enqueue(SharedBytes(bytes))
        if !respondingKeepAlive {
            closeAfterFlush()
            return
        }
        if !processingHTTP { processHTTP() }
    }

    private func upgrade(_ request: HTTPRequest) {
        guard let handler = server.websocketHandler, let policy = handler.upgradePolicy(for: request) else {
            respondingKeepAlive = false
            respond(HTTPResponse.text(404, "not found\n"))
            return
        }
        let outcome = WebSocketHandshake.validate(
            method: request.method, versionMajor: request.versionMajor, versionMinor: request.versionMinor,
            headers: request.headers.fields, allowedOrigins: policy.origins, supportedSubprotocols: policy.subprotocols)
        switch outcome {
        case .failure(let rejected):
            var headers = HTTPHeaders()
            for (name, value) in rejected.headers { headers.add(name, value) }
            headers.add("Content-Type", "text/plain; charset=utf-8")
            respondingKeepAlive = false
            respond(HTTPResponse(status: rejected.status, headers: headers, body: Array((rejected.reason + "\n").utf8)))
        case .success(let accepted):
            if policy.requireSubprotocol && accepted.subprotocol == nil {
                respondingKeepAlive = false
                let wanted = policy.subprotocols.joined(separator: ", ")
                respond(HTTPResponse.text(400, "a WebSocket subprotocol is required: \(wanted)\n"))
                return
            }
            // RFC 6455 §4.2.2 step 5: 101 with Upgrade, Connection, Sec-WebSocket-Accept (+ protocol).
            var headers = HTTPHeaders()
            headers.add("Upgrade", "websocket")
            headers.add("Connection", "Upgrade")
            headers.add("Sec-WebSocket-Accept", accepted.acceptValue)
            if let subprotocol = accepted.subprotocol { headers.add("Sec-WebSocket-Protocol", subprotocol) }
            awaitingResponse = false
            enqueue(SharedBytes(HTTPResponse(status: 101, headers: headers).encode(keepAlive: true, date: nil)))
            let leftover = http?.takeBufferedBytes() ?? []
            http = nil
            requestStartedAt = 0
            ws = WebSocketConnection(role: .server, limits: server.configuration.websocket)
            server.metrics.websocketsOpened += 1
            handler.didOpen(self, request: request, subprotocol: accepted.subprotocol)
            if !leftover.isEmpty && !isClosed {
                leftover.withUnsafeBytes { receiveWebSocket($0) }
            }
        }
    }

    // MARK: WebSocket

    private func receiveWebSocket(_ bytes: UnsafeRawBufferPointer) {
        var actions = server.takeActionScratch()
        defer { server.returnActionScratch(&actions) }
        ws!.receive(bytes, into: &actions)
        for action in actions {
            if isClosed { return }
            switch action {
            case .message(let opcode, let payload):
                server.metrics.messagesIn += 1
                server.websocketHandler?.didReceive(self, opcode: opcode, payload: payload)
            case .send(let frame):
                enqueue(SharedBytes(frame), bypassLimit: true)
            case .pong:
                pingSentAt = 0
            case .close:
                closeAfterFlush()
            }
        }
    }

    /// Sends one text message (framed here, unmasked: server role).
    public func sendText(_ payload: [UInt8]) {
        guard ws != nil else { return }
        payload.withUnsafeBytes { send(frame: WebSocketFrame.encodeShared(.text, payload: $0)) }
    }

    /// Sends one binary message.
    public func sendBinary(_ payload: UnsafeRawBufferPointer) {
        guard ws != nil else { return }
        send(frame: WebSocketFrame.encodeShared(.binary, payload: payload))
    }

    /// Queues an already framed message (the fan-out path: one frame shared by every subscriber).
    /// Returns false when the connection was closed for exceeding its queue limit.
    @discardableResult
    public func send(frame: SharedBytes) -> Bool {
        guard ws != nil, ws!.state == .open, !isClosed, !closeWhenDrained else { return false }
        server.metrics.messagesOut += 1
        return enqueue(frame)
    }

    /// Starts the closing handshake (RFC 6455 §7.1.2) with `code`; the TCP connection closes when the
    /// peer answers, or after the close timeout.
    public func close(code: UInt16, reason: String) {
        guard !isClosed, !closeWhenDrained else { return }
        if ws != nil, ws!.state == .open {
            let frame = ws!.initiateClose(code: code, reason: reason)
            enqueue(SharedBytes(frame), bypassLimit: true)
            closingSince = server.loop.now
            // We keep reading until the peer's close arrives (its .close action) or the timeout in `sweep`.
        } else {
            closeAfterFlush()
        }
    }

    // MARK: writing

    @discardableResult
    private func enqueue(_ chunk: SharedBytes, bypassLimit: Bool = false) -> Bool {
        guard !isClosed else { return false }
        if !bypassLimit && queue.byteCount + chunk.count > server.configuration.maxQueuedBytes {
            // Invariant 4: a slow consumer hurts only itself. Drop what is queued beyond the frame in flight
            // (it would be replayed anyway) and close with 1008; the client resumes from its last seq.
            server.metrics.slowConsumerCloses += 1
            queue.dropUnsent()
            server.loop.logger.info("closing slow consumer", metadata: ["connection": "\(id)", "queued": "\(queue.byteCount)"])
            close(code: 1008, reason: "outbound queue over limit; resume with since")
            return false
        }
        if let tls {
            if let error = chunk.withUnsafeBytes({ tls.writePlaintext($0) }) {
                server.loop.logger.debug("TLS write failed", metadata: ["connection": "\(id)", "error": "\(error)"])
                abort()
                return false
            }
        } else {
            queue.append(chunk)
        }
        scheduleFlush()
        return true
    }

    private func scheduleFlush() {
        if !pendingFlush {
            pendingFlush = true
            server.needsFlush(self)
        }
    }

    /// Writes queued bytes (called once per tick from the server's before-sleep hook, and on EPOLLOUT).
    func flush() {
        pendingFlush = false
        guard !isClosed else { return }
        if let tls, tls.hasPendingCiphertext {
            var scratch = server.takePlaintextScratch()
            tls.drainCiphertext(into: &scratch)
            queue.append(SharedBytes(scratch))
            server.returnPlaintextScratch(scratch)
        }
        let before = queue.byteCount
        let drained: Bool
        do {
            drained = try queue.flush(fd: fd, vectors: server.vectors)
        } catch {
            abort()
            return
        }
        server.metrics.bytesOut += before - queue.byteCount
        if drained {
            if writeArmed {
                writeArmed = false
                if let registration { server.loop.setInterest(registration, .read) }
            }
            if closeWhenDrained { finishClose() }
        } else if !writeArmed {
            // Arm EPOLLOUT only after a short write; disarm when drained (redis handleClientsWithPendingWrites).
            writeArmed = true
            if let registration { server.loop.setInterest(registration, [.read, .write]) }
        }
    }

    /// Closes once everything queued is written (with close_notify on TLS).
    func closeAfterFlush() {
        guard !isClosed else { return }
        if !closeWhenDrained {
            closeWhenDrained = true
            if closingSince == 0 { closingSince = server.loop.now }
            tls?.shutdown()
        }
        scheduleFlush()
    }

    private func finishClose() {
        guard !isClosed else { return }
        // Half-close first so the peer reads everything before seeing EOF.
        _ = shutdown(fd, Int32(SHUT_WR))
        abort()
    }

    /// Closes the socket now, dropping anything unwritten.
    public func abort() {
        guard !isClosed else { return }
        isClosed = true
        queue.removeAll()
        if let registration { server.loop.unregister(registration) }
        registration = nil
        closeFD(fd)
        tls?.close()
        tls = nil
        server.connectionClosed(self)
    }

    // MARK: timers

    /// Called about once a second: header-read, idle, ping and close timeouts.
    func sweep(now: UInt64) {
        guard !isClosed else { return }
        let config = server.configuration
        if closingSince != 0 {
            if now - closingSince > UInt64(config.closeTimeoutMilliseconds) * 1_000_000 { abort() }
            return
        }
        let idle = now - lastActivity
        if ws != nil {
            if idle > UInt64(config.websocketIdleTimeoutMilliseconds) * 1_000_000 {
                close(code: 1001, reason: "idle timeout")
            } else if idle > UInt64(config.pingIntervalMilliseconds) * 1_000_000 && pingSentAt == 0 {
                pingSentAt = now
                enqueue(SharedBytes(WebSocketFrame.encode(.ping, payload: [], fin: true, maskingKey: nil)), bypassLimit: true)
            }
        } else if requestStartedAt != 0 {
            if now - requestStartedAt > UInt64(config.headerTimeoutMilliseconds) * 1_000_000 && !awaitingResponse {
                server.metrics.httpErrors += 1
                respondingKeepAlive = false
                awaitingResponse = true
                respond(HTTPResponse.text(408, "request timeout\n"))
            }
        } else if !awaitingResponse && idle > UInt64(config.httpIdleTimeoutMilliseconds) * 1_000_000 {
            closeAfterFlush()
        }
    }

    /// Graceful shutdown: WebSockets get 1001 (RFC 6455 §7.4.1 "going away"); idle HTTP connections close.
    func beginShutdown() {
        if ws != nil {
            close(code: 1001, reason: "server shutting down")
        } else if !awaitingResponse {
            closeAfterFlush()
        }
    }
}
