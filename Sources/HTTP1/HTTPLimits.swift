// HTTPLimits: the bounds the request parser enforces, each with its default and the status it maps to.

/// Bounds on an incoming request. Every limit is checked before the bytes it guards are
/// buffered past it, so a hostile peer can make the parser hold at most roughly
/// `maxRequestLineBytes + maxHeaderBytes + 2 * maxBodyBytes` bytes per connection.
///
/// Limits are inclusive: a value of exactly N bytes is accepted, N+1 is refused.
public struct HTTPLimits: Sendable, Equatable {
    /// Longest request-line, excluding its CRLF. Default 8192 (RFC 9112 §3 recommends
    /// supporting at least 8000 octets). Exceeding it answers 414 URI Too Long.
    public var maxRequestLineBytes: Int
    /// Total bytes of all header field lines, each counted without its line terminator.
    /// Default 16384. Exceeding it answers 431 Request Header Fields Too Large (RFC 6585 §5).
    /// The same bound applies, separately, to the trailer section of a chunked body.
    public var maxHeaderBytes: Int
    /// Most header field lines in one request. Default 100. Exceeding it answers 431.
    /// The same bound applies, separately, to trailer field lines.
    public var maxHeaderCount: Int
    /// Largest body, after chunked decoding. Default 1 MiB (`1 << 20`). Exceeding it
    /// answers 413 Content Too Large (RFC 9110 §15.5.14); a declared Content-Length over
    /// the limit is refused as soon as the header section is complete.
    public var maxBodyBytes: Int
    /// Longest chunk-size line (size plus chunk extensions, RFC 9112 §7.1.1), excluding its
    /// CRLF. Default 1024. Exceeding it answers 400: extensions are ignored, so a long
    /// line is only ever a way to make us buffer.
    public var maxChunkLineBytes: Int

    /// Creates limits; every argument defaults to the documented value.
    public init(
        maxRequestLineBytes: Int = 8192,
        maxHeaderBytes: Int = 16384,
        maxHeaderCount: Int = 100,
        maxBodyBytes: Int = 1 << 20,
        maxChunkLineBytes: Int = 1024
    ) {
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
        self.maxChunkLineBytes = maxChunkLineBytes
    }
}
