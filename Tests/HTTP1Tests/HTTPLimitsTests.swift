// HTTPLimitsTests: every parser limit at N-1, N and N+1, at every split.

import HTTP1
import Testing

@Suite struct HTTPLimitsTests {
    /// A request-line of exactly `length` bytes: "GET /aaa… HTTP/1.1".
    static func requestLine(length: Int) -> String {
        "GET /" + String(repeating: "a", count: length - 14) + " HTTP/1.1"
    }

    @Test func defaults() {
        let limits = HTTPLimits()
        #expect(limits.maxRequestLineBytes == 8192)
        #expect(limits.maxHeaderBytes == 16384)
        #expect(limits.maxHeaderCount == 100)
        #expect(limits.maxBodyBytes == 1 << 20)
        #expect(limits.maxChunkLineBytes == 1024)
    }

    @Test(arguments: [(63, nil), (64, nil), (65, 414)] as [(Int, Int?)])
    func requestLineLimit(_ length: Int, _ status: Int?) {
        let line = Self.requestLine(length: length)
        #expect(line.utf8.count == length)
        let limits = HTTPLimits(maxRequestLineBytes: 64)
        #expect(failureStatus(line + "\r\nHost: h\r\n\r\n", limits: limits) == status)
        #expect(failureStatus(line + "\nHost: h\n\n", limits: limits) == status)
    }

    @Test func defaultRequestLineLimit() {
        for (length, status) in [(8191, nil), (8192, nil), (8193, 414)] as [(Int, Int?)] {
            let input = Self.requestLine(length: length) + "\r\nHost: h\r\n\r\n"
            #expect(parse([Array(input.utf8)]).status == status, "length \(length)")
        }
    }

    @Test func overlongRequestLineFailsBeforeItsEndArrives() {
        // limit + 1 bytes may still be the line plus its CR; limit + 2 cannot be.
        let limits = HTTPLimits(maxRequestLineBytes: 64)
        let prefix = Array(("GET /" + String(repeating: "a", count: 59)).utf8)  // 64 bytes
        #expect(parse([prefix + [0x0D]], limits: limits) == .parsed([], partial: true))
        #expect(parse([prefix + [0x61]], limits: limits) == .parsed([], partial: true))
        #expect(parse([prefix + [0x61, 0x61]], limits: limits).status == 414)
    }

    /// A header section whose field lines total exactly `bytes` bytes (without CRLFs).
    static func headerSection(bytes: Int) -> String {
        // "Host: h" is 7 bytes; the rest goes into one "X: …" field (3 bytes of overhead).
        "Host: h\r\nX: " + String(repeating: "v", count: bytes - 7 - 3) + "\r\n"
    }

    @Test(arguments: [(99, nil), (100, nil), (101, 431)] as [(Int, Int?)])
    func headerBytesLimit(_ bytes: Int, _ status: Int?) {
        let limits = HTTPLimits(maxHeaderBytes: 100)
        #expect(failureStatus("GET / HTTP/1.1\r\n" + Self.headerSection(bytes: bytes) + "\r\n", limits: limits) == status)
    }

    @Test func headerBytesLimitSpansManyFields() {
        let limits = HTTPLimits(maxHeaderBytes: 100)
        // 10 fields of 10 bytes: exactly 100.
        let fields = "Host: hhhh\r\n" + (1...9).map { "X\($0): vvvvvv\r\n" }.joined()
        #expect(failureStatus("GET / HTTP/1.1\r\n" + fields + "\r\n", limits: limits) == nil)
        #expect(failureStatus("GET / HTTP/1.1\r\n" + fields + "Y:\r\n\r\n", limits: limits) == 431)
    }

    @Test func overlongHeaderLineFailsBeforeItsEndArrives() {
        let limits = HTTPLimits(maxHeaderBytes: 100)
        let head = Array("GET / HTTP/1.1\r\nX: ".utf8)
        #expect(parse([head + Array(repeating: 0x76, count: 200)], limits: limits).status == 431)
    }

    @Test(arguments: [(9, nil), (10, nil), (11, 431)] as [(Int, Int?)])
    func headerCountLimit(_ count: Int, _ status: Int?) {
        let limits = HTTPLimits(maxHeaderCount: 10)
        let fields = "Host: h\r\n" + (1..<count).map { "X-\($0): v\r\n" }.joined()
        #expect(failureStatus("GET / HTTP/1.1\r\n" + fields + "\r\n", limits: limits) == status)
    }

    @Test(arguments: [(99, nil), (100, nil), (101, 413)] as [(Int, Int?)])
    func contentLengthBodyLimit(_ length: Int, _ status: Int?) {
        let limits = HTTPLimits(maxBodyBytes: 100)
        let body = String(repeating: "b", count: length)
        let outcome = parseEverySplit("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \(length)\r\n\r\n" + body, limits: limits)
        #expect(outcome.status == status)
        if status == nil { #expect(outcome.requests.first?.body.count == length) }
    }

    @Test func declaredOversizedBodyFailsBeforeTheBodyArrives() {
        let limits = HTTPLimits(maxBodyBytes: 100)
        let outcome = parse([Array("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n".utf8)], limits: limits)
        #expect(outcome.status == 413)
    }

    @Test(arguments: [(99, nil), (100, nil), (101, 413)] as [(Int, Int?)])
    func chunkedBodyLimit(_ length: Int, _ status: Int?) {
        let limits = HTTPLimits(maxBodyBytes: 100)
        // Two chunks, so the total (not one chunk) must hit the limit.
        let first = 50
        let second = length - first
        let body = "\(String(first, radix: 16))\r\n" + String(repeating: "a", count: first) + "\r\n"
            + "\(String(second, radix: 16))\r\n" + String(repeating: "b", count: second) + "\r\n0\r\n\r\n"
        let outcome = parseEverySplit(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + body, limits: limits)
        #expect(outcome.status == status)
        if status == nil { #expect(outcome.requests.first?.body.count == length) }
    }

    @Test(arguments: [(31, nil), (32, nil), (33, 400)] as [(Int, Int?)])
    func chunkLineLimit(_ length: Int, _ status: Int?) {
        let limits = HTTPLimits(maxChunkLineBytes: 32)
        let line = "1;" + String(repeating: "e", count: length - 2)
        let input = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\(line)\r\nx\r\n0\r\n\r\n"
        #expect(failureStatus(input, limits: limits) == status)
    }

    @Test(arguments: [(99, nil), (100, nil), (101, 431)] as [(Int, Int?)])
    func trailerBytesLimit(_ bytes: Int, _ status: Int?) {
        let limits = HTTPLimits(maxHeaderBytes: 100)
        let trailer = "T: " + String(repeating: "t", count: bytes - 3)
        let input = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\(trailer)\r\n\r\n"
        #expect(failureStatus(input, limits: limits) == status)
    }

    @Test(arguments: [(9, nil), (10, nil), (11, 431)] as [(Int, Int?)])
    func trailerCountLimit(_ count: Int, _ status: Int?) {
        let limits = HTTPLimits(maxHeaderCount: 10)
        let trailers = (0..<count).map { "T\($0): v\r\n" }.joined()
        let input = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\(trailers)\r\n"
        #expect(failureStatus(input, limits: limits) == status)
    }
}
