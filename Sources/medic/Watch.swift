// Watch: `medic watch PROPOSAL|all` — a terminal bot that prints each event as one line and resumes
// from its last seq after any disconnect (nothing lost, nothing repeated: protocol/README.md, "Replay").
// The connection is MedicClient's `TopicFollower` on the project's own loop and codecs.
import ArgumentParser
import EventLoop
import Foundation
import Glibc
import Logging
import MedicClient
import Protocol
import TLS

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
        guard let topic = Topic(target == "all" ? "proposals" : "proposal:\(target)") else {
            throw ValidationError("'\(target)' is not a valid proposal id")
        }
        guard let endpoint = ClientEndpoint(url: url) else { throw ValidationError("--url must be http(s):// or ws(s)://HOST:PORT") }
        let tls = endpoint.secure ? try TLSContext.client(trustedCAPath: caFile, verifyPeer: !insecure) : nil
        var logger = Logger(label: "medic.watch")
        logger.logLevel = .warning
        let loop = try EventLoop(logger: logger)
        let follower = TopicFollower(loop: loop, endpoint: endpoint, tls: tls, token: token, topic: topic, since: since)
        var printed = 0
        var fatal: String?
        let json = self.json
        let count = self.count
        follower.onEvent = { event in
            let line = json
                ? JSONValue.object([
                    "topic": .string(event.topic), "seq": event.seq.map { .int($0) } ?? .null, "ts": .int(event.ts),
                    "kind": .string(event.kind), "data": event.data,
                ]).jsonString + "\n"
                : "\(event.seq.map(String.init) ?? "-")\t\(Self.localTime(event.ts))\t\(event.kind)\t\(event.topic)\t\(event.data.jsonString)\n"
            FileHandle.standardOutput.write(Data(line.utf8))
            printed += 1
            if count > 0 && printed >= count {
                follower.stop()
                loop.stop()
            }
        }
        follower.onReconnecting = { reason, delay in
            FileHandle.standardError.write(Data("medic watch: \(reason) in \(delay)s\n".utf8))
        }
        follower.onFatal = { message, _ in
            fatal = message
            loop.stop()
        }
        follower.start()
        loop.run()
        if let fatal {
            // Retrying cannot help: the token is unknown, revoked, or its role changed (protocol/README.md §6).
            FileHandle.standardError.write(Data("medic watch: \(fatal)\n".utf8))
            throw ExitCode(3)
        }
    }
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
