// ServerConfiguration: every limit and timeout of the transport, with its documented default.
public import HTTP1
public import WebSocket

/// Limits and timeouts for the HTTP/WebSocket server. Defaults suit the Medic app; `medic-echo` raises the
/// message limits for conformance suites.
public struct ServerConfiguration: Sendable {
    /// HTTP request limits (request line, headers, body).
    public var http: HTTPLimits = .init()
    /// WebSocket frame/message/fragment limits (1009 when exceeded).
    public var websocket: WebSocketLimits = .init()
    /// A client must finish its request headers within this time after its first byte (408, then close).
    public var headerTimeoutMilliseconds: Int = 10_000
    /// An idle keep-alive HTTP connection is closed after this time.
    public var httpIdleTimeoutMilliseconds: Int = 60_000
    /// A WebSocket with no inbound traffic for this long gets a ping.
    public var pingIntervalMilliseconds: Int = 30_000
    /// A WebSocket with no inbound traffic (not even a pong) for this long is closed (1001).
    public var websocketIdleTimeoutMilliseconds: Int = 75_000
    /// How long to wait for the peer's close frame or for queued bytes to drain before cutting a closing connection.
    public var closeTimeoutMilliseconds: Int = 5_000
    /// WebSocket limits while the upgrade policy asks for them (`WebSocketUpgradePolicy.restrictedUntilLifted`:
    /// before authentication) until the handler lifts them: a larger message closes with 1009, refused from
    /// its frame header, before any of it is buffered.
    public var restrictedWebSocket: WebSocketLimits = .init(maxFrameSize: 8 << 10, maxMessageSize: 8 << 10, maxFragments: 16)
    /// Outbound bytes queued for one connection above which it is closed (1008; it resumes from its last seq).
    public var maxQueuedBytes: Int = 16 << 20
    /// Above this many queued bytes the connection reports itself not writable (fan-out may skip or slow down),
    /// and nothing more is read or parsed from it (HTTP and WebSocket, plain and TLS) until its output drains
    /// below `lowWaterMark`: a client that sends without reading stalls itself instead of growing our memory.
    public var highWaterMark: Int = 1 << 20
    /// A connection paused at the high-water mark resumes reading once its queued output is below this.
    public var lowWaterMark: Int = 256 << 10
    /// Maximum simultaneous connections; further accepts are closed at once.
    public var maxConnections: Int = 100_000
    /// How long a graceful shutdown waits for connections to close before cutting them.
    public var shutdownGraceMilliseconds: Int = 3_000
    /// Longest a deferred fan-out write waits for frames of further publications to join it (0 = never
    /// defer). The app releases them earlier when nothing more is in flight, so a lone event is not delayed.
    /// 5 ms covers a group commit on this machine: with 2 ms, fan-out took 0.082 writes per delivery, with
    /// 5–20 ms 0.066 (1/16 is the floor with a publisher window of 16) and ~20 % less CPU (Benchmarks/README).
    public var deferredFlushMicroseconds: Int = 5_000
    /// permessage-deflate (RFC 7692): whether it is negotiated, the size below which messages go out
    /// uncompressed, and the zlib level. Compressed input is bounded by `websocket.maxMessageSize` *after*
    /// inflation (1009 before inflating past it). Default: on, 64 bytes, level 6.
    public var deflate: DeflateConfiguration = .init()

    public init() {}
}
