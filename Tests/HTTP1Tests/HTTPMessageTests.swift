// HTTPMessageTests: headers, request helpers and response encoding.

import HTTP1
import Testing

@Suite struct HTTPHeadersTests {
    @Test func lookupIsCaseInsensitiveAndOrdered() {
        var headers = HTTPHeaders()
        headers.add("Set-Cookie", "a=1")
        headers.add("content-type", "text/plain")
        headers.add("SET-COOKIE", "b=2")
        #expect(headers["set-cookie"] == "a=1")
        #expect(headers["Content-Type"] == "text/plain")
        #expect(headers["Missing"] == nil)
        #expect(headers.values("Set-Cookie") == ["a=1", "b=2"])
        #expect(headers.fields.map(\.name) == ["Set-Cookie", "content-type", "SET-COOKIE"])
        #expect(Array(headers).count == 3)
    }

    @Test func tokensSpanRepeatedFields() {
        let headers: HTTPHeaders = ["Connection": " Keep-Alive ,, Upgrade", "connection": "\tCLOSE"]
        #expect(headers.tokens("Connection") == ["keep-alive", "upgrade", "close"])
        #expect(headers.hasToken("connection", "Upgrade"))
        #expect(!headers.hasToken("connection", "te"))
        #expect(headers.tokens("Missing").isEmpty)
    }

    @Test func setAndRemove() {
        var headers: HTTPHeaders = ["A": "1", "B": "2"]
        headers.add("a", "3")
        headers.set("A", "4")
        #expect(headers.values("a") == ["4"])
        #expect(headers.fields.map(\.name) == ["B", "A"])
        headers.remove("b")
        #expect(headers.count == 1)
        #expect(!headers.contains("B"))
    }
}

@Suite struct HTTPRequestHelpersTests {
    @Test func queryItemsAreFormDecoded() {
        let request = HTTPRequest(method: "GET", target: "/s?q=hello+world&x=%2Fa%26b&empty&x=second&bad=%zz1&u=%C3%A9")
        let items = request.queryItems()
        #expect(items["q"] == "hello world")
        #expect(items["x"] == "/a&b", "first value wins")
        #expect(items["empty"] == "")
        #expect(items["bad"] == "%zz1", "invalid escapes are kept literally")
        #expect(items["u"] == "é")
        #expect(request.queryItemList().count == 6)
    }

    @Test func noQuery() {
        let request = HTTPRequest(method: "GET", target: "/plain")
        #expect(request.query == nil)
        #expect(request.queryItems().isEmpty)
        let empty = HTTPRequest(method: "GET", target: "/plain?")
        #expect(empty.query == "")
        #expect(empty.path == "/plain")
    }

    @Test func decodedPath() {
        #expect(HTTPRequest(method: "GET", target: "/a%20b/c%C3%A9?x").decodedPath == "/a b/cé")
        #expect(HTTPRequest(method: "GET", target: "/a+b").decodedPath == "/a+b", "+ is literal in paths")
        #expect(HTTPRequest(method: "GET", target: "/a%2").decodedPath == nil)
        #expect(HTTPRequest(method: "GET", target: "/a%FF").decodedPath == nil, "not UTF-8")
        #expect(HTTPRequest(method: "GET", target: "/a%2").path == "/a%2", "path stays raw")
    }
}

@Suite struct HTTPResponseTests {
    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func textResponse() {
        let encoded = HTTPResponse.text(200, "hi").encode()
        #expect(text(encoded) == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nhi")
    }

    @Test func jsonResponseWithDateAndClose() {
        let encoded = HTTPResponse.json(201, Array("{}".utf8)).encode(keepAlive: false, date: "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(
            text(encoded)
                == "HTTP/1.1 201 Created\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: application/json\r\n"
                + "Content-Length: 2\r\nConnection: close\r\n\r\n{}")
    }

    @Test func headOnlyKeepsContentLength() {
        let encoded = HTTPResponse.text(200, "hello").encode(headOnly: true)
        #expect(text(encoded).hasSuffix("Content-Length: 5\r\n\r\n"))
    }

    @Test func explicitContentLengthIsNotDuplicated() {
        let response = HTTPResponse(status: 200, headers: ["Content-Length": "42"])
        #expect(text(response.encode(headOnly: true)) == "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n")
    }

    @Test(arguments: [101, 204, 304]) func bodilessStatusesGetNoContentLengthOrBody(_ status: Int) {
        let encoded = HTTPResponse(status: status, headers: ["ETag": "\"x\""], body: Array("ignored".utf8)).encode()
        #expect(text(encoded) == "HTTP/1.1 \(status) \(HTTPStatus.reason(status))\r\nETag: \"x\"\r\n\r\n")
    }

    @Test func existingDateAndCloseAreKept() {
        let response = HTTPResponse(status: 200, headers: ["Date": "d", "Connection": "close"])
        #expect(
            text(response.encode(keepAlive: false, date: "other"))
                == "HTTP/1.1 200 OK\r\nDate: d\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func headerInjectionIsNeutralized() {
        let response = HTTPResponse(status: 302, headers: ["Location": "/x\r\nSet-Cookie: evil=1"])
        #expect(text(response.encode()) == "HTTP/1.1 302 Found\r\nLocation: /x  Set-Cookie: evil=1\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func encodedResponseRoundTripsThroughARequestLikeParse() {
        // The header block we emit is valid field syntax: re-parse it as a request's fields.
        let response = HTTPResponse(status: 200, headers: ["X-A": "1", "x-b": "two words"], body: Array("body".utf8))
        let encoded = text(response.encode())
        let fields = encoded.split(separator: "\r\n\r\n", maxSplits: 1)[0].split(separator: "\r\n").dropFirst()
        let outcome = parse([Array(("GET / HTTP/1.1\r\nHost: h\r\n" + fields.joined(separator: "\r\n") + "\r\n\r\nbody").utf8)])
        #expect(outcome.requests.first?.headers["X-B"] == "two words")
        #expect(outcome.requests.first?.body == Array("body".utf8))
    }

    @Test func reasons() {
        #expect(HTTPStatus.reason(404) == "Not Found")
        #expect(HTTPStatus.reason(413) == "Content Too Large")
        #expect(HTTPStatus.reason(431) == "Request Header Fields Too Large")
        #expect(HTTPStatus.reason(505) == "HTTP Version Not Supported")
        #expect(HTTPStatus.reason(499) == "Client Error")
    }

    @Test func errorResponse() {
        var parser = HTTPRequestParser()
        parser.feed(Array("GET / HTTP/2.0\r\n\r\n".utf8))
        do {
            _ = try parser.next()
            Issue.record("expected an error")
        } catch {
            let response = HTTPResponse.error(error)
            #expect(response.status == 505)
            #expect(response.headers["Content-Type"] == "text/plain; charset=utf-8")
        }
    }
}
