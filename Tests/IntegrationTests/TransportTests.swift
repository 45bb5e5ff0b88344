// TransportTests: the HTTP/1.1 + RFC 6455 server over real loopback sockets (plain and TLS).
import EventLoop
import Foundation
import Glibc
import HTTP1
import Server
import TLS
import TestSupport
import Testing
import WebSocket

/// Starts an echo server on its own loop thread; returns the thread and port.
func startEchoServer(tls: Bool = false, configure: @escaping @Sendable (inout ServerConfiguration) -> Void = { _ in }) throws -> (LoopThread, UInt16) {
    let (thread, started) = try startEchoServerWithHandle(tls: tls, configure: configure)
    return (thread, started.port)
}

/// Like `startEchoServer`, also returning the server (usable on the loop thread only).
func startEchoServerWithHandle(tls: Bool = false, configure: @escaping @Sendable (inout ServerConfiguration) -> Void = { _ in }) throws -> (LoopThread, (port: UInt16, server: LoopBound<Server>)) {
    try startServer(tls: tls, configure: configure) { _ in
        let echo = EchoHandler(subprotocols: ["medic.v1"])
        return (echo, echo)
    }
}

/// Starts a server with the handlers `makeHandlers` returns (given the server's loop) on its own loop
/// thread; returns the thread, the port and the server (usable on the loop thread only).
func startServer(
    tls: Bool = false, configure: @escaping @Sendable (inout ServerConfiguration) -> Void = { _ in },
    makeHandlers: @escaping @Sendable (EventLoop) -> (any HTTPHandler, any WebSocketHandler)
) throws -> (LoopThread, (port: UInt16, server: LoopBound<Server>)) {
    let paths = tls ? try TestCertificates.localhost() : nil
    return try LoopThread.start { loop in
        var configuration = ServerConfiguration()
        configure(&configuration)
        let (http, websocket) = makeHandlers(loop)
        let server = Server(loop: loop, configuration: configuration, http: http, websocket: websocket)
        let context = try paths.map { try TLSContext.server(certificatePath: $0.certificatePath, keyPath: $0.keyPath) }
        let port = try server.listen(SocketAddressSpec(host: "127.0.0.1", port: 0), tls: context)
        return (port, LoopBound(server, loop: loop))
    }
}

@Suite("Transport over loopback")
struct TransportTests {
    @Test func healthzAndPipelinedKeepAlive() throws {
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port)
        let one = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        try client.write(Array((one + one + one).utf8))
        for _ in 0..<3 {
            let (head, body) = try client.readHTTPResponse()
            #expect(head.hasPrefix("HTTP/1.1 200"))
            #expect(String(decoding: body, as: UTF8.self) == "ok\n")
        }
    }

    /// Requests that break one limit each, by name (the name keeps test output short).
    static let badRequests: [String: (request: String, status: String)] = [
        "version 2.0": ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", "505"),
        "9000-byte target": ("GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: x\r\n\r\n", "414"),
        "17000-byte header": ("GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "b", count: 17000))\r\n\r\n", "431"),
        "2 MB body": ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", "413"),
        "garbage": ("GARBAGE\r\n\r\n", "400"),
    ]

    @Test(arguments: ["version 2.0", "9000-byte target", "17000-byte header", "2 MB body", "garbage"])
    func limitsAnsweredWithTheRightStatus(name: String) throws {
        let (request, status) = Self.badRequests[name]!
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port)
        try client.write(Array(request.utf8))
        let response = String(decoding: try client.readToEOF(), as: UTF8.self)
        #expect(response.hasPrefix("HTTP/1.1 \(status)"), "\(response.prefix(60))")
    }

    @Test func clientThatNeverFinishesItsHeadersIsCutOff() throws {
        let (thread, port) = try startEchoServer { $0.headerTimeoutMilliseconds = 200 }
        defer { thread.stop() }
        let client = try TestClient(port: port)
        try client.write(Array("GET / HTTP/1.1\r\nHost: x\r\n".utf8))
        let response = String(decoding: try client.readToEOF(), as: UTF8.self)
        #expect(response.hasPrefix("HTTP/1.1 408"))
    }

    @Test func handshakeAcceptsAndNegotiatesSubprotocol() throws {
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port)
        let head = try client.upgrade(subprotocols: ["other", "medic.v1"])
        // RFC 6455 §1.3's sample key and accept value.
        #expect(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
        #expect(head.contains("Sec-WebSocket-Protocol: medic.v1"))
    }

    @Test func wrongVersionGets426WithTheSupportedVersion() throws {
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port)
        let request = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
        try client.write(Array(request.utf8))
        let response = String(decoding: try client.readToEOF(), as: UTF8.self)
        #expect(response.hasPrefix("HTTP/1.1 426"))
        #expect(response.contains("Sec-WebSocket-Version: 13"))
    }

    @Test func echoesTextBinaryAndA64BitLengthFrame() throws {
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port)
        try client.upgrade()
        try client.sendText("héllo €𝄞")
        #expect(try client.readMessage() == TestFrame(fin: true, opcode: 1, payload: Array("héllo €𝄞".utf8)))
        let big = (0..<70_000).map { UInt8($0 & 0xFF) }
        try client.sendFrame(opcode: 2, payload: big)
        let echoed = try client.readMessage()
        #expect(echoed.opcode == 2)
        #expect(echoed.payload == big)
    }

    @Test func fragmentedMessageWithInterleavedPingAndSplitCharacter() throws {
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port)
        try client.upgrade()
        let euro: [UInt8] = [0xE2, 0x82, 0xAC]
        try client.sendFrame(opcode: 1, payload: Array("a".utf8) + euro[0..<1], fin: false)
        try client.sendFrame(opcode: 9, payload: Array("ping!".utf8))
        try client.sendFrame(opcode: 0, payload: Array(euro[1...]) + Array("b".utf8), fin: true)
        let pong = try client.readFrame()
        #expect(pong.opcode == 10)
        #expect(pong.text == "ping!")
        let message = try client.readFrame()
        #expect(message.text == "a€b")
    }

    @Test func invalidUTF8InTheLastFragmentCloses1007() throws {
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port)
        try client.upgrade()
        try client.sendFrame(opcode: 1, payload: Array("ok".utf8), fin: false)
        try client.sendFrame(opcode: 0, payload: [0xC3, 0x28], fin: true)
        let close = try client.readFrame()
        #expect(close.opcode == 8)
        #expect(close.closeCode == 1007)
        #expect(client.waitForEOF())
    }

    /// Autobahn 3.2/4.1.3/5.15-style: valid messages followed, in the same write, by a protocol error (or a Close)
    /// are echoed before the server's Close (RFC 6455 §7.1.7 fails the connection; earlier output still goes out).
    @Test(arguments: [
        ("reserved opcode", TestClient.frame(opcode: 3, payload: [], fin: true, masked: true, rsv: 0), UInt16(1002)),
        ("RSV bit", TestClient.frame(opcode: 1, payload: Array("z".utf8), fin: true, masked: true, rsv: 4), UInt16(1002)),
        ("clean Close", TestClient.frame(opcode: 8, payload: [0x03, 0xE8], fin: true, masked: true, rsv: 0), UInt16(1000)),
    ])
    func messagesBeforeAFailureInTheSameReadAreAnsweredFirst(_ what: String, _ last: [UInt8], _ code: UInt16) throws {
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port)
        try client.upgrade()
        let first = TestClient.frame(opcode: 1, payload: Array("one".utf8), fin: true, masked: true, rsv: 0)
        let second = TestClient.frame(opcode: 2, payload: [1, 2, 3], fin: true, masked: true, rsv: 0)
        try client.write(first + second + last)
        let echo1 = try client.readFrame()
        #expect(echo1.opcode == 1 && echo1.payload == Array("one".utf8), "\(what): the first echo was lost")
        let echo2 = try client.readFrame()
        #expect(echo2.opcode == 2 && echo2.payload == [1, 2, 3], "\(what): the second echo was lost")
        let close = try client.readFrame()
        #expect(close.opcode == 8 && close.closeCode == code, "\(what)")
        #expect(client.waitForEOF())
    }

    @Test func unmaskedClientFrameCloses1002() throws {
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port)
        try client.upgrade()
        try client.sendFrame(opcode: 1, payload: Array("x".utf8), masked: false)
        let close = try client.readFrame()
        #expect(close.closeCode == 1002)
    }

    @Test func closeInTheMiddleOfAFragmentedMessageIsAnsweredCleanly() throws {
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port)
        try client.upgrade()
        try client.sendFrame(opcode: 1, payload: Array("part".utf8), fin: false)
        try client.sendClose(code: 1000)
        let close = try client.readFrame()
        #expect(close.opcode == 8)
        #expect(close.closeCode == 1000)
        #expect(client.waitForEOF())
    }

    @Test(arguments: [(999, true), (1000, true), (1001, false)])
    func messagesAtTheLimit(size: Int, fits: Bool) throws {
        let (thread, port) = try startEchoServer { $0.websocket = WebSocketLimits(maxFrameSize: 1000, maxMessageSize: 1000) }
        defer { thread.stop() }
        let client = try TestClient(port: port)
        try client.upgrade()
        let payload = [UInt8](repeating: 0x61, count: size)
        try client.sendFrame(opcode: 2, payload: payload)
        let frame = try client.readFrame()
        if fits {
            #expect(frame.opcode == 2 && frame.payload.count == size)
        } else {
            #expect(frame.opcode == 8 && frame.closeCode == 1009)
        }
    }

    @Test func serverPingsAnIdleSession() throws {
        let (thread, port) = try startEchoServer { $0.pingIntervalMilliseconds = 100 }
        defer { thread.stop() }
        let client = try TestClient(port: port)
        try client.upgrade()
        let frame = try client.readFrame()
        #expect(frame.opcode == 9)
    }

    /// Invariant 4 on the fan-out path: frames the server pushes (not replies to what the client sends, which
    /// pause reading instead) to a client that does not read pass the queue limit → 1008.
    @Test func slowConsumerIsClosedWith1008() throws {
        let (thread, started) = try startEchoServerWithHandle {
            $0.maxQueuedBytes = 256 << 10
            $0.closeTimeoutMilliseconds = 60_000
        }
        defer { thread.stop() }
        let client = try TestClient(port: started.port, timeoutSeconds: 20)
        try client.upgrade()
        let server = started.server
        thread.sync { _ in
            let frame = [UInt8](repeating: 0x42, count: 64 << 10).withUnsafeBytes { WebSocketFrame.encodeShared(.binary, payload: $0) }
            for connection in server.value.allConnections {
                for _ in 0..<64 where connection.send(frame: frame) {}
            }
        }
        var sawClose: UInt16?
        while sawClose == nil {
            let frame = try client.readFrame()
            if frame.opcode == 8 { sawClose = frame.closeCode }
        }
        #expect(sawClose == 1008)
    }

    /// Security issue item 4, WebSocket side: a client that sends and never reads its echoes. Before, every
    /// echo was queued until the connection passed its queue limit (1008); now the server stops reading while
    /// the connection's output is over the high-water mark, so the queue stays near it and nothing is lost.
    @Test(arguments: [false, true])
    func echoFloodThatIsNeverReadPausesReadingInsteadOfQueueing(tls: Bool) throws {
        let (thread, started) = try startEchoServerWithHandle(tls: tls) {
            $0.maxQueuedBytes = 4 << 20
            $0.closeTimeoutMilliseconds = 60_000
        }
        defer { thread.stop() }
        let context = try tls ? TLSContext.client(trustedCAPath: TestCertificates.localhost().certificatePath, verifyPeer: true) : nil
        let client = try TestClient(port: started.port, tls: context, timeoutSeconds: 20)
        try client.upgrade()
        // Sends block once the server stops reading: give up after 1 s without progress (bounded: 32 MiB, 20 s).
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(client.fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let chunk = [UInt8](repeating: 0x42, count: 64 << 10)
        var sentFrames = 0
        let deadline = Date().addingTimeInterval(20)
        while sentFrames < 512 && Date() < deadline {
            do { try client.sendFrame(opcode: 2, payload: chunk) } catch { break }
            sentFrames += 1
        }
        Thread.sleep(forTimeInterval: 0.5)
        let server = started.server
        let queued = thread.sync { _ in server.value.allConnections.map(\.queuedBytes).max() ?? 0 }
        // High-water mark (1 MiB) plus what one read (256 KiB) can add.
        #expect(queued <= (1 << 20) + (512 << 10), "queued \(queued) bytes after \(sentFrames) frames")
        #expect(sentFrames >= 16, "only \(sentFrames) frames went out")
        // Reading resumes as the client drains: every complete frame sent is echoed, and nothing closes.
        for index in 0..<sentFrames {
            let frame = try client.readFrame()
            #expect(frame.opcode == 2 && frame.payload.count == chunk.count, "frame \(index): opcode \(frame.opcode) code \(String(describing: frame.closeCode))")
            if frame.opcode != 2 { break }
        }
    }

    @Test func gracefulShutdownSends1001() throws {
        let (thread, started) = try startEchoServerWithHandle()
        defer { thread.stop() }
        var clients: [TestClient] = []
        for _ in 0..<3 {
            let client = try TestClient(port: started.port)
            try client.upgrade()
            clients.append(client)
        }
        thread.execute { _ in started.server.value.shutdown {} }
        for client in clients {
            let close = try client.readFrame()
            #expect(close.opcode == 8)
            #expect(close.closeCode == 1001)
            try client.sendClose(code: 1001)
            #expect(client.waitForEOF())
        }
        // New connections are refused once shutdown began.
        #expect(throws: (any Error).self) { try TestClient(port: started.port).get("/healthz") }
    }

    @Test func thousandConcurrentConnectionsEcho() throws {
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        var clients: [TestClient] = []
        for _ in 0..<1000 {
            let client = try TestClient(port: port)
            try client.upgrade()
            clients.append(client)
        }
        for (i, client) in clients.enumerated() { try client.sendText("message \(i)") }
        for (i, client) in clients.enumerated() {
            #expect(try client.readMessage().text == "message \(i)")
        }
    }

    @Test func tlsEchoAndHTTPS() throws {
        let (thread, port) = try startEchoServer(tls: true)
        defer { thread.stop() }
        let paths = try TestCertificates.localhost()
        let context = try TLSContext.client(trustedCAPath: paths.certificatePath, verifyPeer: true)
        let web = try TestClient(port: port, tls: context)
        let (head, body) = try web.get("/healthz")
        #expect(head.hasPrefix("HTTP/1.1 200"))
        #expect(body == Array("ok\n".utf8))
        let client = try TestClient(port: port, tls: context)
        try client.upgrade()
        let payload = [UInt8](repeating: 0x5A, count: 200_000)
        try client.sendFrame(opcode: 2, payload: payload)
        #expect(try client.readMessage().payload == payload)
        try client.sendClose(code: 1000)
        #expect(try client.readFrame().closeCode == 1000)
    }
}
