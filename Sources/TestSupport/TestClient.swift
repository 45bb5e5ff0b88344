// TestClient: a blocking loopback client (plain or TLS) for transport tests — raw HTTP and WebSocket frames.
import CSystem
import Foundation
import Glibc
public import TLS

/// A frame as read off the wire by the test client (its own minimal parser, independent of the server's codec).
public struct TestFrame: Sendable, Equatable {
    public var fin: Bool
    public var opcode: UInt8
    public var payload: [UInt8]
    /// RSV1: the frame's message is compressed (permessage-deflate, RFC 7692 §6).
    public var rsv1: Bool
    public init(fin: Bool, opcode: UInt8, payload: [UInt8], rsv1: Bool = false) {
        self.fin = fin
        self.opcode = opcode
        self.payload = payload
        self.rsv1 = rsv1
    }
    public var text: String { String(decoding: payload, as: UTF8.self) }
    /// For close frames: the status code (nil when the payload is empty).
    public var closeCode: UInt16? {
        payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil
    }
}

public struct TestClientError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A blocking client socket with a receive timeout; optionally TLS through `TLSEngine`.
public final class TestClient {
    public let fd: Int32
    private var tls: TLSEngine?
    private var inbox: [UInt8] = []
    private var inboxStart = 0
    /// Response head of the WebSocket handshake (status line + headers), if `upgrade` ran.
    public private(set) var handshakeResponse = ""

    /// Connects to 127.0.0.1:`port` with a receive timeout.
    public init(port: UInt16, host: String = "127.0.0.1", tls: TLSContext? = nil, timeoutSeconds: Int = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestClientError("socket failed") }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        inet_pton(AF_INET, host, &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            Glibc.close(fd)
            throw TestClientError("connect to \(port) failed: errno \(errno)")
        }
        if let tls {
            self.tls = try TLSEngine(context: tls, serverName: "localhost")
            try pumpTLS(untilHandshake: true)
        }
    }

    deinit { Glibc.close(fd) }

    // MARK: bytes

    /// Sends bytes (encrypted first under TLS).
    public func write(_ bytes: [UInt8]) throws {
        if let tls {
            if let error = bytes.withUnsafeBytes({ tls.writePlaintext($0) }) { throw error }
            var out: [UInt8] = []
            tls.drainCiphertext(into: &out)
            try writeRaw(out)
        } else {
            try writeRaw(bytes)
        }
    }

    private func writeRaw(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestClientError("send failed: errno \(errno)") }
            offset += n
        }
    }

    /// Reads at least one more chunk into the inbox; false on EOF.
    private func fill() throws -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TestClientError(errno == EAGAIN ? "receive timed out" : "recv failed: errno \(errno)")
            }
            if n == 0 { return false }
            if let tls {
                buffer.withUnsafeBytes { tls.feedCiphertext(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                var plain: [UInt8] = []
                let result = tls.readPlaintext(into: &plain)
                var out: [UInt8] = []
                tls.drainCiphertext(into: &out)
                if !out.isEmpty { try writeRaw(out) }
                inbox.append(contentsOf: plain)
                switch result {
                case .ok: if plain.isEmpty { continue }
                case .peerClosed: if plain.isEmpty { return false }
                case .failed(let error): throw error
                }
                return true
            }
            inbox.append(contentsOf: buffer[0..<n])
            return true
        }
    }

    private func pumpTLS(untilHandshake: Bool) throws {
        guard let tls else { return }
        var out: [UInt8] = []
        var plain: [UInt8] = []
        _ = tls.readPlaintext(into: &plain)
        tls.drainCiphertext(into: &out)
        try writeRaw(out)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !tls.isHandshakeComplete {
            let n = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw TestClientError("TLS handshake: connection closed (errno \(errno))") }
            buffer.withUnsafeBytes { tls.feedCiphertext(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            if case .failed(let error) = tls.readPlaintext(into: &plain) { throw error }
            out.removeAll()
            tls.drainCiphertext(into: &out)
            if !out.isEmpty { try writeRaw(out) }
        }
        inbox.append(contentsOf: plain)
    }

    private func take(_ count: Int) throws -> [UInt8] {
        while inbox.count - inboxStart < count {
            guard try fill() else { throw TestClientError("connection closed while reading") }
        }
        let out = Array(inbox[inboxStart..<inboxStart + count])
        inboxStart += count
        if inboxStart > 1 << 20 {
            inbox.removeFirst(inboxStart)
            inboxStart = 0
        }
        return out
    }

    /// Whether bytes arrive within `milliseconds` (true at once if some are already buffered).
    public func hasBytes(withinMilliseconds milliseconds: Int32) -> Bool {
        if inbox.count > inboxStart { return true }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, milliseconds) > 0
    }

    /// Reads until the peer closes; returns everything (for HTTP responses with Connection: close).
    public func readToEOF() throws -> [UInt8] {
        while try fill() {}
        let out = Array(inbox[inboxStart...])
        inboxStart = inbox.count
        return out
    }

    /// True when the peer closed the connection (EOF) before `timeoutSeconds`... (uses the socket timeout).
    public func waitForEOF() -> Bool {
        while true {
            do { if try !fill() { return true } } catch { return false }
        }
    }

    /// Reads one HTTP response head (through CRLFCRLF) plus a Content-Length body.
    public func readHTTPResponse() throws -> (head: String, body: [UInt8]) {
        var head: [UInt8] = []
        while true {
            head += try take(1)
            if head.count >= 4 && head.suffix(4) == [13, 10, 13, 10] { break }
        }
        let text = String(decoding: head, as: UTF8.self)
        var length = 0
        for line in text.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
            length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
        }
        let isHeadOnly = text.hasPrefix("HTTP/1.1 304") || text.hasPrefix("HTTP/1.1 204")
        return (text, isHeadOnly ? [] : try take(length))
    }

    /// Sends a GET and reads the response.
    public func get(_ path: String, headers: [String] = []) throws -> (head: String, body: [UInt8]) {
        let request = "GET \(path) HTTP/1.1\r\nHost: localhost\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n"
        try write(Array(request.utf8))
        return try readHTTPResponse()
    }

    // MARK: WebSocket

    /// Performs the opening handshake; returns the response head. Throws unless the status is 101 when `expect101`.
    @discardableResult
    public func upgrade(path: String = "/", headers: [String] = [], subprotocols: [String] = [], expect101: Bool = true) throws -> String {
        var request = "GET \(path) HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        if !subprotocols.isEmpty { request += "Sec-WebSocket-Protocol: \(subprotocols.joined(separator: ", "))\r\n" }
        request += headers.map { $0 + "\r\n" }.joined() + "\r\n"
        try write(Array(request.utf8))
        let (head, _) = try readHTTPResponse()
        handshakeResponse = head
        if expect101 && !head.hasPrefix("HTTP/1.1 101") { throw TestClientError("handshake refused: \(head)") }
        return head
    }

    /// Encodes a client frame (masked unless `masked` is false) — built by hand, independent of the codec under test.
    public static func frame(opcode: UInt8, payload: [UInt8], fin: Bool = true, masked: Bool = true, rsv: UInt8 = 0) -> [UInt8] {
        var out: [UInt8] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode]
        let maskBit: UInt8 = masked ? 0x80 : 0
        if payload.count < 126 {
            out.append(maskBit | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            out.append(maskBit | 126)
            out += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            out.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((UInt64(payload.count) >> UInt64(shift)) & 0xFF)) }
        }
        if masked {
            let key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
            out += key
            out += payload.enumerated().map { $0.element ^ key[$0.offset & 3] }
        } else {
            out += payload
        }
        return out
    }

    public func sendFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true, masked: Bool = true, rsv: UInt8 = 0) throws {
        try write(Self.frame(opcode: opcode, payload: payload, fin: fin, masked: masked, rsv: rsv))
    }

    public func sendText(_ text: String) throws { try sendFrame(opcode: 1, payload: Array(text.utf8)) }

    /// Sends a close frame with `code`.
    public func sendClose(code: UInt16, reason: String = "") throws {
        try sendFrame(opcode: 8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8))
    }

    /// Reads one frame (server frames are unmasked; a masked one is reported as an error).
    public func readFrame() throws -> TestFrame {
        let header = try take(2)
        if header[1] & 0x80 != 0 { throw TestClientError("server sent a masked frame") }
        var length = Int(header[1] & 0x7F)
        if length == 126 {
            let ext = try take(2)
            length = Int(ext[0]) << 8 | Int(ext[1])
        } else if length == 127 {
            let ext = try take(8)
            length = ext.reduce(0) { $0 << 8 | Int($1) }
        }
        return TestFrame(
            fin: header[0] & 0x80 != 0, opcode: header[0] & 0x0F, payload: try take(length), rsv1: header[0] & 0x40 != 0)
    }

    /// Reads frames until a data or close frame (pings are answered, pongs skipped).
    public func readMessage() throws -> TestFrame {
        while true {
            let frame = try readFrame()
            switch frame.opcode {
            case 9: try sendFrame(opcode: 10, payload: frame.payload)
            case 10: continue
            default: return frame
            }
        }
    }
}
