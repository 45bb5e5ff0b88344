// StaticFiles: serves the files under one directory over GET/HEAD, with validators and a memory cache.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
public import HTTP1

/// Serves static files from a root directory.
///
/// Safety (DESIGN invariant 6): the request path goes through `PathSanitizer` (no `..`, no
/// encoded slashes, backslashes or NULs), dotfiles (`.git`, `.env`) are never served, and
/// the candidate is resolved with `realpath` and must stay under the resolved root, so a
/// symlink pointing outside is a 404 like a missing file. The final open uses `O_NOFOLLOW`.
///
/// Caching and the loop (invariant 7): files are read synchronously, but each is read once
/// and kept in memory keyed by its resolved path. Every request revalidates the entry with a
/// `realpath` + `stat` (metadata only, normally served from the kernel's dentry/inode
/// caches) and rereads the file only when its size, mtime or inode changed. So the loop
/// touches file contents only on first use or after a change. Files above `maxFileBytes`
/// are not served; the cache holds at most `maxCacheBytes`, evicting arbitrary entries.
///
/// Validators (RFC 9110 §8.8): a strong ETag from size, mtime (ns) and inode, and
/// Last-Modified. If-None-Match takes precedence over If-Modified-Since (§13.2.2); a match
/// answers 304 without body. Responses carry `Cache-Control: no-cache` (always revalidate,
/// cheap thanks to the validators) and `X-Content-Type-Options: nosniff`; HTML also carries
/// the Content-Security-Policy.
///
/// Not Sendable: one instance lives on the loop thread.
public final class StaticFiles {
    /// The resolved (symlink-free, absolute) root directory.
    public let root: String
    public let contentSecurityPolicy: String?
    /// Largest file served; larger files answer 404. Default 8 MiB.
    public let maxFileBytes: Int
    /// Total bytes of file contents kept in memory. Default 64 MiB.
    public let maxCacheBytes: Int

    /// A file's contents and the metadata that identifies this version of it.
    private struct CachedFile {
        var size: Int
        var mtimeSeconds: Int64
        var mtimeNanoseconds: Int64
        var inode: UInt64
        var body: [UInt8]
        var etag: String
        var lastModified: String
        var contentType: String
    }

    private var cache: [String: CachedFile] = [:]
    private var cachedBytes = 0

    /// Throws `StaticFilesError` if `root` does not exist or is not a directory.
    public init(
        root: String,
        contentSecurityPolicy: String? =
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        maxFileBytes: Int = 8 << 20,
        maxCacheBytes: Int = 64 << 20
    ) throws {
        guard let resolved = Self.realPath(root) else { throw StaticFilesError(.rootNotFound, path: root) }
        guard let info = Self.status(resolved), info.isDirectory else {
            throw StaticFilesError(.rootNotDirectory, path: root)
        }
        self.root = resolved
        self.contentSecurityPolicy = contentSecurityPolicy
        self.maxFileBytes = maxFileBytes
        self.maxCacheBytes = maxCacheBytes
    }

    /// GET/HEAD only (else nil, so the router can answer 405 or route elsewhere). Returns
    /// 404 for missing files, escapes, symlinks pointing outside root, dotfiles, directories
    /// without index.html and files over `maxFileBytes`; "/" and directories serve their
    /// index.html. A directory requested without its trailing slash is redirected (301) to
    /// the slash form (repeated slashes collapsed: never a protocol-relative `//host`), so
    /// relative links inside its index.html resolve correctly.
    public func respond(to request: HTTPRequest) -> HTTPResponse? {
        guard request.method == "GET" || request.method == "HEAD" else { return nil }
        guard let segments = PathSanitizer.relativeSegments(request.path),
            !segments.contains(where: { $0.hasPrefix(".") })
        else { return Self.notFound() }

        let candidate = segments.isEmpty ? root : root + "/" + segments.joined(separator: "/")
        guard var resolved = contained(candidate), var info = Self.status(resolved) else { return Self.notFound() }
        if info.isDirectory {
            if !request.path.hasSuffix("/") {
                // Repeated slashes collapsed: a Location starting with "//" is protocol-relative (RFC 3986
                // §4.2), so `GET //evil.example` must not answer `Location: //evil.example/`.
                let location = Self.collapsingSlashes(request.path) + "/" + (request.query.map { "?" + $0 } ?? "")
                return HTTPResponse(status: 301, headers: ["Location": location, "Cache-Control": "no-cache"])
            }
            guard let index = contained(resolved + "/index.html"), let indexInfo = Self.status(index) else {
                return Self.notFound()
            }
            resolved = index
            info = indexInfo
        } else if request.path.hasSuffix("/") {
            return Self.notFound()  // "/file.txt/" names a directory that does not exist
        }
        guard info.isRegularFile, info.size <= maxFileBytes, let file = load(resolved, info) else {
            return Self.notFound()
        }
        return response(for: file, request: request)
    }

    /// Drops every cached file (for tests and for a future "reload" command).
    public func purgeCache() {
        cache.removeAll()
        cachedBytes = 0
    }

    /// The number of files currently cached.
    public var cachedFileCount: Int { cache.count }

    // MARK: - Responses

    private func response(for file: CachedFile, request: HTTPRequest) -> HTTPResponse {
        var headers: HTTPHeaders = [
            "ETag": file.etag,
            "Last-Modified": file.lastModified,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        ]
        if notModified(file, request.headers) {
            // RFC 9110 §15.4.5: a 304 carries the validators and Cache-Control a 200 would.
            return HTTPResponse(status: 304, headers: headers)
        }
        headers.add("Content-Type", file.contentType)
        if let contentSecurityPolicy, file.contentType.hasPrefix("text/html") {
            headers.add("Content-Security-Policy", contentSecurityPolicy)
        }
        if request.method == "HEAD" {
            // RFC 9110 §9.3.2: the same fields as GET, no content. The length is explicit
            // because the body is empty.
            headers.add("Content-Length", String(file.size))
            return HTTPResponse(status: 200, headers: headers)
        }
        return HTTPResponse(status: 200, headers: headers, body: file.body)
    }

    /// RFC 9110 §13.1.2 / §13.1.3 / §13.2.2: If-None-Match (weak comparison) decides when
    /// present; otherwise If-Modified-Since, ignored when it is not a valid HTTP-date.
    private func notModified(_ file: CachedFile, _ headers: HTTPHeaders) -> Bool {
        let ifNoneMatch = headers.values("If-None-Match")
        if !ifNoneMatch.isEmpty {
            let ours = Self.opaqueTag(file.etag)
            for value in ifNoneMatch {
                for member in value.split(separator: ",") {
                    let tag = Self.trim(member)
                    if tag == "*" || Self.opaqueTag(tag) == ours { return true }
                }
            }
            return false
        }
        if let since = headers["If-Modified-Since"], let date = HTTPDate.parse(since) {
            return file.mtimeSeconds <= date
        }
        return false
    }

    /// `path` with every run of slashes reduced to one.
    static func collapsingSlashes(_ path: String) -> String {
        guard path.contains("//") else { return path }
        var out = ""
        out.reserveCapacity(path.utf8.count)
        var previousWasSlash = false
        for character in path {
            if character == "/" && previousWasSlash { continue }
            previousWasSlash = character == "/"
            out.append(character)
        }
        return out
    }

    private static func notFound() -> HTTPResponse {
        var response = HTTPResponse.text(404, "Not Found\n")
        response.headers.add("X-Content-Type-Options", "nosniff")
        return response
    }

    /// The opaque-tag of an entity-tag, without a weakness prefix (`W/"x"` → `"x"`).
    private static func opaqueTag<S: StringProtocol>(_ tag: S) -> Substring {
        let s = Substring(tag)
        return s.hasPrefix("W/") ? s.dropFirst(2) : s
    }

    private static func trim(_ s: Substring) -> Substring {
        var t = s
        while let f = t.first, f == " " || f == "\t" { t = t.dropFirst() }
        while let l = t.last, l == " " || l == "\t" { t = t.dropLast() }
        return t
    }

    // MARK: - Files

    /// `path` resolved with realpath if it stays within the root, else nil.
    private func contained(_ path: String) -> String? {
        guard let resolved = Self.realPath(path) else { return nil }
        if resolved == root { return resolved }
        let prefix = root == "/" ? "/" : root + "/"
        return resolved.hasPrefix(prefix) ? resolved : nil
    }

    /// The cached contents of `path` if `info` still matches them, else a fresh read.
    private func load(_ path: String, _ info: FileStatus) -> CachedFile? {
        if let entry = cache[path], entry.size == info.size, entry.mtimeSeconds == info.mtimeSeconds,
            entry.mtimeNanoseconds == info.mtimeNanoseconds, entry.inode == info.inode
        {
            return entry
        }
        if let stale = cache.removeValue(forKey: path) { cachedBytes -= stale.body.count }
        guard let (body, opened) = Self.readFile(path, maxBytes: maxFileBytes) else { return nil }
        let ext = path.split(separator: "/").last.flatMap { name in
            name.lastIndex(of: ".").map { String(name[name.index(after: $0)...]) }
        }
        let etag = "\"\(String(opened.size, radix: 16))-\(String(opened.mtimeSeconds, radix: 16))."
            + "\(String(opened.mtimeNanoseconds, radix: 16))-\(String(opened.inode, radix: 16))\""
        let entry = CachedFile(
            size: body.count, mtimeSeconds: opened.mtimeSeconds, mtimeNanoseconds: opened.mtimeNanoseconds,
            inode: opened.inode, body: body, etag: etag,
            lastModified: HTTPDate.format(secondsSince1970: opened.mtimeSeconds),
            contentType: MIMEType.forExtension(ext ?? ""))
        store(entry, at: path)
        return entry
    }

    private func store(_ entry: CachedFile, at path: String) {
        guard entry.body.count <= maxCacheBytes else { return }
        while cachedBytes + entry.body.count > maxCacheBytes, let victim = cache.first {
            cache.removeValue(forKey: victim.key)
            cachedBytes -= victim.value.body.count
        }
        cache[path] = entry
        cachedBytes += entry.body.count
    }

    /// The metadata we need from stat(2).
    private struct FileStatus {
        var isDirectory: Bool
        var isRegularFile: Bool
        var size: Int
        var mtimeSeconds: Int64
        var mtimeNanoseconds: Int64
        var inode: UInt64

        init(_ st: stat) {
            isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
            isRegularFile = (st.st_mode & S_IFMT) == S_IFREG
            size = Int(st.st_size)
            mtimeSeconds = Int64(st.st_mtim.tv_sec)
            mtimeNanoseconds = Int64(st.st_mtim.tv_nsec)
            inode = UInt64(st.st_ino)
        }
    }

    private static func status(_ path: String) -> FileStatus? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileStatus(st)
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Reads a whole regular file, with the metadata of the file actually opened (fstat on
    /// the descriptor, so a swap between stat and open is caught). `O_NOFOLLOW` refuses a
    /// symlink planted after `realpath` checked the path.
    private static func readFile(_ path: String, maxBytes: Int) -> ([UInt8], FileStatus)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        let info = FileStatus(st)
        guard info.isRegularFile, info.size <= maxBytes else { return nil }
        var bytes = [UInt8](repeating: 0, count: info.size)
        var filled = 0
        while filled < info.size {
            let n = bytes.withUnsafeMutableBytes { buffer in
                read(fd, buffer.baseAddress! + filled, info.size - filled)
            }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            if n == 0 { break }  // the file shrank while we read; serve what is there
            filled += n
        }
        bytes.removeLast(info.size - filled)
        var actual = info
        actual.size = filled
        return (bytes, actual)
    }
}

/// Why `StaticFiles` could not be created.
public struct StaticFilesError: Error, Sendable, CustomStringConvertible {
    enum Kind: Sendable {
        case rootNotFound
        case rootNotDirectory
    }

    let kind: Kind
    /// The root path as given.
    public let path: String

    init(_ kind: Kind, path: String) {
        self.kind = kind
        self.path = path
    }

    public var description: String {
        switch kind {
        case .rootNotFound: "static root \(path) does not exist"
        case .rootNotDirectory: "static root \(path) is not a directory"
        }
    }
}
