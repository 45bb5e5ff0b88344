// HTTPSupportTests: HTTP-date, media types and request-path sanitizing.

import HTTP1
import Testing

@Suite struct HTTPDateTests {
    @Test func formatsIMFFixdate() {
        #expect(HTTPDate.format(secondsSince1970: 784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(secondsSince1970: 0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(secondsSince1970: 951_782_400) == "Tue, 29 Feb 2000 00:00:00 GMT")
        #expect(HTTPDate.format(secondsSince1970: -1) == "Wed, 31 Dec 1969 23:59:59 GMT")
        #expect(HTTPDate.format(secondsSince1970: 4_102_444_799) == "Thu, 31 Dec 2099 23:59:59 GMT")
    }

    @Test func parsesAllThreeFormats() {
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Sun Nov  6 08:49:37 1994") == 784_111_777)
        #expect(HTTPDate.parse("Thu Feb 29 00:00:00 2024") == 1_709_164_800)
    }

    @Test(arguments: [
        "", "garbage", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT", "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun, 06 Nox 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT ", "Sun, 29 Feb 2100 00:00:00 GMT",
    ])
    func rejectsInvalidDates(_ s: String) {
        #expect(HTTPDate.parse(s) == nil)
    }

    @Test func roundTrips() {
        var t: Int64 = -86_400 * 366
        while t < 5_000_000_000 {
            #expect(HTTPDate.parse(HTTPDate.format(secondsSince1970: t)) == t)
            t += 7_654_321
        }
    }
}

@Suite struct MIMETypeTests {
    @Test(arguments: [
        ("html", "text/html; charset=utf-8"), ("css", "text/css; charset=utf-8"),
        ("js", "text/javascript; charset=utf-8"), ("mjs", "text/javascript; charset=utf-8"),
        ("json", "application/json"), ("svg", "image/svg+xml"), ("png", "image/png"), ("jpg", "image/jpeg"),
        ("ico", "image/x-icon"), ("woff2", "font/woff2"), ("txt", "text/plain; charset=utf-8"),
        ("map", "application/json"), ("wasm", "application/wasm"), ("HTML", "text/html; charset=utf-8"),
        (".png", "image/png"), ("exe", "application/octet-stream"), ("", "application/octet-stream"),
    ])
    func mapping(_ ext: String, _ type: String) {
        #expect(MIMEType.forExtension(ext) == type)
    }
}

@Suite struct PathSanitizerTests {
    @Test(arguments: [
        "/../etc/passwd", "/%2e%2e/", "/a/%2E%2E/%2e%2e/x", "/..%2f..%2f", "/%00", "\\..\\", "/\\..\\",
        "/a/..", "/a/../b", "/%2e%2E", "/.%2e/x", "/a%2fb", "/a%5cb", "/a\\b", "/a%", "/a%4", "/a%zz",
        "/%ff", "/a%0a", "relative", "", "/a%7f",
    ])
    func hostilePathsAreRefused(_ path: String) {
        #expect(PathSanitizer.relativeSegments(path) == nil)
    }

    @Test(arguments: [
        ("/", []), ("/index.html", ["index.html"]), ("//a///b/", ["a", "b"]), ("/./a/./b", ["a", "b"]),
        ("/%2e/a", ["a"]), ("/a%20b/c%C3%A9.txt", ["a b", "cé.txt"]), ("/...", ["..."]), ("/..a/b..", ["..a", "b.."]),
        ("/a+b", ["a+b"]),
    ] as [(String, [String])])
    func normalPathsAreNormalized(_ path: String, _ segments: [String]) {
        #expect(PathSanitizer.relativeSegments(path) == segments)
    }
}
