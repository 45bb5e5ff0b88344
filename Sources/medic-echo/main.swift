// medic-echo: a WebSocket echo server on Medic's transport, for conformance suites and benchmarks.
import ArgumentParser
import EventLoop
import Glibc
import Logging
import Server
import TLS
import WebSocket

/// `medic-echo --listen HOST:PORT [--tls-cert PATH --tls-key PATH] [--deflate on|off]`.
struct MedicEcho: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "medic-echo",
        abstract: "Echo every WebSocket text and binary message back unchanged (RFC 6455 close and ping handled).")

    @Option(help: "Address to listen on (HOST:PORT).")
    var listen: String = "127.0.0.1:9001"

    @Option(help: "PEM certificate chain; with --tls-key, the listener speaks TLS (wss://).")
    var tlsCert: String?

    @Option(help: "PEM private key for --tls-cert.")
    var tlsKey: String?

    @Option(help: "Maximum message size in bytes (default 16 MiB).")
    var maxMessageBytes: Int = 16 << 20

    @Option(help: "permessage-deflate (RFC 7692): 'on' (default) negotiates it with clients that offer it, 'off' never.")
    var deflate: String = "on"

    @Option(help: "With --deflate on: messages shorter than this many bytes are sent uncompressed (default 64).")
    var deflateMinBytes: Int = 64

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func run() throws {
        Signals.block([SIGTERM, SIGINT])
        var logger = Logger(label: "medic-echo")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        guard let address = SocketAddressSpec(parsing: listen) else {
            throw ValidationError("--listen must be HOST:PORT, got '\(listen)'")
        }
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together")
        }
        guard deflate == "on" || deflate == "off" else { throw ValidationError("--deflate must be on or off") }
        guard deflateMinBytes >= 0 else { throw ValidationError("--deflate-min-bytes must not be negative") }
        let tls = try tlsCert.map { try TLSContext.server(certificatePath: $0, keyPath: tlsKey!) }
        let loop = try EventLoop(logger: logger)
        var configuration = ServerConfiguration()
        // Generous limits for conformance suites: 16 MiB messages, unlimited fragments.
        configuration.websocket = WebSocketLimits(maxFrameSize: maxMessageBytes, maxMessageSize: maxMessageBytes, maxFragments: nil)
        configuration.maxQueuedBytes = max(configuration.maxQueuedBytes, 4 * maxMessageBytes)
        configuration.deflate = DeflateConfiguration(enabled: deflate == "on", minimumSize: deflateMinBytes)
        let echo = EchoHandler()
        let server = Server(loop: loop, configuration: configuration, http: echo, websocket: echo)
        let port = try server.listen(address, tls: tls)
        let scheme = tls == nil ? "ws" : "wss"
        logger.info("medic-echo listening on \(scheme)://\(SocketAddressSpec(host: address.host, port: port))")
        let signals = try SignalSource(loop: loop, signals: [SIGTERM, SIGINT]) { signal in
            logger.info("signal \(signal): shutting down")
            server.shutdown { loop.stop() }
        }
        loop.run()
        signals.close()
        logger.info("medic-echo stopped")
    }
}

MedicEcho.main()
