// WebSocketClient: one client connection on the project's own loop — TCP (+ TLS engine), the RFC 6455
// client handshake, and the WebSocket codec in the client role.
public import EventLoop
import Glibc
public import TLS
public import WebSocket

/// Where a client connects: `http(s)://HOST:PORT` or `ws(s)://HOST:PORT` (a path is ignored).
public struct ClientEndpoint: Sendable, Equatable {
    public var host: String
    public var port: UInt16
    public var secure: Bool

    public init(host: String, port: UInt16, secure: Bool) {
        self.host = host
        self.port = port
        self.secure = secure
    }

    public init?(url: String) {
        let schemes: [(String, Bool, UInt16)] = [("http://", false, 80), ("ws://", false, 80), ("https://", true, 443), ("wss://", true, 443)]
        guard let (prefix, secure, defaultPort) = schemes.first(where: { url.hasPrefix($0.0) }) else { return nil }
        var rest = String(url.dropFirst(prefix.count))
        if let slash = rest.firstIndex(of: "/") { rest = String(rest[..<slash]) }
        self.secure = secure
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {  // [IPv6]:port
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            guard after.isEmpty || after.hasPrefix(":") else { return nil }
            guard let port = after.isEmpty ? defaultPort : UInt16(after.dropFirst()) else { return nil }
            self.port = port
        } else if let colon = rest.lastIndex(of: ":") {
            guard let port = UInt16(rest[rest.index(after: colon)...]) else { return nil }
            host = String(rest[..<colon])
            self.port = port
        } else {
            host = rest
            port = defaultPort
        }
        guard !host.isEmpty else { return nil }
    }

    /// The first address of `host` (numeric addresses pass through). Resolution blocks: clients resolve once
    /// per connection attempt, before the socket exists; a server must not call this on its loop.
    /// IPv4 first (a server listening on 127.0.0.1 is reached as "localhost" even where ::1 is listed first).
    func resolve() -> SocketAddressSpec? {
        resolve(family: AF_INET) ?? resolve(family: AF_INET6)
    }

    private func resolve(family: Int32) -> SocketAddressSpec? {
        var hints = addrinfo()
        hints.ai_family = family
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let info = result else { return nil }
        defer { freeaddrinfo(result) }
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(info.pointee.ai_addr, info.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0
        else { return nil }
        let numeric = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return SocketAddressSpec(host: numeric, port: port)
    }
}

/// Why a client connection ended.
public struct ClientClosed: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server's close code when it closed the WebSocket; nil for network, TLS or handshake failures.
    public var code: UInt16?
    public var description: String

    public init(code: UInt16?, description: String) {
        self.code = code
        self.description = description
    }
}

/// A WebSocket client connection driven by an `EventLoop`: connect, handshake, then text messages in and out.
/// Loop-bound (not Sendable); every callback runs on the loop thread. `onClose` is called exactly once.
public final class WebSocketClient: IOHandler {
    public var onOpen: (() -> Void)?
    public var onText: ((String) -> Void)?
    public var onClose: ((ClientClosed) -> Void)?

    private enum State {
        case idle, connecting, tlsHandshake, upgrading, open, closed
    }

    private let loop: EventLoop
    private let endpoint: ClientEndpoint
    private let tlsContext: TLSContext?
    private let path: String
    private let headers: [(String, String)]
    private let subprotocols: [String]
    private var state = State.idle
    private var fd: Int32 = -1
    private var registration: Registration?
    private var tls: TLSEngine?
    private var codec: WebSocketConnection
    private var key = ""
    private var responseHead: [UInt8] = []
    private var outbound: [UInt8] = []
    private var readBuffer = [UInt8](repeating: 0, count: 64 << 10)
    private var connectTimer: TimerID?

    public init(
        loop: EventLoop, endpoint: ClientEndpoint, tls: TLSContext?, path: String = "/ws", headers: [(String, String)] = [],
        subprotocols: [String] = [], limits: WebSocketLimits = WebSocketLimits(maxFrameSize: 16 << 20, maxMessageSize: 16 << 20)
    ) {
        self.loop = loop
        self.endpoint = endpoint
        self.tlsContext = tls
        self.path = path
        self.headers = headers
        self.subprotocols = subprotocols
        self.codec = WebSocketConnection(role: .client, limits: limits)
    }

    /// Starts connecting; gives up after `timeoutSeconds` without an open WebSocket.
    public func connect(timeoutSeconds: UInt64 = 20) {
        guard case .idle = state else { return }
        guard let address = endpoint.resolve() else { return fail("cannot resolve \(endpoint.host)") }
        do {
            fd = try Socket.connect(address)
            registration = try loop.register(fd: fd, interest: [.read, .write], handler: self)
        } catch {
            return fail("cannot connect to \(endpoint.host):\(endpoint.port): \(error)")
        }
        state = .connecting
        connectTimer = loop.schedule(afterNanoseconds: timeoutSeconds * 1_000_000_000) { [weak self] in
            guard let self, self.state != .open, self.state != .closed else { return }
            self.fail("no WebSocket from \(self.endpoint.host):\(self.endpoint.port) within \(timeoutSeconds) s")
        }
    }

    /// Sends one text message (ignored unless open).
    public func send(text: [UInt8]) {
        guard case .open = state else { return }
        writeApplication(codec.frame(.text, payload: text))
    }

    /// Closes with 1000 and ends the connection.
    public func close() {
        guard state != .closed else { return }
        if case .open = state { writeApplication(codec.frame(.close, payload: [0x03, 0xe8])) }
        finish(ClientClosed(code: nil, description: "closed by the client"))
    }

    // MARK: IOHandler

    public func ioReady(_ events: IOEvents) {
        if state == .connecting, events.contains(.writable) || events.contains(.hangup) {
            let error = Socket.pendingError(fd)
            guard error == 0 else { return fail("cannot connect to \(endpoint.host):\(endpoint.port) (errno \(error))") }
            connected()
        }
        if events.contains(.readable) || events.contains(.hangup) { readAvailable() }
        if events.contains(.writable) && state != .closed { flush() }
    }

    // MARK: internals

    private func connected() {
        if let tlsContext {
            do {
                tls = try TLSEngine(context: tlsContext, serverName: endpoint.host)
            } catch {
                return fail("TLS: \(error)")
            }
            state = .tlsHandshake
            drainTLS()
            flush()
        } else {
            sendUpgrade()
        }
    }

    private func sendUpgrade() {
        state = .upgrading
        key = WebSocketHandshake.randomKey()
        let hostHeader = endpoint.host.contains(":") ? "[\(endpoint.host)]:\(endpoint.port)" : "\(endpoint.host):\(endpoint.port)"
        writeApplication(WebSocketHandshake.clientRequest(host: hostHeader, path: path, key: key, subprotocols: subprotocols, extraHeaders: headers))
    }

    private func readAvailable() {
        while state != .closed {
            let result: Result<Int, SystemError> = readBuffer.withUnsafeMutableBytes { buffer in
                do throws(SystemError) {
                    switch try Socket.read(fd, into: buffer) {
                    case .processed(let n): return .success(n)
                    case .wouldBlock: return .success(-1)
                    }
                } catch {
                    return .failure(error)
                }
            }
            switch result {
            case .failure(let error): return fail("read failed: \(error)")
            case .success(-1): return
            case .success(0): return fail(state == .open ? "the server closed the connection" : "connection closed during the handshake")
            case .success(let n): received(Array(readBuffer[0..<n]))
            }
        }
    }

    private func received(_ bytes: [UInt8]) {
        guard let tls else { return plaintext(bytes) }
        bytes.withUnsafeBytes { tls.feedCiphertext($0) }
        var plain: [UInt8] = []
        let result = tls.readPlaintext(into: &plain)
        drainTLS()
        if state == .tlsHandshake, tls.isHandshakeComplete { sendUpgrade() }
        if !plain.isEmpty { plaintext(plain) }
        switch result {
        case .ok: break
        case .peerClosed: fail("TLS closed by the server")
        case .failed(let error): fail("TLS: \(error)")
        }
        flush()
    }

    private func plaintext(_ bytes: [UInt8]) {
        switch state {
        case .upgrading:
            responseHead += bytes
            guard let end = Self.headEnd(responseHead) else {
                if responseHead.count > 64 << 10 { fail("handshake response too large") }
                return
            }
            let (status, fields) = Self.parseHead(Array(responseHead[..<end]))
            let rest = Array(responseHead[(end + 4)...])
            responseHead = []
            if case .failure(let rejected) = WebSocketHandshake.validateResponse(status: status, headers: fields, key: key, offeredSubprotocols: subprotocols) {
                return fail("handshake refused: \(rejected.reason)")
            }
            state = .open
            if let connectTimer { loop.cancel(connectTimer) }
            onOpen?()
            if !rest.isEmpty { frames(rest) }
        case .open:
            frames(bytes)
        case .idle, .connecting, .tlsHandshake, .closed:
            break
        }
    }

    private func frames(_ bytes: [UInt8]) {
        var actions: [WebSocketAction] = []
        codec.receive(bytes, into: &actions)
        for action in actions where state == .open {
            switch action {
            case .message(.text, let payload): onText?(String(decoding: payload, as: UTF8.self))
            case .message, .messageInInput, .pong: continue  // receive(_:into:) never reports in-place messages
            case .send(let frame): writeApplication(frame)
            case .close:
                let code = codec.peerCloseCode
                finish(ClientClosed(code: code, description: "the server closed the session (\(code.map(String.init) ?? "no code"))"))
            }
        }
    }

    private func writeApplication(_ bytes: [UInt8]) {
        if let tls {
            if let error = bytes.withUnsafeBytes({ tls.writePlaintext($0) }) { return fail("TLS: \(error)") }
            drainTLS()
        } else {
            outbound += bytes
        }
        flush()
    }

    private func drainTLS() {
        tls?.drainCiphertext(into: &outbound)
    }

    private func flush() {
        while !outbound.isEmpty, fd >= 0 {
            let n = outbound.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                outbound.removeFirst(n)
            } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ENOTCONN) {
                break
            } else {
                return fail("send failed (errno \(errno))")
            }
        }
        if let registration, state != .connecting { loop.setInterest(registration, outbound.isEmpty ? .read : [.read, .write]) }
    }

    private func fail(_ description: String) {
        finish(ClientClosed(code: nil, description: description))
    }

    private func finish(_ reason: ClientClosed) {
        guard state != .closed else { return }
        state = .closed
        if let connectTimer { loop.cancel(connectTimer) }
        if fd >= 0 { flush() }
        if let registration { loop.unregister(registration) }
        registration = nil
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
        tls?.close()
        let callback = onClose
        onOpen = nil
        onText = nil
        onClose = nil
        callback?(reason)
    }

    static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        return nil
    }

    static func parseHead(_ bytes: [UInt8]) -> (status: Int, headers: [(name: String, value: String)]) {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusParts = lines.first?.split(separator: " ") ?? []
        let status = statusParts.count > 1 ? Int(statusParts[1]) ?? 0 : 0
        let headers = lines.dropFirst().compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let value = line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
            return (String(line[..<colon]), String(value))
        }
        return (status, headers)
    }
}
