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
    // Stored properties are ordered widest first so the object packs tightly: 20,000+ of them stay
    // resident (Benchmarks/README: idle RSS per connection).

    /// Unique for the life of the process; its low 32 bits are the fd, so apps can index dense tables
    /// with it (`Int(UInt32(truncatingIfNeeded: id))`) instead of hashing. It is also the loop
    /// registration's id (`Registration(uniqueID:)`). Set once registered.
    public internal(set) var id: UInt64 = 0
    /// Application state attached to this session (the app's subscriber record, principal …).
    public var userData: AnyObject?

    // unowned(unsafe): the server owns every connection and outlives it (it aborts them all before it
    // goes), and a checked `unowned` load costs ~10 % of the fan-out and echo paths (perf, Benchmarks/README).
    unowned(unsafe) let server: Server
    private var tls: TLSEngine?
    /// The request parser until the upgrade (boxed: an upgraded connection carries 8 bytes for it, not ~200).
    private var http: HTTPParserBox?
    /// Pending output, lent by the server while non-empty (nil when idle).
    private var out: Outbound?
    /// Monotonic ns of the last inbound bytes.
    var lastActivity: UInt64
    private var closingSince: UInt64 = 0
    /// Monotonic ns of the first byte of an unfinished HTTP request while HTTP, of the unanswered ping
    /// once WebSocket (0 = none): the two never overlap, so they share the field.
    private var phaseStartedAt: UInt64 = 0
    private var ws: WebSocketConnection?
    /// permessage-deflate: 0 when not negotiated, else the server's LZ77 window bits (8–15) agreed in the
    /// handshake (RFC 7692 §7.1.2.1). One byte, in the padding after `ws` (91 bytes): the zlib state itself
    /// lives on the server, per loop.
    private var deflateWindowBits: UInt8 = 0
    let fd: Int32
    /// Whether `registration` is live with the loop.
    var isRegistered = false
    private var writeArmed = false
    /// `FlushState` bits: where this connection is listed for the next flush.
    var flushState: UInt8 = 0
    /// True once the socket is closed (the app may still hold the object until `didClose`).
    public private(set) var isClosed = false
    private var closeWhenDrained = false
    /// `ws.state == .open`, cached: reading a field through the optional struct copies it (three retains
    /// and releases per message on the send path, seen in perf).
    private var wsOpen = false
    private var awaitingResponse = false
    private var respondingToHead = false
    private var respondingKeepAlive = true
    private var processingHTTP = false
    /// Nothing is read while set (see `pauseReadingIfNeeded`).
    private var readPaused = false

    var registration: Registration? { isRegistered ? Registration(uniqueID: id) : nil }
    private var requestStartedAt: UInt64 {
        get { phaseStartedAt }
        set { phaseStartedAt = newValue }
    }
    private var pingSentAt: UInt64 {
        get { phaseStartedAt }
        set { phaseStartedAt = newValue }
    }

    init(server: Server, fd: Int32, tls: TLSEngine?, now: UInt64) {
        self.server = server
        self.fd = fd
        self.tls = tls
        self.lastActivity = now
        self.http = HTTPParserBox(HTTPRequestParser(limits: server.configuration.http))
    }

    /// True once upgraded to WebSocket.
    public var isWebSocket: Bool { ws != nil }
    /// Bytes waiting to be written, including ciphertext the TLS engine holds until the next flush.
    public var queuedBytes: Int { (out?.byteCount ?? 0) + (tls?.pendingOutputCount ?? 0) }
    /// False above the high-water mark: a fan-out may prefer to drop this subscriber early.
    public var isWritable: Bool { queuedBytes < server.configuration.highWaterMark }
    public var isTLS: Bool { tls != nil }
    /// Whether this WebSocket negotiated permessage-deflate (RFC 7692).
    public var perMessageDeflate: Bool { deflateWindowBits != 0 }
    /// Whether messages to this peer may be compressed: zlib cannot make a 256-byte window, so a peer that
    /// asked for `server_max_window_bits=8` gets every message uncompressed (see `DeflateParameters`).
    private var compressesOutbound: Bool { deflateWindowBits >= 9 }

    // MARK: reading

    public func ioReady(_ events: IOEvents) {
        if events.contains(.writable) { flush() }
        guard events.contains(.readable) || events.contains(.hangup), !isClosed else { return }
        if readPaused {
            // Paused, we ask for neither EPOLLIN nor EPOLLRDHUP: a hang-up now is EPOLLHUP/EPOLLERR, the peer
            // is gone and what is queued cannot be delivered.
            if events.contains(.hangup) { abort() }
            return
        }
        readAvailable()
    }

    private func readAvailable() {
        let buffer = server.loop.readBuffer
        // Bounded reads per wakeup keep one fast sender from starving the others (level-triggered: we come back).
        for _ in 0..<4 where !isClosed {
            if pauseReadingIfNeeded() { return }
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
            let bytes = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
            if tls != nil {
                receiveCiphertext(UnsafeRawBufferPointer(bytes))
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
            plaintext.withUnsafeMutableBytes { receivePlaintext($0) }
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

    /// `bytes` may be modified (WebSocket payloads are unmasked in place).
    private func receivePlaintext(_ bytes: UnsafeMutableRawBufferPointer) {
        if ws != nil {
            receiveWebSocket(bytes)
        } else if http != nil {
            if requestStartedAt == 0 && !awaitingResponse { requestStartedAt = server.loop.now }
            http!.parser.feed(UnsafeRawBufferPointer(bytes))
            processHTTP()
        }
    }

    private func peerClosed() {
        // A WebSocket peer that vanishes without a close frame: RFC 6455 §7.1.5 abnormal closure (1006, never on the wire).
        if closeWhenDrained && queuedBytes == 0 { finishClose() } else { abort() }
    }

    // MARK: HTTP

    private func processHTTP() {
        guard !processingHTTP else { return }
        processingHTTP = true
        defer { processingHTTP = false }
        while !isClosed, !closeWhenDrained, !awaitingResponse, http != nil {
            // Pipelined requests already buffered wait too: pausing the fd alone would not stop them.
            if queuedBytes >= server.configuration.highWaterMark {
                if !readPaused {
                    readPaused = true
                    updateInterest()
                }
                return
            }
            let request: HTTPRequest?
            do {
                request = try http!.parser.next()
            } catch {
                server.metrics.httpErrors += 1
                respondingKeepAlive = false
                awaitingResponse = true
                respond(HTTPResponse.text(error.status, error.message + "\n"))
                return
            }
            guard let request else {
                if !(http?.parser.hasPartialRequest ?? false) { requestStartedAt = 0 }
                return
            }
            server.metrics.httpRequests += 1
            requestStartedAt = (http?.parser.hasPartialRequest ?? false) ? server.loop.now : 0
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
        // Unreachable while reading pauses at the high-water mark (below the limit); kept as the hard stop.
        if queuedBytes >= server.configuration.maxQueuedBytes {
            abort()
            return
        }
        let bytes = response.encode(headOnly: respondingToHead, keepAlive: respondingKeepAlive, date: server.httpDate())
        bytes.withUnsafeBytes { enqueueCopy($0) }
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
            // RFC 7692 §5: accept the first acceptable permessage-deflate offer (a bad one declines only itself).
            let deflate = DeflateParameters.negotiate(
                offers: request.headers.values("Sec-WebSocket-Extensions"), configuration: server.configuration.deflate)
            if let deflate { headers.add("Sec-WebSocket-Extensions", deflate.responseHeader) }
            awaitingResponse = false
            HTTPResponse(status: 101, headers: headers).encode(keepAlive: true, date: nil).withUnsafeBytes { enqueueCopy($0) }
            var leftover = http?.parser.takeBufferedBytes() ?? []
            http = nil
            requestStartedAt = 0
            ws = WebSocketConnection(role: .server, limits: policy.restrictedUntilLifted ? server.restrictedWebSocketLimits : server.websocketLimits)
            if let deflate {
                ws!.enablePerMessageDeflate()
                deflateWindowBits = UInt8(deflate.serverMaxWindowBits)
            }
            wsOpen = true
            server.metrics.websocketsOpened += 1
            handler.didOpen(self, request: request, subprotocol: accepted.subprotocol)
            if !leftover.isEmpty && !isClosed {
                leftover.withUnsafeMutableBytes { receiveWebSocket($0) }
            }
        }
    }

    // MARK: WebSocket

    private func receiveWebSocket(_ bytes: UnsafeMutableRawBufferPointer) {
        var actions = server.takeActionScratch()
        defer { server.returnActionScratch(&actions) }
        ws!.receive(inPlace: bytes, inflater: deflateWindowBits != 0 ? server.inflater : nil, into: &actions)
        // Messages that came before a Close or a protocol error in this same read are still delivered and
        // their answers queued ahead of our Close: RFC 6455 §7.1.7 fails the connection, but what earlier valid
        // frames produced goes out first (then the Close, then TCP closes once flushed). `wsOpen` turns false
        // at our Close frame's place in the action list, not before the messages that preceded it.
        let openAfterwards = ws!.state == .open
        defer { if !isClosed { wsOpen = openAfterwards } }
        let handler = server.websocketHandler  // once per read, not per message
        for action in actions {
            if isClosed { return }
            switch action {
            case .messageInInput(let opcode, let range):
                // A whole message still in the read buffer, unmasked there: handed over without a copy.
                server.metrics.messagesIn += 1
                handler?.didReceive(self, opcode: opcode, payload: UnsafeRawBufferPointer(rebasing: bytes[range]))
            case .message(let opcode, let payload):
                server.metrics.messagesIn += 1
                payload.withUnsafeBytes { handler?.didReceive(self, opcode: opcode, payload: $0) }
            case .send(let frame):
                // A server's frames are unmasked with FIN set: 0x8A is a Pong, anything else a Close.
                if frame.first == 0x8A {
                    sendPong(frame)
                } else {
                    out?.owedPong = nil  // nothing follows a Close (RFC 6455 §5.5.1)
                    wsOpen = false
                    frame.withUnsafeBytes { enqueueCopy($0) }
                }
            case .pong:
                pingSentAt = 0
            case .close:
                wsOpen = false
                closeAfterFlush()
            }
        }
    }

    /// Answers a Ping (RFC 6455 §5.5.2) within the queue limit. §5.5.3: "If an endpoint receives a Ping frame
    /// and has not yet sent Pong frame(s) in response to previous Ping frame(s), the endpoint MAY elect to
    /// send a Pong frame for only the most recently processed Ping frame." So while a Pong is still queued,
    /// the new one is only remembered (replacing an older one) and queued when the queue empties: a Ping
    /// flood from a client that does not read costs a few Pongs, not one per Ping. The first
    /// `pongsBeforeCoalescing` Pings of a burst are each answered (Autobahn 2.10 sends 10 Pings in one write
    /// and expects 10 Pongs: not required by §5.5.3, but what peers expect of a server that keeps up).
    private func sendPong(_ frame: [UInt8]) {
        let out = outbound()
        if out.pongsQueued >= Self.pongsBeforeCoalescing {
            out.owedPong = frame
            return
        }
        guard admit(frame.count) else { return }
        out.pongsQueued += 1
        frame.withUnsafeBytes { enqueueCopy($0) }
    }

    /// Pongs queued at once before further ones coalesce into the latest (at most 32 × 127 bytes).
    static let pongsBeforeCoalescing: UInt8 = 32

    /// Lifts `ServerConfiguration.restrictedWebSocket` (see `WebSocketUpgradePolicy.restrictedUntilLifted`):
    /// the server's normal WebSocket limits apply from the next frame on.
    public func liftWebSocketRestriction() {
        guard ws != nil else { return }
        ws!.setLimits(server.websocketLimits)
    }

    /// Sends one text message (framed here, unmasked: server role).
    public func sendText(_ payload: [UInt8]) {
        payload.withUnsafeBytes { sendMessage(.text, payload: $0) }
    }

    /// Sends one binary message.
    public func sendBinary(_ payload: UnsafeRawBufferPointer) {
        sendMessage(.binary, payload: payload)
    }

    /// Sends one data message of this connection alone (an echo, a reply): framed straight into the
    /// outbound staging buffer, so small messages cost no allocation. Shared frames go through `send(frame:)`.
    public func sendMessage(_ opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer) {
        guard wsOpen, !isClosed, !closeWhenDrained else { return }
        if compressesOutbound && payload.count >= server.configuration.deflate.minimumSize,
            let deflated = server.deflater.compress(payload, windowBits: Int(deflateWindowBits)),
            deflated.count < payload.count
        {
            // RFC 7692 §6.1: the compressed payload, RSV1 on the (only) frame. Shorter or incompressible
            // messages go out plain below: §6 lets every message choose.
            deflated.withUnsafeBytes { sendFrame(opcode, payload: $0, compressed: true) }
            return
        }
        sendFrame(opcode, payload: payload, compressed: false)
    }

    /// Frames one message of this connection alone into the staging buffer (or a shared frame when large).
    private func sendFrame(_ opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, compressed: Bool) {
        let count = payload.count
        guard count <= Self.copyLimit, tls == nil else {
            send(frame: WebSocketFrame.encodeShared(opcode, payload: payload, compressed: compressed))
            return
        }
        let total = WebSocketFrame.headerSize(payloadCount: count, masked: false) + count
        guard admit(total) else { return }
        server.metrics.messagesOut += 1
        if out == nil { out = server.lendOutbound() }
        // The connection keeps `out` alive across the call: no retain/release per message (perf).
        Unmanaged.passUnretained(out!)._withUnsafeGuaranteedRef { out in
            out.appendCopy(count: total) { base in
                let header = WebSocketFrame.writeHeader(
                    base, opcode: opcode, fin: true, payloadCount: count, maskingKey: nil, compressed: compressed)
                if count > 0 { (base + header).copyMemory(from: payload.baseAddress!, byteCount: count) }
            }
        }
        scheduleFlush()
    }

    /// Messages up to this size are copied into the staging buffer; larger ones get their own shared frame.
    static let copyLimit = 4096

    /// Queues an already framed message (the fan-out path: one frame shared by every subscriber).
    /// `deferred` lets the server hold the write back briefly so frames of the next publications join
    /// it in one writev (see `Server.releaseDeferredFlushes`). Returns false when the connection was
    /// closed for exceeding its queue limit.
    @discardableResult
    public func send(frame: SharedBytes, deferred: Bool = false) -> Bool {
        guard wsOpen, !isClosed, !closeWhenDrained else { return false }
        server.metrics.messagesOut += 1
        return enqueue(frame, deferred: deferred)
    }

    /// Queues a message shared by many connections (the Hub's fan-out): its plain frame, or — when this
    /// connection negotiated permessage-deflate — its compressed frame, made once for all such subscribers
    /// (see `SharedMessage`). With deflate off this is `send(frame: message.plain)` plus one byte compare.
    @discardableResult
    public func send(message: SharedMessage, deferred: Bool = false) -> Bool {
        guard compressesOutbound else { return send(frame: message.plain, deferred: deferred) }
        let frame = message.frame(
            windowBits: Int(deflateWindowBits), deflater: server.deflater,
            minimumSize: server.configuration.deflate.minimumSize)
        return send(frame: frame, deferred: deferred)
    }

    /// Starts the closing handshake (RFC 6455 §7.1.2) with `code`; the TCP connection closes when the
    /// peer answers, or after the close timeout.
    public func close(code: UInt16, reason: String) {
        guard !isClosed, !closeWhenDrained else { return }
        if wsOpen {
            let frame = ws!.initiateClose(code: code, reason: reason)
            wsOpen = false
            out?.owedPong = nil  // nothing follows a Close (RFC 6455 §5.5.1)
            frame.withUnsafeBytes { enqueueCopy($0) }
            closingSince = server.loop.now
            // We keep reading until the peer's close arrives (its .close action) or the timeout in `sweep`.
        } else {
            closeAfterFlush()
        }
    }

    // MARK: writing

    private func outbound() -> Outbound {
        if let out { return out }
        let lent = server.lendOutbound()
        out = lent
        return lent
    }

    /// Invariant 4: a slow consumer hurts only itself. Over the queue limit, drop what is queued beyond the
    /// frame in flight (it would be replayed anyway) and close with 1008; the client resumes from its last seq.
    private func admit(_ count: Int) -> Bool {
        guard queuedBytes + count > server.configuration.maxQueuedBytes else { return true }
        server.metrics.slowConsumerCloses += 1
        out?.dropUnsent()
        server.loop.logger.info("closing slow consumer", metadata: ["connection": "\(id)", "queued": "\(queuedBytes)"])
        close(code: 1008, reason: "outbound queue over limit; resume with since")
        return false
    }

    /// Queues a shared frame, within the queue limit (through TLS when on).
    private func enqueue(_ chunk: SharedBytes, deferred: Bool) -> Bool {
        guard !isClosed else { return false }
        if !admit(chunk.count) { return false }
        if let tls {
            if let error = chunk.withUnsafeBytes({ tls.writePlaintext($0) }) {
                server.loop.logger.debug("TLS write failed", metadata: ["connection": "\(id)", "error": "\(error)"])
                abort()
                return false
            }
        } else {
            outbound().append(chunk)
        }
        if deferred { scheduleDeferredFlush() } else { scheduleFlush() }
        return true
    }

    /// Queues a copy of bytes for this connection alone — responses and control frames (through TLS when
    /// on). Callers bound them: a response per request read and a Pong per drained queue (both only while
    /// reading, i.e. below the high-water mark), a Close or keepalive Ping once.
    private func enqueueCopy(_ bytes: UnsafeRawBufferPointer) {
        guard !isClosed else { return }
        if let tls {
            if let error = tls.writePlaintext(bytes) {
                server.loop.logger.debug("TLS write failed", metadata: ["connection": "\(id)", "error": "\(error)"])
                abort()
                return
            }
        } else {
            outbound().appendCopy(bytes)
        }
        scheduleFlush()
    }

    private func scheduleFlush() {
        if flushState & FlushState.listed == 0 {
            flushState |= FlushState.listed
            server.needsFlush(self)
        }
    }

    private func scheduleDeferredFlush() {
        if flushState & (FlushState.listed | FlushState.deferred) == 0 {
            flushState |= FlushState.deferred
            server.needsDeferredFlush(self)
        }
    }

    /// Writes queued bytes (from the server's before-sleep hook, and on EPOLLOUT).
    func flush() {
        flushState = 0
        guard !isClosed else { return }
        if let tls, tls.hasPendingCiphertext {
            var scratch = server.takePlaintextScratch()
            tls.drainCiphertext(into: &scratch)
            scratch.withUnsafeBytes { outbound().appendCopy($0) }
            server.returnPlaintextScratch(scratch)
        }
        guard let out else {
            if closeWhenDrained { finishClose() }
            return
        }
        let before = out.byteCount
        var drained: Bool
        do {
            drained = try out.flush(fd: fd, vectors: server.vectors)
            if drained, let pong = out.owedPong {
                // The queue emptied with a Pong owed (see `sendPong`): it goes now.
                out.owedPong = nil
                out.pongsQueued = 1
                if let tls {
                    if pong.withUnsafeBytes({ tls.writePlaintext($0) }) != nil {
                        abort()
                        return
                    }
                    var scratch = server.takePlaintextScratch()
                    tls.drainCiphertext(into: &scratch)
                    scratch.withUnsafeBytes { out.appendCopy($0) }
                    server.returnPlaintextScratch(scratch)
                } else {
                    pong.withUnsafeBytes { out.appendCopy($0) }
                }
                drained = try out.flush(fd: fd, vectors: server.vectors)
            }
        } catch {
            abort()
            return
        }
        server.metrics.bytesOut += before - out.byteCount
        // A paused connection reads nothing, so `lastActivity` would stand still while its peer is in fact
        // reading what it asked for: that progress keeps it from counting as idle.
        if readPaused && out.byteCount != before { lastActivity = server.loop.now }
        if drained {
            self.out = nil
            server.recycle(out)
            if writeArmed {
                writeArmed = false
                updateInterest()
            }
            if closeWhenDrained { finishClose() }
        } else if !writeArmed {
            // Arm EPOLLOUT only after a short write; disarm when drained (redis handleClientsWithPendingWrites).
            writeArmed = true
            updateInterest()
        }
        if readPaused { resumeIfDrained() }
    }

    // MARK: backpressure

    /// Security issue: a client that pipelines requests (or sends pings or messages) and never reads made us
    /// queue answers without bound. While the output (`queuedBytes`) is at or over the high-water mark this
    /// connection reads and parses nothing — EPOLLIN is dropped and requests already buffered wait (see
    /// `processHTTP`) — until it drains below the low-water mark (`resumeIfDrained`). Likewise while a
    /// response is pending and bytes of further requests are already buffered: reading on would only grow
    /// the parser's buffer (64 MiB of requests behind an asynchronous response grew the server by 69 MB).
    /// Returns true while paused.
    private func pauseReadingIfNeeded() -> Bool {
        if readPaused { return true }
        guard queuedBytes >= server.configuration.highWaterMark || requestsWaitBehindAResponse else { return false }
        readPaused = true
        updateInterest()
        return true
    }

    private var requestsWaitBehindAResponse: Bool {
        awaitingResponse && http?.parser.hasPartialRequest == true
    }

    private func resumeIfDrained() {
        guard readPaused, !isClosed, queuedBytes < server.configuration.lowWaterMark, !requestsWaitBehindAResponse else { return }
        readPaused = false
        updateInterest()
        // Requests read before the pause are still in the parser, and no event will report them.
        if http != nil && !awaitingResponse { processHTTP() }
    }

    /// EPOLLIN unless paused, EPOLLOUT while a short write waits.
    private func updateInterest() {
        guard let registration else { return }
        var interest: Interest = readPaused ? .none : .read
        if writeArmed { interest.insert(.write) }
        server.loop.setInterest(registration, interest)
    }

    /// Closes once everything queued is written (with close_notify on TLS).
    func closeAfterFlush() {
        guard !isClosed else { return }
        out?.owedPong = nil
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
        if let out {
            self.out = nil
            server.recycle(out)  // resets it
        }
        if let registration { server.loop.unregister(registration) }
        isRegistered = false
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
        if readPaused && ws == nil && !awaitingResponse {
            // Paused, `lastActivity` moves only when the client reads (see `flush`): the idle limit bounds how
            // long it may keep us paused without reading what it asked for (no 408: its requests wait on us).
            // A paused WebSocket keeps the rules below (idle close, the handler's own timeouts).
            if idle > UInt64(config.httpIdleTimeoutMilliseconds) * 1_000_000 { abort() }
            return
        }
        if ws != nil {
            if idle > UInt64(config.websocketIdleTimeoutMilliseconds) * 1_000_000 {
                close(code: 1001, reason: "idle timeout")
            } else if idle > UInt64(config.pingIntervalMilliseconds) * 1_000_000 && pingSentAt == 0 {
                pingSentAt = now
                WebSocketFrame.encode(.ping, payload: [], fin: true, maskingKey: nil).withUnsafeBytes { enqueueCopy($0) }
            }
            if !isClosed && closingSince == 0 { server.websocketHandler?.sweep(self, now: now) }
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

/// The HTTP request parser on the heap, so that its ~200 bytes are freed at the WebSocket upgrade.
final class HTTPParserBox {
    var parser: HTTPRequestParser
    init(_ parser: HTTPRequestParser) { self.parser = parser }
}
