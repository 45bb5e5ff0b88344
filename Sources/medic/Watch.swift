// Watch: `medic watch PROPOSAL|all` — a terminal bot that prints each event as one line and resumes
// from its last seq after any disconnect (nothing lost, nothing repeated: protocol/README.md, "Replay").
import ArgumentParser
import Foundation
import Glibc
import HTTP1
import Protocol
import TLS
import WebSocket

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a proposal's events (or every proposal's lifecycle with 'all'), one line each; reconnects and resumes.")

    @Argument(help: "A proposal id, or 'all' for the proposals topic.") var target: String
    @Option(help: "Server URL: http(s)://HOST:PORT or ws(s)://HOST:PORT.") var url: String = "http://127.0.0.1:8080"
    @Option(help: "Access token (or MEDIC_TOKEN).") var token: String?
    @Option(help: "Start after this seq (0 = whole history).") var since: Int64 = 0
    @Option(help: "Exit after this many events (0 = run until interrupted).") var count: Int = 0
    @Option(help: "CA certificate file to trust for wss/https (default: the system's).") var caFile: String?
    @Flag(help: "Skip TLS certificate verification (testing only).") var insecure = false
    @Flag(help: "Print each event as one JSON object per line (for machines) instead of columns with local time.") var json = false

    func run() throws {
        guard let token = token ?? ProcessInfo.processInfo.environment["MEDIC_TOKEN"] else {
            throw ValidationError("--token or MEDIC_TOKEN is required")
        }
        let topic = target == "all" ? "proposals" : "proposal:\(target)"
        guard Topic(topic) != nil else { throw ValidationError("'\(target)' is not a valid proposal id") }
        guard let endpoint = Endpoint(url) else { throw ValidationError("--url must be http(s):// or ws(s)://HOST:PORT") }
        let tls = endpoint.secure ? try TLSContext.client(trustedCAPath: caFile, verifyPeer: !insecure) : nil
        var last = since
        var printed = 0
        var delay = 0.5
        while true {
            do {
                let socket = try WatchSocket(endpoint: endpoint, tls: tls, token: token)
                delay = 0.5
                try socket.send(text: ClientRequest(id: "sub", message: .subscribe(topic: Topic(topic)!, since: last)).encode())
                while true {
                    let text = try socket.receiveText()
                    switch ServerMessage.decode(Array(text.utf8)) {
                    case .success(.event(let event)):
                        if let seq = event.seq {
                            guard seq > last else { continue }  // never print twice
                            last = seq
                        }
                        let line = json
                            ? JSONValue.object([
                                "topic": .string(event.topic), "seq": event.seq.map { .int($0) } ?? .null, "ts": .int(event.ts),
                                "kind": .string(event.kind), "data": event.data,
                            ]).jsonString + "\n"
                            : "\(event.seq.map(String.init) ?? "-")\t\(Self.localTime(event.ts))\t\(event.kind)\t\(event.topic)\t\(event.data.jsonString)\n"
                        FileHandle.standardOutput.write(Data(line.utf8))
                        printed += 1
                        if count > 0 && printed >= count { return }
                    case .success(.error(let error)):
                        if error.code == .unauthenticated || error.code == .forbidden || error.code == .sinceBeyondHead {
                            throw ValidationError("server refused: \(error.code.rawValue): \(error.message)")
                        }
                        FileHandle.standardError.write(Data("medic watch: \(error.code.rawValue): \(error.message)\n".utf8))
                    default:
                        continue
                    }
                }
            } catch let error as ValidationError {
                throw error
            } catch let error as WatchError where error.closeCode == 4001 || error.closeCode == 4003 {
                // Retrying cannot help: the token is unknown, revoked, or its role changed (protocol/README.md §6).
                let meaning = error.closeCode == 4001 ? "authentication failed: unknown or revoked token" : "the token was revoked or its role changed"
                FileHandle.standardError.write(Data("medic watch: \(meaning) (close \(error.closeCode!); \(error.description))\n".utf8))
                throw ExitCode(3)
            } catch {
                FileHandle.standardError.write(Data("medic watch: \(error); reconnecting in \(delay)s from seq \(last)\n".utf8))
                usleep(useconds_t(delay * 1_000_000))
                delay = min(delay * 2, 10)
            }
        }
    }
}

/// Where to connect.
struct Endpoint {
    var host: String
    var port: UInt16
    var secure: Bool

    init?(_ url: String) {
        let schemes: [(String, Bool, UInt16)] = [("http://", false, 80), ("ws://", false, 80), ("https://", true, 443), ("wss://", true, 443)]
        guard let (prefix, secure, defaultPort) = schemes.first(where: { url.hasPrefix($0.0) }) else { return nil }
        var rest = String(url.dropFirst(prefix.count))
        if let slash = rest.firstIndex(of: "/") { rest = String(rest[..<slash]) }
        self.secure = secure
        if let colon = rest.lastIndex(of: ":"), let port = UInt16(rest[rest.index(after: colon)...]) {
            host = String(rest[..<colon])
            self.port = port
        } else {
            host = rest
            port = defaultPort
        }
    }
}

struct WatchError: Error, CustomStringConvertible {
    var description: String
    /// The server's close code, when the server closed the session.
    var closeCode: UInt16? = nil
}

extension Watch {
    /// `2026-12-04 15:53:58.123` in the local time zone.
    static func localTime(_ milliseconds: Int64) -> String {
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let length = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S", &parts)
        let text = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text + "." + String(String(milliseconds % 1000 + 1000).dropFirst())
    }
}

/// A blocking WebSocket client socket (the CLI needs no event loop: one connection, one reader).
final class WatchSocket {
    private let fd: Int32
    private var tls: TLSEngine?
    private var codec = WebSocketConnection(role: .client, limits: WebSocketLimits(maxFrameSize: 16 << 20, maxMessageSize: 16 << 20))
    private var inbox: [String] = []
    private var readBuffer = [UInt8](repeating: 0, count: 65536)

    init(endpoint: Endpoint, tls: TLSContext?, token: String) throws {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(endpoint.host, String(endpoint.port), &hints, &result) == 0, let info = result else {
            throw WatchError(description: "cannot resolve \(endpoint.host)")
        }
        defer { freeaddrinfo(result) }
        fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0, Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            if fd >= 0 { Glibc.close(fd) }
            throw WatchError(description: "cannot connect to \(endpoint.host):\(endpoint.port)")
        }
        // Server pings arrive every 30 s; 90 s of silence means the connection is gone.
        var timeout = timeval(tv_sec: 90, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if let tls {
            self.tls = try TLSEngine(context: tls, serverName: endpoint.host)
            try flushTLS()
            while !(self.tls!.isHandshakeComplete) { _ = try readMore(forHandshake: true) }
        }
        let key = WebSocketHandshake.randomKey()
        try writeApplication(WebSocketHandshake.clientRequest(
            host: "\(endpoint.host):\(endpoint.port)", path: "/ws", key: key, subprotocols: [medicSubprotocol],
            extraHeaders: [("Authorization", "Bearer \(token)")]))
        var parser = HTTPResponseHeadReader()
        while true {
            let chunk = try readMore(forHandshake: false)
            if let head = parser.feed(chunk) {
                if case .failure(let rejected) = WebSocketHandshake.validateResponse(
                    status: head.status, headers: head.headers, key: key, offeredSubprotocols: [medicSubprotocol]) {
                    throw WatchError(description: "handshake refused: \(rejected.reason)")
                }
                if !head.rest.isEmpty { try receiveFrames(head.rest) }
                break
            }
        }
    }

    deinit { Glibc.close(fd) }

    func send(text: [UInt8]) throws {
        try writeApplication(codec.frame(.text, payload: text))
    }

    /// The next text message (pings are answered by the codec).
    func receiveText() throws -> String {
        while inbox.isEmpty { try receiveFrames(try readMore(forHandshake: false)) }
        return inbox.removeFirst()
    }

    private func receiveFrames(_ bytes: [UInt8]) throws {
        var actions: [WebSocketAction] = []
        codec.receive(bytes, into: &actions)
        for action in actions {
            switch action {
            case .message(.text, let payload): inbox.append(String(decoding: payload, as: UTF8.self))
            case .message, .messageInInput: continue  // receive(_:into:) never reports in-place messages
            case .send(let frame): try writeApplication(frame)
            case .pong: continue
            case .close:
                let reason = inbox.compactMap { text -> String? in
                    guard case .success(.error(let error)) = ServerMessage.decode(Array(text.utf8)) else { return nil }
                    return "\(error.code.rawValue): \(error.message)"
                }.last
                throw WatchError(description: reason ?? "server closed the connection (\(codec.peerCloseCode.map(String.init) ?? "no code"))",
                                 closeCode: codec.peerCloseCode)
            }
        }
    }

    private func readMore(forHandshake: Bool) throws -> [UInt8] {
        while true {
            let n = readBuffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw WatchError(description: n == 0 ? "connection closed" : "receive failed (errno \(errno))") }
            guard let tls else { return Array(readBuffer[0..<n]) }
            readBuffer.withUnsafeBytes { tls.feedCiphertext(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            var plain: [UInt8] = []
            let result = tls.readPlaintext(into: &plain)
            try flushTLS()
            if case .failed(let error) = result { throw error }
            if case .peerClosed = result { throw WatchError(description: "TLS closed") }
            if forHandshake || !plain.isEmpty { return plain }
        }
    }

    private func writeApplication(_ bytes: [UInt8]) throws {
        if let tls {
            if let error = bytes.withUnsafeBytes({ tls.writePlaintext($0) }) { throw error }
            try flushTLS()
        } else {
            try writeRaw(bytes)
        }
    }

    private func flushTLS() throws {
        guard let tls else { return }
        var out: [UInt8] = []
        tls.drainCiphertext(into: &out)
        if !out.isEmpty { try writeRaw(out) }
    }

    private func writeRaw(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw WatchError(description: "send failed (errno \(errno))") }
            offset += n
        }
    }
}

/// Reads an HTTP response head (status + headers) from a byte stream.
struct HTTPResponseHeadReader {
    private var buffer: [UInt8] = []

    mutating func feed(_ bytes: [UInt8]) -> (status: Int, headers: [(name: String, value: String)], rest: [UInt8])? {
        buffer += bytes
        guard let end = buffer.indices.dropLast(3).first(where: { buffer[$0] == 13 && buffer[$0 + 1] == 10 && buffer[$0 + 2] == 13 && buffer[$0 + 3] == 10 }) else {
            return nil
        }
        let text = String(decoding: buffer[..<end], as: UTF8.self)
        var lines = text.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        let status = statusLine.count > 1 ? Int(statusLine[1]) ?? 0 : 0
        let headers = lines.compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return (status, headers, Array(buffer[(end + 4)...]))
    }
}
