// StaticFilesTests: StaticFiles against a real temporary directory with files, subdirectories and hostile symlinks.

import Foundation
import HTTP1
import Server
import Testing

/// A temporary web root:
/// ```
/// tmp/outside.txt
/// tmp/www/{index.html, app.js, module.mjs, style.css, data.json, logo.png, font.woff2, notes.txt, blob.bin, .secret}
/// tmp/www/sub/{index.html, page.txt}     tmp/www/empty/
/// tmp/www/etc-link -> /etc   tmp/www/passwd-link -> /etc/passwd
/// tmp/www/outside-link -> ../outside.txt   tmp/www/inner-link.js -> app.js
/// tmp/www/noindex/index.html -> ../../outside.txt
/// ```
final class WebRoot {
    let base: URL
    let root: URL
    static let fixedDate = Date(timeIntervalSince1970: 1_700_000_000)  // Tue, 14 Nov 2023 22:13:20 GMT

    init() throws {
        let fm = FileManager.default
        base = fm.temporaryDirectory.appendingPathComponent("medic-static-\(UUID().uuidString)")
        root = base.appendingPathComponent("www")
        try fm.createDirectory(at: root.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent("empty"), withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent("noindex"), withIntermediateDirectories: true)
        try write("../outside.txt", "outside secret")
        try write("index.html", "<h1>home</h1>")
        try write("app.js", "console.log(1)")
        try write("module.mjs", "export {}")
        try write("style.css", "body{}")
        try write("data.json", "{\"a\":1}")
        try write("logo.png", [0x89, 0x50, 0x4E, 0x47])
        try write("font.woff2", [0x77, 0x4F, 0x46, 0x32])
        try write("notes.txt", "notes")
        try write("blob.bin", [0, 1, 2])
        try write(".secret", "token")
        try write("sub/index.html", "<h1>sub</h1>")
        try write("sub/page.txt", "page")
        try fm.createSymbolicLink(atPath: path("etc-link"), withDestinationPath: "/etc")
        try fm.createSymbolicLink(atPath: path("passwd-link"), withDestinationPath: "/etc/passwd")
        try fm.createSymbolicLink(atPath: path("outside-link"), withDestinationPath: "../outside.txt")
        try fm.createSymbolicLink(atPath: path("inner-link.js"), withDestinationPath: "app.js")
        try fm.createSymbolicLink(atPath: path("noindex/index.html"), withDestinationPath: "../../outside.txt")
    }

    deinit { try? FileManager.default.removeItem(at: base) }

    func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    func write(_ relative: String, _ text: String) throws { try write(relative, Array(text.utf8)) }

    func write(_ relative: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path(relative)))
        try FileManager.default.setAttributes([.modificationDate: Self.fixedDate], ofItemAtPath: path(relative))
    }
}

@Suite struct StaticFilesTests {
    let web: WebRoot
    let files: StaticFiles

    init() throws {
        web = try WebRoot()
        files = try StaticFiles(root: web.root.path)
    }

    func get(_ target: String, _ headers: HTTPHeaders = .init(), method: String = "GET") throws -> HTTPResponse {
        try #require(files.respond(to: HTTPRequest(method: method, target: target, headers: headers)))
    }

    func text(_ response: HTTPResponse) -> String { String(decoding: response.body, as: UTF8.self) }

    @Test(arguments: [
        ("/index.html", "text/html; charset=utf-8"), ("/app.js", "text/javascript; charset=utf-8"),
        ("/module.mjs", "text/javascript; charset=utf-8"), ("/style.css", "text/css; charset=utf-8"),
        ("/data.json", "application/json"), ("/logo.png", "image/png"), ("/font.woff2", "font/woff2"),
        ("/notes.txt", "text/plain; charset=utf-8"), ("/blob.bin", "application/octet-stream"),
        ("/sub/page.txt", "text/plain; charset=utf-8"), ("/inner-link.js", "text/javascript; charset=utf-8"),
    ])
    func servesFilesWithContentType(_ target: String, _ type: String) throws {
        let response = try get(target)
        #expect(response.status == 200)
        #expect(response.headers["Content-Type"] == type)
        #expect(response.headers["Cache-Control"] == "no-cache")
        #expect(response.headers["X-Content-Type-Options"] == "nosniff")
        #expect(response.headers["Last-Modified"] == "Tue, 14 Nov 2023 22:13:20 GMT")
        let etag = try #require(response.headers["ETag"])
        #expect(etag.hasPrefix("\"") && etag.hasSuffix("\"") && !etag.hasPrefix("W/"))
        let onDisk = try Data(contentsOf: URL(fileURLWithPath: web.path(String(target.dropFirst()))))
        #expect(response.body == Array(onDisk))
    }

    @Test func contentSecurityPolicyOnlyOnHTML() throws {
        let html = try get("/index.html")
        #expect(html.headers["Content-Security-Policy"]?.contains("default-src 'self'") == true)
        #expect(try get("/app.js").headers["Content-Security-Policy"] == nil)
        let custom = try StaticFiles(root: web.root.path, contentSecurityPolicy: "default-src 'none'")
        let response = try #require(custom.respond(to: HTTPRequest(method: "GET", target: "/")))
        #expect(response.headers["Content-Security-Policy"] == "default-src 'none'")
        let none = try StaticFiles(root: web.root.path, contentSecurityPolicy: nil)
        #expect(none.respond(to: HTTPRequest(method: "GET", target: "/"))?.headers["Content-Security-Policy"] == nil)
    }

    @Test func directoriesServeIndexHTML() throws {
        let home = try get("/")
        #expect(home.status == 200 && text(home) == "<h1>home</h1>")
        #expect(home.headers["Content-Type"] == "text/html; charset=utf-8")
        let sub = try get("/sub/")
        #expect(sub.status == 200 && text(sub) == "<h1>sub</h1>")
        #expect(try get("/sub/?x=1").status == 200)
    }

    @Test func directoryWithoutSlashRedirects() throws {
        let response = try get("/sub?x=1")
        #expect(response.status == 301)
        #expect(response.headers["Location"] == "/sub/?x=1")
    }

    /// `Location: //sub/` would be protocol-relative: a browser would go to the host `sub`.
    @Test(arguments: ["//sub", "///sub", "//sub?x=1", "/sub//"])
    func redirectNeverStartsWithTwoSlashes(target: String) throws {
        let response = try get(target)
        let location = response.headers["Location"]
        #expect(location == nil || location!.hasPrefix("/sub/") && !location!.hasPrefix("//"), "\(target) → \(location ?? "-")")
    }

    @Test(arguments: [
        "/missing.html", "/empty/", "/sub/missing", "/../outside.txt", "/%2e%2e/outside.txt", "/sub/%2e%2e/%2e%2e/outside.txt",
        "/..%2foutside.txt", "/etc-link/passwd", "/etc-link/", "/passwd-link", "/outside-link", "/noindex/",
        "/noindex/index.html", "/.secret", "/%2esecret", "/sub/..%5c..%5coutside.txt", "/%00", "/index.html%00.txt",
        "/index.html/",
    ])
    func notFound(_ target: String) throws {
        let response = try get(target)
        #expect(response.status == 404)
        #expect(!text(response).contains("secret"))
        #expect(!text(response).contains("root:"))
    }

    @Test func onlyGetAndHead() {
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "get"] {
            #expect(files.respond(to: HTTPRequest(method: method, target: "/index.html")) == nil, "\(method)")
        }
    }

    @Test func headHasTheSameHeadersAndNoBody() throws {
        let full = try get("/app.js")
        let head = try get("/app.js", method: "HEAD")
        #expect(head.status == 200)
        #expect(head.body.isEmpty)
        #expect(head.headers["Content-Length"] == String(full.body.count))
        for name in ["Content-Type", "ETag", "Last-Modified", "Cache-Control", "X-Content-Type-Options"] {
            #expect(head.headers[name] == full.headers[name], "\(name)")
        }
        let wire = String(decoding: head.encode(headOnly: true), as: UTF8.self)
        #expect(wire.hasSuffix("\r\n\r\n"))
        #expect(wire.contains("Content-Length: \(full.body.count)\r\n"))
        #expect(wire.components(separatedBy: "Content-Length").count == 2)
    }

    @Test func ifNoneMatchGives304() throws {
        let etag = try #require(try get("/style.css").headers["ETag"])
        for value in [etag, "W/\(etag)", "\"other\", \(etag)", "*"] {
            let response = try get("/style.css", ["If-None-Match": value])
            #expect(response.status == 304, "\(value)")
            #expect(response.body.isEmpty)
            #expect(response.headers["ETag"] == etag)
            let wire = String(decoding: response.encode(), as: UTF8.self)
            #expect(!wire.contains("Content-Length"))
            #expect(wire.hasSuffix("\r\n\r\n"))
        }
        #expect(try get("/style.css", ["If-None-Match": "\"other\""]).status == 200)
        #expect(try get("/style.css", ["If-None-Match": etag], method: "HEAD").status == 304)
    }

    @Test func ifModifiedSinceGives304() throws {
        #expect(try get("/notes.txt", ["If-Modified-Since": "Tue, 14 Nov 2023 22:13:20 GMT"]).status == 304)
        #expect(try get("/notes.txt", ["If-Modified-Since": "Wed, 15 Nov 2023 00:00:00 GMT"]).status == 304)
        let earlier = try get("/notes.txt", ["If-Modified-Since": "Tue, 14 Nov 2023 22:13:19 GMT"])
        #expect(earlier.status == 200 && text(earlier) == "notes")
        #expect(try get("/notes.txt", ["If-Modified-Since": "yesterday"]).status == 200)
    }

    @Test func ifNoneMatchTakesPrecedenceOverIfModifiedSince() throws {
        let headers: HTTPHeaders = [
            "If-None-Match": "\"stale\"", "If-Modified-Since": "Wed, 15 Nov 2023 00:00:00 GMT",
        ]
        #expect(try get("/notes.txt", headers).status == 200)
    }

    @Test func changedFilesAreReread() throws {
        let first = try get("/notes.txt")
        #expect(text(first) == "notes")
        #expect(files.cachedFileCount == 1)
        try web.write("notes.txt", "changed notes")
        let second = try get("/notes.txt")
        #expect(text(second) == "changed notes")
        #expect(second.headers["ETag"] != first.headers["ETag"])
        #expect(try get("/notes.txt", ["If-None-Match": first.headers["ETag"]!]).status == 200)
        #expect(files.cachedFileCount == 1)
    }

    @Test func newFilesAppearAndDeletedFilesDisappear() throws {
        #expect(try get("/late.txt").status == 404)
        try web.write("late.txt", "late")
        #expect(text(try get("/late.txt")) == "late")
        try FileManager.default.removeItem(atPath: web.path("late.txt"))
        #expect(try get("/late.txt").status == 404)
    }

    @Test func filesOverTheSizeLimitAreNotServed() throws {
        let small = try StaticFiles(root: web.root.path, maxFileBytes: 13)
        #expect(small.respond(to: HTTPRequest(method: "GET", target: "/index.html"))?.status == 200)  // 13 bytes
        try web.write("big.txt", String(repeating: "x", count: 14))
        #expect(small.respond(to: HTTPRequest(method: "GET", target: "/big.txt"))?.status == 404)
    }

    @Test func cacheStaysWithinItsBudget() throws {
        let tiny = try StaticFiles(root: web.root.path, maxCacheBytes: 20)
        for target in ["/index.html", "/app.js", "/style.css", "/notes.txt"] {
            #expect(tiny.respond(to: HTTPRequest(method: "GET", target: target))?.status == 200)
        }
        #expect(tiny.cachedFileCount <= 2)
    }

    @Test func rootMustBeAnExistingDirectory() {
        #expect(throws: StaticFilesError.self) { try StaticFiles(root: web.path("nope")) }
        #expect(throws: StaticFilesError.self) { try StaticFiles(root: web.path("notes.txt")) }
    }
}
