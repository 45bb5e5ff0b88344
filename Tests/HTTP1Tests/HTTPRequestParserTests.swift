// HTTPRequestParserTests: request parsing, framing, errors, limits and pipelining at every split.

import HTTP1
import Testing

@Suite struct HTTPRequestParserTests {
    @Test func simpleGet() throws {
        let request = try #require(
            parseOne("GET /index.html?a=1&b=two HTTP/1.1\r\nHost: example.com\r\nX-Custom:  padded value \t\r\n\r\n"))
        #expect(request.method == "GET")
        #expect(request.target == "/index.html?a=1&b=two")
        #expect(request.path == "/index.html")
        #expect(request.query == "a=1&b=two")
        #expect(request.versionMajor == 1 && request.versionMinor == 1)
        #expect(request.headers["host"] == "example.com")
        #expect(request.headers["X-CUSTOM"] == "padded value")
        #expect(request.headers.fields.map(\.name) == ["Host", "X-Custom"])
        #expect(request.body.isEmpty)
        #expect(request.keepAlive)
    }

    @Test func contentLengthBody() throws {
        let request = try #require(parseOne("POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"))
        #expect(request.method == "POST")
        #expect(request.body == Array("hello world".utf8))
    }

    @Test func repeatedIdenticalContentLengthIsAccepted() throws {
        // RFC 9112 §6.3 item 5: identical repeated values may be accepted.
        let request = try #require(
            parseOne("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\nContent-Length: 003\r\n\r\nabc"))
        #expect(request.body == Array("abc".utf8))
    }

    @Test func zeroContentLength() throws {
        let request = try #require(parseOne("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"))
        #expect(request.body.isEmpty)
    }

    @Test func chunkedBodyWithExtensionsAndTrailers() throws {
        let input = "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\n" + "1 ; x\r\n \r\n" + "A\r\n0123456789\r\n"
            + "0\r\nX-Trailer: yes\r\n\r\n"
        let request = try #require(parseOne(input))
        #expect(request.body == Array("hello 0123456789".utf8))
        #expect(request.headers["X-Trailer"] == nil, "trailers are dropped")
    }

    @Test func chunkedCodingIsCaseInsensitive() throws {
        let request = try #require(
            parseOne("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"))
        #expect(request.body == Array("abc".utf8))
    }

    @Test func chunkedUppercaseHexSizes() throws {
        let data = String(repeating: "z", count: 0x1F)
        let request = try #require(
            parseOne("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1F\r\n\(data)\r\n0\r\n\r\n"))
        #expect(request.body.count == 0x1F)
    }

    @Test func bareLineFeedsAreAcceptedEverywhere() throws {
        // RFC 9112 §2.2: a recipient may treat a bare LF as a line terminator.
        let request = try #require(
            parseOne("POST /x HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\n3\nabc\n0\nT: 1\n\n"))
        #expect(request.body == Array("abc".utf8))
        #expect(request.headers["Host"] == "h")
    }

    @Test func emptyLinesBeforeRequestLineAreIgnored() throws {
        let request = try #require(parseOne("\r\n\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(request.path == "/")
    }

    @Test func pipelinedRequestsInOneBuffer() throws {
        let input = "GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
            + "POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
            + "PUT /three HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
        let outcome = parseEverySplit(input)
        guard case .parsed(let requests, partial: false) = outcome else {
            Issue.record("unexpected \(outcome)")
            return
        }
        #expect(requests.map(\.path) == ["/one", "/two", "/three"])
        #expect(requests.map(\.method) == ["GET", "POST", "PUT"])
        #expect(requests.map(\.body) == [[], Array("abc".utf8), Array("xy".utf8)])
    }

    @Test func pipelinedRequestFollowedByPartialOne() {
        let outcome = parseEverySplit("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HT")
        #expect(outcome == .parsed(outcome.requests, partial: true))
        #expect(outcome.requests.map(\.path) == ["/a"])
    }

    @Test func errorAfterValidPipelinedRequest() {
        let outcome = parseEverySplit("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/9.9\r\n\r\n")
        #expect(outcome.status == 505)
        #expect(outcome.requests.map(\.path) == ["/a"])
    }

    @Test func absoluteFormAndAsteriskForm() throws {
        let absolute = try #require(parseOne("GET http://example.com:8080/p/q?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        #expect(absolute.path == "/p/q")
        #expect(absolute.query == "x=1")
        let bare = try #require(parseOne("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        #expect(bare.path == "/")
        let options = try #require(parseOne("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(options.path == "*")
    }

    @Test func http10WithoutHostIsAccepted() throws {
        let request = try #require(parseOne("GET / HTTP/1.0\r\n\r\n"))
        #expect(request.versionMinor == 0)
        #expect(!request.keepAlive)
    }

    @Test func higherMinorVersionIsAccepted() throws {
        // RFC 9112 §2.3: a 1.x request is processed as the highest 1.x version we support.
        let request = try #require(parseOne("GET / HTTP/1.7\r\nHost: h\r\n\r\n"))
        #expect(request.versionMinor == 7)
        #expect(request.keepAlive)
    }

    // MARK: Errors

    static let badRequests: [(String, String)] = [
        ("double space", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n"),
        ("trailing space", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n"),
        ("missing version", "GET /\r\nHost: h\r\n\r\n"),
        ("lowercase version", "GET / http/1.1\r\nHost: h\r\n\r\n"),
        ("two-digit version", "GET / HTTP/1.10\r\nHost: h\r\n\r\n"),
        ("method with @", "G@T / HTTP/1.1\r\nHost: h\r\n\r\n"),
        ("empty method", " / HTTP/1.1\r\nHost: h\r\n\r\n"),
        ("relative target", "GET index.html HTTP/1.1\r\nHost: h\r\n\r\n"),
        ("asterisk with GET", "GET * HTTP/1.1\r\nHost: h\r\n\r\n"),
        ("non-ASCII target", "GET /caf\u{e9} HTTP/1.1\r\nHost: h\r\n\r\n"),
        ("bare CR in request-line", "GET /\ra HTTP/1.1\r\nHost: h\r\n\r\n"),
        ("whitespace before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n"),
        ("tab before colon", "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n"),
        ("obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n"),
        ("obs-fold tab", "GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n\ttwo\r\n\r\n"),
        ("field without colon", "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n"),
        ("empty field name", "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n"),
        ("NUL in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\u{0}b\r\n\r\n"),
        ("bare CR in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"),
        ("missing Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n"),
        ("two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        ("Content-Length letters", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12a\r\n\r\n"),
        ("Content-Length negative", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"),
        ("Content-Length plus", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n"),
        ("Content-Length empty", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n"),
        ("Content-Length hex", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n"),
        ("Content-Length list differs", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\nabcdef"),
        ("Content-Length fields differ", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef"),
        ("TE and CL", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"),
        ("chunked not final", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
        ("only unknown coding", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"),
        ("chunked twice", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("bad chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        ("empty chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\n"),
        ("negative chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n"),
        ("chunk data too long", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n"),
        ("chunk data CR without LF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\rX"),
        ("garbage chunk extension", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2 x\r\nab\r\n0\r\n\r\n"),
        ("bad trailer", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n"),
    ]

    @Test(arguments: badRequests) func badRequestIs400(_ name: String, _ input: String) {
        #expect(failureStatus(input) == 400, "\(name)")
    }

    @Test(arguments: ["HTTP/2.0", "HTTP/0.9", "HTTP/3.1"]) func otherMajorVersionIs505(_ version: String) {
        #expect(failureStatus("GET / \(version)\r\nHost: h\r\n\r\n") == 505)
    }

    @Test(arguments: ["gzip, chunked", "deflate,chunked", "identity, chunked"])
    func unknownTransferCodingIs501(_ codings: String) {
        #expect(failureStatus("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \(codings)\r\n\r\n0\r\n\r\n") == 501)
    }

    @Test func hugeContentLengthIs413() {
        let digits = String(repeating: "9", count: 40)
        #expect(failureStatus("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \(digits)\r\n\r\n") == 413)
    }

    @Test func hugeChunkSizeIs413() {
        let digits = String(repeating: "f", count: 40)
        #expect(failureStatus("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\(digits)\r\n") == 413)
    }

    @Test func errorIsSticky() {
        var parser = HTTPRequestParser()
        parser.feed(Array("GET / HTTP/2.0\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
        #expect(throws: HTTPParseError.self) { try parser.next() }
        #expect { try parser.next() } throws: { ($0 as? HTTPParseError)?.status == 505 }
    }

    @Test func errorMessageDoesNotEchoInput() {
        var parser = HTTPRequestParser()
        parser.feed(Array("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: <script>, chunked\r\n\r\n".utf8))
        do {
            _ = try parser.next()
            Issue.record("expected an error")
        } catch {
            #expect(error.status == 501)
            // The coding name is quoted but truncated; the response encoder escapes nothing, so
            // the body is text/plain. Check the message is at least bounded.
            #expect(error.message.utf8.count < 100)
        }
    }

    // MARK: Keep-alive (RFC 9112 §9.3)

    static let keepAliveCases: [(String, String, Bool)] = [
        ("1.1", "", true),
        ("1.1", "Connection: close\r\n", false),
        ("1.1", "Connection: Keep-Alive, CLOSE\r\n", false),
        ("1.1", "Connection: upgrade\r\nConnection: close\r\n", false),
        ("1.1", "Connection: upgrade\r\n", true),
        ("1.0", "", false),
        ("1.0", "Connection: keep-alive\r\n", true),
        ("1.0", "Connection: Keep-Alive\r\n", true),
        ("1.0", "Connection: keep-alive, close\r\n", false),
        ("1.0", "Connection: upgrade\r\n", false),
    ]

    @Test(arguments: keepAliveCases) func keepAlive(_ version: String, _ fields: String, _ expected: Bool) throws {
        let request = try #require(parseOne("GET / HTTP/\(version)\r\nHost: h\r\n\(fields)\r\n"))
        #expect(request.keepAlive == expected)
    }

    // MARK: Parser state

    @Test func hasPartialRequestTracksUnfinishedRequests() throws {
        var parser = HTTPRequestParser()
        #expect(!parser.hasPartialRequest)
        parser.feed(Array("GET / HTTP/1.1\r\nHo".utf8))
        #expect(try parser.next() == nil)
        #expect(parser.hasPartialRequest)
        parser.feed(Array("st: h\r\n\r\n".utf8))
        #expect(try parser.next() != nil)
        #expect(!parser.hasPartialRequest)
        parser.feed(Array("\r\n".utf8))
        #expect(try parser.next() == nil)
        #expect(!parser.hasPartialRequest, "empty lines between requests are not a request")
    }

    @Test func takeBufferedBytesAfterUpgrade() throws {
        var parser = HTTPRequestParser()
        let frame: [UInt8] = [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58, 0x0D, 0x0A]
        let head = "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        parser.feed(Array(head.utf8) + frame)
        let request = try #require(try parser.next())
        #expect(request.headers.tokens("Connection") == ["upgrade"])
        #expect(parser.takeBufferedBytes() == frame)
        #expect(!parser.hasPartialRequest)
        #expect(parser.takeBufferedBytes().isEmpty)
    }

    @Test func takeBufferedBytesReturnsRawBytesOfAPartlyParsedRequest() throws {
        var parser = HTTPRequestParser()
        let first = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
        let second = "GET /b HTTP/1.1\r\nHost: h\r\nX: 1\r\n"
        parser.feed(Array((first + second).utf8))
        #expect(try parser.next()?.path == "/a")
        #expect(try parser.next() == nil)
        #expect(parser.takeBufferedBytes() == Array(second.utf8))
    }

    @Test func expectContinue() throws {
        var parser = HTTPRequestParser()
        parser.feed(Array("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n".utf8))
        #expect(try parser.next() == nil)
        #expect(parser.expectsContinue)
        parser.acknowledgeContinue()
        #expect(!parser.expectsContinue)
        parser.feed(Array("ok".utf8))
        #expect(try parser.next()?.body == Array("ok".utf8))
        #expect(!parser.expectsContinue)
    }

    @Test func largeBodyFedInPiecesIsExact() throws {
        // Exercises compaction: many requests through one parser, fed in odd-sized pieces.
        var stream: [UInt8] = []
        var bodies: [[UInt8]] = []
        for i in 0..<50 {
            let body = (0..<(i * 37)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) }
            bodies.append(body)
            stream += Array("POST /\(i) HTTP/1.1\r\nHost: h\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
        }
        var parser = HTTPRequestParser()
        var received: [[UInt8]] = []
        var offset = 0
        var piece = 1
        while offset < stream.count {
            let end = min(stream.count, offset + piece)
            stream[offset..<end].withUnsafeBytes { parser.feed($0) }
            offset = end
            piece = piece * 3 % 97 + 1
            while let request = try parser.next() { received.append(request.body) }
        }
        #expect(received == bodies)
        #expect(!parser.hasPartialRequest)
    }
}
