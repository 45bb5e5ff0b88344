// Handlers: what an application plugs into the server (HTTP requests, WebSocket sessions).
public import HTTP1
public import WebSocket

/// Answers plain HTTP requests. Call `connection.respond(_:)` exactly once per request, now or later
/// (on the loop thread); later requests pipelined on the same connection wait for it, in order.
public protocol HTTPHandler: AnyObject {
    func handle(_ request: HTTPRequest, on connection: Connection)
}

/// How a path upgrades to WebSocket.
public struct WebSocketUpgradePolicy: Sendable {
    /// Subprotocols the server speaks, in preference order (RFC 6455 §4.2.2: the first one the client offered).
    public var subprotocols: [String]
    /// When true, a client offering none of `subprotocols` is refused (400).
    public var requireSubprotocol: Bool
    public var origins: OriginPolicy
    /// When true, the session starts with `ServerConfiguration.restrictedWebSocket` (small messages: before
    /// authentication) until the handler calls `Connection.liftWebSocketRestriction()`.
    public var restrictedUntilLifted: Bool

    public init(subprotocols: [String] = [], requireSubprotocol: Bool = false, origins: OriginPolicy = .any, restrictedUntilLifted: Bool = false) {
        self.subprotocols = subprotocols
        self.requireSubprotocol = requireSubprotocol
        self.origins = origins
        self.restrictedUntilLifted = restrictedUntilLifted
    }
}

/// A WebSocket application: sessions opened, messages received, sessions closed. All on the loop thread.
public protocol WebSocketHandler: AnyObject {
    /// The policy for an upgrade request, or nil to refuse it (404).
    func upgradePolicy(for request: HTTPRequest) -> WebSocketUpgradePolicy?
    func didOpen(_ connection: Connection, request: HTTPRequest, subprotocol: String?)
    /// A complete message (text is valid UTF-8). `payload` is valid only during the call (it may point
    /// into the loop's read buffer): copy what must outlive it.
    func didReceive(_ connection: Connection, opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer)
    /// The session ended (close handshake, error, timeout or shutdown). Called once, after the fd is closed.
    func didClose(_ connection: Connection)
    /// Called about once a second for each open WebSocket (the server's timeout sweep), for the app's
    /// own timeouts without a timer per connection. Default: nothing.
    func sweep(_ connection: Connection, now: UInt64)
}

extension WebSocketHandler {
    public func sweep(_ connection: Connection, now: UInt64) {}
}
