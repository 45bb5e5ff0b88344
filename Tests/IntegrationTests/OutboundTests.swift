// OutboundTests: the write path — staged small frames mixed with shared frames, partial writes, and
// deferred fan-out flushes — over real loopback sockets.
import EventLoop
import Foundation
import HTTP1
import IOBytes
import Server
import TestSupport
import Testing
import WebSocket

/// A tiny fan-out app: "defer X" sends X to every other WebSocket as a deferred shared frame,
/// "direct X" sends it at once, "release" lets the deferred writes go.
private final class FanOutHandler: HTTPHandler, WebSocketHandler {
    weak var server: Server?

    func handle(_ request: HTTPRequest, on connection: Connection) { connection.respond(.text(404, "no\n")) }
    func upgradePolicy(for request: HTTPRequest) -> WebSocketUpgradePolicy? {
        WebSocketUpgradePolicy(subprotocols: [], requireSubprotocol: false, origins: .any)
    }
    func didOpen(_ connection: Connection, request: HTTPRequest, subprotocol: String?) {}
    func didClose(_ connection: Connection) {}

    func didReceive(_ connection: Connection, opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer) {
        guard let server else { return }
        let text = String(decoding: payload, as: UTF8.self)
        if text == "release" {
            server.releaseDeferredFlushes()
            return
        }
        let deferred = text.hasPrefix("defer ")
        let frame = Array(text.dropFirst(deferred ? 6 : 7).utf8).withUnsafeBytes { WebSocketFrame.encodeShared(.text, payload: $0) }
        for other in server.allConnections where other.id != connection.id && other.isWebSocket {
            other.send(frame: frame, deferred: deferred)
        }
    }
}

/// A server running `FanOutHandler` with the given deferral deadline.
private func startFanOutServer(deferMicroseconds: Int) throws -> (LoopThread, (port: UInt16, server: LoopBound<Server>)) {
    // The handler learns its server on the loop thread, before any connection can arrive.
    let (thread, started) = try startServer(configure: { $0.deferredFlushMicroseconds = deferMicroseconds }) { _ in
        let handler = FanOutHandler()
        return (handler, handler)
    }
    thread.sync { _ in
        let server = started.server.value
        (server.websocketHandler as? FanOutHandler)?.server = server
    }
    return (thread, started)
}

/// Sends the test's messages from a thread of its own (reads happen on the test's thread).
/// `@unchecked Sendable`: the writer only writes the socket and the reader only reads it (no TLS, so the
/// client's shared state is not touched by both); `error` is published through `done` before it is read.
private final class SendingThread: @unchecked Sendable {
    private let client: TestClient
    private let sizes: [Int]
    private let done = DispatchSemaphore(value: 0)
    private var error: (any Error)?

    init(client: TestClient, sizes: [Int]) {
        self.client = client
        self.sizes = sizes
    }

    func start() {
        Thread.detachNewThread { [self] in
            do {
                for (i, size) in sizes.enumerated() {
                    var payload = [UInt8](repeating: UInt8(i % 251), count: size)
                    if size >= 4 { payload.replaceSubrange(0..<4, with: withUnsafeBytes(of: UInt32(i).bigEndian, Array.init)) }
                    try client.sendFrame(opcode: 2, payload: payload)
                }
            } catch {
                self.error = error
            }
            done.signal()
        }
    }

    /// Waits for the writer; its error, if any.
    func join() -> (any Error)? {
        done.wait()
        return error
    }
}

@Suite("Outbound writes")
struct OutboundTests {
    /// Thousands of echoes of mixed sizes — staged copies (≤ 4 KiB) between shared frames (larger) —
    /// queued while the client does not read, so the server meets a full socket buffer, writes partly,
    /// arms EPOLLOUT and compacts its staging buffer; every message must come back whole and in order.
    ///
    /// The messages are sent from a thread of their own: since the server stops reading a connection whose
    /// output is over its high-water mark (SECURITY.md, attack 4), a client that sent ~10 MB without ever
    /// reading would block in `send` for good, however large the kernel's buffers happen to be. The reader
    /// starts late, so the server still meets the full socket first.
    @Test func mixedSizesSurviveAStalledReader() throws {
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port, timeoutSeconds: 20)
        try client.upgrade()
        var random = SystemRandomNumberGenerator()
        let sizes = (0..<6000).map { i in i % 97 == 0 ? Int.random(in: 4097...20000, using: &random) : Int.random(in: 0...3000, using: &random) }
        let writer = SendingThread(client: client, sizes: sizes)
        writer.start()
        usleep(300_000)  // the stall: nothing is read while the writer fills the server's output
        defer { #expect(writer.join() == nil, "sending failed") }
        for (i, size) in sizes.enumerated() {
            let message = try client.readMessage()
            #expect(message.opcode == 2)
            #expect(message.payload.count == size, "message \(i)")
            if size >= 4 {
                #expect(Array(message.payload[0..<4]) == withUnsafeBytes(of: UInt32(i).bigEndian, Array.init), "message \(i) out of order")
                #expect(message.payload[4...].allSatisfy { $0 == UInt8(i % 251) })
            }
        }
    }

    /// A deferred fan-out frame waits for the release (or a direct write to the same connection);
    /// without a release it still goes at the deadline.
    @Test func deferredFramesWaitForTheReleaseOrTheDeadline() throws {
        let (thread, started) = try startFanOutServer(deferMicroseconds: 1_500_000)
        defer { thread.stop() }
        let port = started.port
        let publisher = try TestClient(port: port)
        try publisher.upgrade()
        let subscriber = try TestClient(port: port)
        try subscriber.upgrade()

        try publisher.sendText("defer one")
        try publisher.sendText("defer two")
        #expect(!subscriber.hasBytes(withinMilliseconds: 300), "a deferred frame left before its release")
        try publisher.sendText("release")
        #expect(try subscriber.readMessage().text == "one")
        #expect(try subscriber.readMessage().text == "two")

        // A direct write takes the deferred frames queued before it along, in order.
        try publisher.sendText("defer three")
        try publisher.sendText("direct four")
        #expect(try subscriber.readMessage().text == "three")
        #expect(try subscriber.readMessage().text == "four")

        // No release: the deadline lets it go.
        try publisher.sendText("defer five")
        #expect(!subscriber.hasBytes(withinMilliseconds: 300), "a deferred frame left before its deadline")
        #expect(subscriber.hasBytes(withinMilliseconds: 10_000), "the deadline did not flush the deferred frame")
        #expect(try subscriber.readMessage().text == "five")
    }
}
