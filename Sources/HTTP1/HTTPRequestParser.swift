// HTTPRequestParser: an incremental, pipelining-aware HTTP/1.1 request parser (RFC 9112).

/// Turns a byte stream into requests. Feed bytes as they arrive, then call `next()` until it
/// returns nil. The parser resumes at any split: a line is scanned for its LF only once
/// (the scan position is remembered across feeds), and a body waits in the buffer until
/// it is complete.
///
/// Line endings: CRLF, and a bare LF as permitted by RFC 9112 §2.2 (the CR before an LF is
/// ignored). A CR anywhere else is invalid. This holds everywhere: request-line, field
/// lines, chunk-size lines, the CRLF after chunk data and trailers.
///
/// After an error the parser is poisoned: `next()` rethrows the same error, because after a
/// framing error the rest of the stream cannot be interpreted (RFC 9112 §6.3).
public struct HTTPRequestParser {
    /// Where the parser stands within the current message.
    private enum State {
        /// Awaiting the request-line (empty lines before it are skipped, RFC 9112 §2.2).
        case requestLine
        /// Reading field lines until the empty line that ends the header section.
        case headerLines
        /// Awaiting `length` body bytes starting at `cursor` (Content-Length, §6.2).
        case fixedBody(length: Int)
        /// Awaiting a chunk-size line (§7.1).
        case chunkSize
        /// Copying chunk data; `remaining` bytes of the current chunk are still to come.
        case chunkData(remaining: Int)
        /// Awaiting the CRLF that closes chunk data.
        case chunkDataEnd
        /// Reading trailer field lines, which are checked against the limits and dropped (§7.1.2).
        case trailerLines
    }

    /// The parts of the current request parsed so far.
    private struct Head {
        var method = ""
        var target = ""
        var versionMajor = 1
        var versionMinor = 1
        var headers = HTTPHeaders()
        var headerBytes = 0
        var body: [UInt8] = []
        var trailerBytes = 0
        var trailerCount = 0
        var expectsContinue = false
    }

    public let limits: HTTPLimits
    /// Received bytes; everything before `messageStart` is dead and compacted away lazily.
    private var buffer: [UInt8] = []
    /// First byte of the unfinished message (all bytes after the last returned request).
    private var messageStart = 0
    /// First byte not yet consumed by the state machine.
    private var cursor = 0
    /// Where the search for the next LF resumes, so a line is never rescanned.
    private var scanFrom = 0
    private var state: State = .requestLine
    private var head = Head()
    private var failure: HTTPParseError?
    private var continueAcknowledged = false

    public init(limits: HTTPLimits = .init()) {
        self.limits = limits
    }

    /// Appends received bytes.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        compactIfWorthwhile()
        buffer.append(contentsOf: bytes)
    }

    /// Appends received bytes.
    public mutating func feed(_ bytes: [UInt8]) {
        compactIfWorthwhile()
        buffer.append(contentsOf: bytes)
    }

    /// Whether some bytes of an unfinished request are buffered, for the header-read timeout.
    public var hasPartialRequest: Bool { buffer.count > messageStart }

    /// True when the current request's header section is complete, it carried
    /// `Expect: 100-continue` (RFC 9110 §10.1.1), its body has not fully arrived, and
    /// `acknowledgeContinue()` has not been called: the server should send
    /// "HTTP/1.1 100 Continue" (or a final status) so the client sends the body.
    public var expectsContinue: Bool {
        guard head.expectsContinue, !continueAcknowledged else { return false }
        switch state {
        case .requestLine, .headerLines: return false
        case .fixedBody, .chunkSize, .chunkData, .chunkDataEnd, .trailerLines: return true
        }
    }

    /// Records that the server answered the pending `Expect: 100-continue`.
    public mutating func acknowledgeContinue() { continueAcknowledged = true }

    /// Removes and returns every byte after the last returned request, and resets the parser.
    /// Used when the connection switches protocols after an Upgrade (RFC 9110 §7.8), where
    /// the bytes that follow belong to the new protocol.
    public mutating func takeBufferedBytes() -> [UInt8] {
        let rest = Array(buffer[messageStart...])
        buffer = []
        messageStart = 0
        cursor = 0
        scanFrom = 0
        state = .requestLine
        head = Head()
        failure = nil
        continueAcknowledged = false
        return rest
    }

    /// The next complete request, nil if more bytes are needed. Pipelining: call repeatedly.
    public mutating func next() throws(HTTPParseError) -> HTTPRequest? {
        if let failure { throw failure }
        do {
            return try step()
        } catch {
            failure = error
            throw error
        }
    }

    // MARK: - State machine

    /// Runs the state machine until a request completes or input runs out.
    private mutating func step() throws(HTTPParseError) -> HTTPRequest? {
        while true {
            switch state {
            case .requestLine:
                guard let line = try readLine(limit: limits.maxRequestLineBytes, tooLong: .uriTooLong) else {
                    return nil
                }
                if line.isEmpty {
                    // RFC 9112 §2.2: ignore empty lines received before the request-line.
                    messageStart = cursor
                    continue
                }
                try parseRequestLine(line)
                state = .headerLines

            case .headerLines:
                let budget = limits.maxHeaderBytes - head.headerBytes
                guard let line = try readLine(limit: budget, tooLong: .headerFieldsTooLarge) else { return nil }
                if line.isEmpty {
                    if let request = try beginBody() { return request }
                    continue
                }
                head.headerBytes += line.count
                if head.headers.count >= limits.maxHeaderCount {
                    throw .headersTooLarge("more than \(limits.maxHeaderCount) header fields")
                }
                let (name, value) = try parseFieldLine(line)
                head.headers.add(name, value)

            case .fixedBody(let length):
                guard buffer.count - cursor >= length else { return nil }
                head.body = Array(buffer[cursor..<cursor + length])
                cursor += length
                return finishMessage()

            case .chunkSize:
                guard let line = try readLine(limit: limits.maxChunkLineBytes, tooLong: .badRequest) else {
                    return nil
                }
                let size = try parseChunkSize(line)
                state = size == 0 ? .trailerLines : .chunkData(remaining: size)

            case .chunkData(let remaining):
                let available = min(remaining, buffer.count - cursor)
                guard available > 0 else { return nil }
                head.body.append(contentsOf: buffer[cursor..<cursor + available])
                cursor += available
                scanFrom = cursor
                state = available == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - available)

            case .chunkDataEnd:
                // chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF (§7.1); bare LF accepted (§2.2).
                guard cursor < buffer.count else { return nil }
                if buffer[cursor] == ASCII.lf {
                    cursor += 1
                } else if buffer[cursor] == ASCII.cr {
                    guard cursor + 1 < buffer.count else { return nil }
                    guard buffer[cursor + 1] == ASCII.lf else { throw .badRequest("chunk data not followed by CRLF") }
                    cursor += 2
                } else {
                    throw .badRequest("chunk data longer than its declared size")
                }
                scanFrom = cursor
                state = .chunkSize

            case .trailerLines:
                let budget = limits.maxHeaderBytes - head.trailerBytes
                guard let line = try readLine(limit: budget, tooLong: .headerFieldsTooLarge) else { return nil }
                if line.isEmpty { return finishMessage() }
                head.trailerBytes += line.count
                head.trailerCount += 1
                if head.trailerCount > limits.maxHeaderCount {
                    throw .headersTooLarge("more than \(limits.maxHeaderCount) trailer fields")
                }
                // Trailers are validated like header fields but dropped: nothing here needs
                // them, and merging them into headers is what §6.5 warns against.
                _ = try parseFieldLine(line)
            }
        }
    }

    /// Returns the next line without its terminator (LF or CRLF) and consumes it, or nil if
    /// no LF has arrived yet. Throws `tooLong` once the line provably exceeds `limit` bytes,
    /// even before its end arrives, so a peer cannot make us buffer an endless line.
    private mutating func readLine(limit: Int, tooLong: HTTPParseError.Kind) throws(HTTPParseError) -> ArraySlice<UInt8>? {
        let lineStart = cursor
        let found: Int? = buffer.withUnsafeBufferPointer { bytes in
            var i = max(scanFrom, lineStart)
            while i < bytes.count {
                if bytes[i] == ASCII.lf { return i }
                i += 1
            }
            return nil
        }
        guard let lf = found else {
            scanFrom = buffer.count
            // limit + 1 bytes could still be `limit` bytes plus the CR of a CRLF.
            if buffer.count - lineStart >= limit + 2 { throw Self.lineTooLong(tooLong, limit) }
            return nil
        }
        var end = lf
        if end > lineStart && buffer[end - 1] == ASCII.cr { end -= 1 }
        if end - lineStart > limit { throw Self.lineTooLong(tooLong, limit) }
        cursor = lf + 1
        scanFrom = cursor
        return buffer[lineStart..<end]
    }

    private static func lineTooLong(_ kind: HTTPParseError.Kind, _ limit: Int) -> HTTPParseError {
        switch kind {
        case .uriTooLong: .uriTooLong("request-line longer than \(limit) bytes")
        case .headerFieldsTooLarge: .headersTooLarge("header section too large")
        case .badRequest, .contentTooLarge, .notImplemented, .versionNotSupported:
            .badRequest("chunk-size line too long")
        }
    }

    /// request-line = method SP request-target SP HTTP-version (RFC 9112 §3). Exactly one SP
    /// between parts: §3 allows lenient whitespace parsing but we do not need it, and
    /// strictness keeps us in agreement with any proxy in front (request smuggling).
    private mutating func parseRequestLine(_ line: ArraySlice<UInt8>) throws(HTTPParseError) {
        guard let sp1 = line.firstIndex(of: ASCII.space) else { throw .badRequest("malformed request-line") }
        let afterMethod = line[(sp1 + 1)...]
        guard let sp2 = afterMethod.firstIndex(of: ASCII.space) else { throw .badRequest("malformed request-line") }
        let method = line[..<sp1]
        let target = line[(sp1 + 1)..<sp2]
        let version = line[(sp2 + 1)...]
        guard !method.isEmpty, method.allSatisfy(ASCII.isTokenChar) else { throw .badRequest("invalid method") }
        guard !target.isEmpty, target.allSatisfy(ASCII.isTargetChar) else {
            throw .badRequest("invalid request-target")
        }
        // HTTP-version = "HTTP" "/" DIGIT "." DIGIT (RFC 9112 §2.3), case-sensitive.
        let v = Array(version)
        guard v.count == 8, v[0...4].elementsEqual("HTTP/".utf8), v[6] == 0x2E,
            (0x30...0x39).contains(v[5]), (0x30...0x39).contains(v[7])
        else { throw .badRequest("invalid HTTP-version") }
        let major = Int(v[5] - 0x30)
        let minor = Int(v[7] - 0x30)
        // Any 1.x is served as 1.1 (§2.3); other majors get 505 (RFC 9110 §15.6.6).
        guard major == 1 else { throw .versionNotSupported("HTTP/\(major).\(minor) is not supported") }
        let methodString = String(decoding: method, as: UTF8.self)
        let targetString = String(decoding: target, as: UTF8.self)
        // The target's form must suit the method (RFC 9112 §3.2): origin-form "/...",
        // absolute-form "scheme://...", authority-form only for CONNECT, "*" only for OPTIONS.
        let isOrigin = target.first == ASCII.slash
        let isAbsolute = !isOrigin && targetString.contains("://")
        let isAsterisk = targetString == "*" && methodString == "OPTIONS"
        let isAuthority = methodString == "CONNECT" && !isOrigin && !isAbsolute
        guard isOrigin || isAbsolute || isAsterisk || isAuthority else { throw .badRequest("invalid request-target") }
        head.method = methodString
        head.target = targetString
        head.versionMajor = major
        head.versionMinor = minor
    }

    /// field-line = field-name ":" OWS field-value OWS (RFC 9112 §5).
    private func parseFieldLine(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> (String, String) {
        // obs-fold (§5.2): a line starting with whitespace continues the previous one; a
        // server may reject it with 400, and we do, as folding is a smuggling vector.
        if let first = line.first, first == ASCII.space || first == ASCII.tab {
            throw .badRequest("obsolete line folding")
        }
        guard let colon = line.firstIndex(of: ASCII.colon) else { throw .badRequest("header field without colon") }
        let name = line[..<colon]
        // §5.1: no whitespace between field name and colon; it must be answered with 400.
        guard !name.isEmpty, name.allSatisfy(ASCII.isTokenChar) else { throw .badRequest("invalid header field name") }
        var value = line[(colon + 1)...]
        while let f = value.first, f == ASCII.space || f == ASCII.tab { value = value.dropFirst() }
        while let l = value.last, l == ASCII.space || l == ASCII.tab { value = value.dropLast() }
        // RFC 9110 §5.5: CR, LF and NUL in a value must be rejected (or replaced); we reject.
        guard value.allSatisfy(ASCII.isFieldValueChar) else { throw .badRequest("invalid header field value") }
        return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    /// At the end of the header section: validates the header set, decides how the body is
    /// framed (RFC 9112 §6.3), and returns the request at once if it has no body.
    private mutating func beginBody() throws(HTTPParseError) -> HTTPRequest? {
        let headers = head.headers
        let isHTTP11 = head.versionMinor >= 1
        // RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request without a Host
        // field or with more than one.
        let hosts = headers.values("Host")
        if isHTTP11 && hosts.count != 1 { throw .badRequest(hosts.isEmpty ? "missing Host" : "repeated Host") }
        if !isHTTP11 && hosts.count > 1 { throw .badRequest("repeated Host") }

        head.expectsContinue = isHTTP11 && headers.tokens("Expect").contains("100-continue")

        if headers.contains("Transfer-Encoding") {
            // §6.3 item 3: TE with Content-Length may be smuggling; we refuse such a request.
            if headers.contains("Content-Length") {
                throw .badRequest("both Transfer-Encoding and Content-Length")
            }
            // §6.1: TE in an HTTP/1.0 message means the framing is faulty.
            guard isHTTP11 else { throw .badRequest("Transfer-Encoding in an HTTP/1.0 request") }
            let codings = headers.tokens("Transfer-Encoding").map { Self.codingName($0) }
            // §6.3 item 4: chunked must be the final coding, else the length is unknowable: 400.
            guard codings.last == "chunked" else { throw .badRequest("chunked is not the final transfer coding") }
            // §6.1: a coding we do not understand gets 501.
            if let unknown = codings.first(where: { $0 != "chunked" }) {
                throw .notImplemented("transfer coding \"\(unknown.prefix(32))\" is not supported")
            }
            // §7: chunked must not be applied more than once.
            guard codings.count == 1 else { throw .badRequest("chunked applied more than once") }
            state = .chunkSize
            return nil
        }

        let lengths = headers.values("Content-Length")
        if lengths.isEmpty {
            // §6.3 item 7: a request with neither field has no body.
            return finishMessage()
        }
        let length = try Self.contentLength(lengths, limit: limits.maxBodyBytes)
        if length == 0 { return finishMessage() }
        state = .fixedBody(length: length)
        return nil
    }

    /// A transfer-coding's name, without parameters (RFC 9112 §7: transfer-coding = token *( OWS ";" ... )).
    private static func codingName(_ coding: String) -> String {
        guard let semicolon = coding.firstIndex(of: ";") else { return coding }
        return HTTPHeaders.trimOWS(coding[..<semicolon])
    }

    /// Content-Length = 1*DIGIT (RFC 9110 §8.6). Repeated fields or a list are accepted only
    /// if every element is the same valid number (RFC 9112 §6.3 item 5); anything else is
    /// 400. A value over `limit` (including one too large to represent) is 413.
    private static func contentLength(_ values: [String], limit: Int) throws(HTTPParseError) -> Int {
        // Compare digit strings with leading zeros removed, so values of any size compare.
        var canonical: Substring?
        for value in values {
            for element in value.split(separator: ",", omittingEmptySubsequences: false) {
                let digits = HTTPHeaders.trimOWS(element)
                guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                    throw .badRequest("invalid Content-Length")
                }
                let stripped = Substring(digits.drop { $0 == "0" })
                if let canonical, canonical != stripped { throw .badRequest("conflicting Content-Length values") }
                canonical = stripped
            }
        }
        guard let canonical else { throw .badRequest("invalid Content-Length") }
        guard canonical.count <= 18, let length = canonical.isEmpty ? 0 : Int(canonical), length <= limit else {
            throw .tooLarge("body larger than \(limit) bytes")
        }
        return length
    }

    /// chunk-size [ chunk-ext ] (RFC 9112 §7.1, §7.1.1). Extensions are ignored, but the
    /// line must hold only visible characters and whitespace.
    private mutating func parseChunkSize(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> Int {
        var size = 0
        var index = line.startIndex
        while index < line.endIndex, let digit = ASCII.hexValue(line[index]) {
            // Refuse before overflow: a chunk can never exceed the remaining body budget.
            if size > (limits.maxBodyBytes - head.body.count) { break }
            size = size * 16 + Int(digit)
            index += 1
        }
        guard index > line.startIndex else { throw .badRequest("invalid chunk size") }
        if size > limits.maxBodyBytes - head.body.count
            || (index < line.endIndex && ASCII.hexValue(line[index]) != nil)
        {
            throw .tooLarge("body larger than \(limits.maxBodyBytes) bytes")
        }
        var rest = line[index...]
        while let f = rest.first, f == ASCII.space || f == ASCII.tab { rest = rest.dropFirst() }  // BWS
        if let f = rest.first {
            guard f == ASCII.semicolon, rest.allSatisfy(ASCII.isFieldValueChar) else {
                throw .badRequest("invalid chunk extension")
            }
        }
        return size
    }

    /// Completes the current message: builds the request and makes the next one start here.
    private mutating func finishMessage() -> HTTPRequest {
        let request = HTTPRequest(
            method: head.method, target: head.target, versionMajor: head.versionMajor,
            versionMinor: head.versionMinor, headers: head.headers, body: head.body)
        head = Head()
        continueAcknowledged = false
        state = .requestLine
        messageStart = cursor
        scanFrom = cursor
        return request
    }

    /// Drops consumed bytes once they outweigh the live ones, so compaction costs O(1)
    /// amortized per byte and the buffer stays bounded by the live message.
    private mutating func compactIfWorthwhile() {
        guard messageStart > 0, messageStart >= buffer.count - messageStart else { return }
        if messageStart == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 64 * 1024)
        } else {
            buffer.removeSubrange(0..<messageStart)
        }
        cursor -= messageStart
        scanFrom -= messageStart
        messageStart = 0
    }
}
