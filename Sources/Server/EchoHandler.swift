// EchoHandler: the medic-echo application — every text and binary message sent back unchanged.
public import HTTP1
public import WebSocket

/// Echoes WebSocket messages on any path and answers plain HTTP with a short banner (and /healthz).
/// Used by `medic-echo` for conformance suites and benchmarks, and by the transport tests.
public final class EchoHandler: HTTPHandler, WebSocketHandler {
    private let subprotocols: [String]

    public init(subprotocols: [String] = []) {
        self.subprotocols = subprotocols
    }

    public func handle(_ request: HTTPRequest, on connection: Connection) {
        if request.path == "/healthz" {
            connection.respond(.text(200, "ok\n"))
        } else {
            connection.respond(.text(200, "medic-echo: connect with a WebSocket client to echo messages\n"))
        }
    }

    public func upgradePolicy(for request: HTTPRequest) -> WebSocketUpgradePolicy? {
        WebSocketUpgradePolicy(subprotocols: subprotocols, requireSubprotocol: false, origins: .any)
    }

    public func didOpen(_ connection: Connection, request: HTTPRequest, subprotocol: String?) {}

    public func didReceive(_ connection: Connection, opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer) {
        connection.sendMessage(opcode, payload: payload)
    }

    public func didClose(_ connection: Connection) {}
}
