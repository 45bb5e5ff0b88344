// SocketTests: address parsing, and listen/accept/connect/read/writev over real loopback sockets (IPv4 and IPv6).
import EventLoop
import Glibc
import Testing

/// Whether this machine can bind a TCP socket to ::1 (containers often have no IPv6 loopback).
func hasIPv6Loopback() -> Bool {
    guard let listener = try? Socket.listen(SocketAddressSpec(host: "::1", port: 0)) else { return false }
    close(listener.fd)
    return true
}

/// The value of a `.processed` result, nil for `.wouldBlock`.
func processedValue<T>(_ result: IOResult<T>) -> T? {
    if case .processed(let value) = result { value } else { nil }
}

@Suite struct SocketAddressSpecTests {
    @Test(arguments: [
        ("127.0.0.1:80", "127.0.0.1", UInt16(80)),
        ("[::1]:8080", "::1", 8080),
        (":9000", "0.0.0.0", 9000),
        ("localhost:1", "localhost", 1),
        ("example.org:65535", "example.org", 65535),
        ("0.0.0.0:0", "0.0.0.0", 0),
    ])
    func parses(text: String, host: String, port: UInt16) throws {
        let spec = try #require(SocketAddressSpec(parsing: text))
        #expect(spec == SocketAddressSpec(host: host, port: port))
        // description round-trips (":9000" comes back with the host it means).
        #expect(SocketAddressSpec(parsing: spec.description) == spec)
    }

    @Test(arguments: [
        "", "80", "localhost", "localhost:", ":", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1:8o",
        "127.0.0.1: 80", "::1:80", "[::1]", "[::1]8080", "[::1]:", "[]:80", "[::1:80", "host:80:",
    ])
    func rejects(text: String) {
        #expect(SocketAddressSpec(parsing: text) == nil)
    }

    @Test func descriptionBracketsIPv6() {
        #expect(SocketAddressSpec(host: "::1", port: 80).description == "[::1]:80")
        #expect(SocketAddressSpec(host: "127.0.0.1", port: 80).description == "127.0.0.1:80")
    }
}

@Suite struct SocketTests {
    @Test func listenOnPortZeroReturnsTheRealPort() throws {
        let listener = try Socket.listen(SocketAddressSpec(host: "127.0.0.1", port: 0))
        defer { close(listener.fd) }
        #expect(listener.port != 0)
        #expect(try Socket.localPort(listener.fd) == listener.port)
        // localhost means 127.0.0.1.
        let local = try Socket.listen(SocketAddressSpec(host: "localhost", port: 0))
        defer { close(local.fd) }
        #expect(local.port != 0)
    }

    @Test func acceptWithNothingPendingWouldBlock() throws {
        let listener = try Socket.listen(SocketAddressSpec(host: "127.0.0.1", port: 0))
        defer { close(listener.fd) }
        let result = try Socket.accept(listener.fd)
        #expect(processedValue(result) == nil)
    }

    @Test func aPortInUseIsAnErrorNamingBind() throws {
        let first = try Socket.listen(SocketAddressSpec(host: "127.0.0.1", port: 0))
        defer { close(first.fd) }
        let error = #expect(throws: SystemError.self) {
            try Socket.listen(SocketAddressSpec(host: "127.0.0.1", port: first.port))
        }
        #expect(error?.errno == EADDRINUSE)
        #expect(error?.call.hasPrefix("bind") == true)
    }

    @Test func reusePortLetsTwoListenersShareAPort() throws {
        let first = try Socket.listen(SocketAddressSpec(host: "127.0.0.1", port: 0), reusePort: true)
        defer { close(first.fd) }
        let second = try Socket.listen(SocketAddressSpec(host: "127.0.0.1", port: first.port), reusePort: true)
        defer { close(second.fd) }
        #expect(second.port == first.port)
    }

    @Test func aHostThatIsNotAnAddressIsRefused() {
        let error = #expect(throws: SystemError.self) { try Socket.listen(SocketAddressSpec(host: "not-an-ip", port: 0)) }
        #expect(error?.errno == EINVAL)
    }

    @Test func connectAcceptAndExchangeBytesOverIPv4() throws {
        try exchange(host: "127.0.0.1")
    }

    @Test(.enabled(if: hasIPv6Loopback(), "no IPv6 loopback on this machine"))
    func connectAcceptAndExchangeBytesOverIPv6() throws {
        try exchange(host: "::1")
    }

    @Test func connectToAClosedPortReportsRefused() throws {
        // A port that was just free (a race with another process taking it is possible but unlikely).
        let probe = try Socket.listen(SocketAddressSpec(host: "127.0.0.1", port: 0))
        close(probe.fd)
        let loop = try EventLoop()
        let client = try Socket.connect(SocketAddressSpec(host: "127.0.0.1", port: probe.port))
        defer { close(client) }
        let handler = RecordingHandler()
        let registration = try loop.register(fd: client, interest: .write, handler: handler)
        #expect(runLoop(loop, seconds: 20) { !handler.events.isEmpty })
        #expect(Socket.pendingError(client) == ECONNREFUSED)
        loop.unregister(registration)
    }

    /// Listen, connect, accept when the listener is readable, then client → server with a gathered write,
    /// and EOF when the client closes.
    private func exchange(host: String) throws {
        let loop = try EventLoop()
        let listener = try Socket.listen(SocketAddressSpec(host: host, port: 0))
        defer { close(listener.fd) }
        var accepted: [Int32] = []
        let acceptor = RecordingHandler { _ in
            while case .processed(let fd)? = try? Socket.accept(listener.fd) { accepted.append(fd) }
        }
        let listening = try loop.register(fd: listener.fd, interest: .read, handler: acceptor)
        var client = try Socket.connect(SocketAddressSpec(host: host, port: listener.port))
        defer { if client >= 0 { close(client) } }
        let connected = RecordingHandler()
        let connecting = try loop.register(fd: client, interest: .write, handler: connected)

        #expect(runLoop(loop, seconds: 20) { !accepted.isEmpty && !connected.events.isEmpty })
        #expect(accepted.count == 1)
        #expect(Socket.pendingError(client) == 0)
        loop.unregister(connecting)
        loop.unregister(listening)
        let server = try #require(accepted.first)
        defer { close(server) }

        let vectors = IOVectors(capacity: 4)
        let parts: [[UInt8]] = [Array("GET ".utf8), Array("/ HTTP/1.1\r\n".utf8), Array("\r\n".utf8)]
        var written = 0
        try parts[0].withUnsafeBytes { p0 in
            try parts[1].withUnsafeBytes { p1 in
                try parts[2].withUnsafeBytes { p2 in
                    vectors.set(0, base: p0.baseAddress!, count: p0.count)
                    vectors.set(1, base: p1.baseAddress!, count: p1.count)
                    vectors.set(2, base: p2.baseAddress!, count: p2.count)
                    written = processedValue(try vectors.write(fd: client, count: 3)) ?? 0
                }
            }
        }
        let expected = parts.flatMap { $0 }
        #expect(written == expected.count)

        var received: [UInt8] = []
        var sawEOF = false
        let reader = RecordingHandler { _ in
            while true {
                guard let result = try? Socket.read(server, into: loop.readBuffer), let n = processedValue(result) else { return }
                if n == 0 {
                    sawEOF = true
                    return
                }
                received.append(contentsOf: loop.readBuffer[0..<n])
            }
        }
        let reading = try loop.register(fd: server, interest: .read, handler: reader)
        #expect(runLoop(loop, seconds: 20) { received.count >= expected.count })
        #expect(received == expected)
        close(client)
        client = -1
        #expect(runLoop(loop, seconds: 20) { sawEOF })
        loop.unregister(reading)
        acceptor.onReady = nil
        reader.onReady = nil
    }
}
