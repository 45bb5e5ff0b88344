// Socket: non-blocking TCP listen/accept/connect/read/writev on raw fds (IPv4 and IPv6).
import CSystem
import Glibc

/// A parsed `HOST:PORT` (`[::1]:8080`, `127.0.0.1:0`, `localhost:80`, `:8080` = all interfaces).
public struct SocketAddressSpec: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; nil when malformed (no port, a port that is not 0…65535 in plain decimal digits,
    /// an unbracketed IPv6 address, empty brackets).
    public init?(parsing text: String) {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard !host.isEmpty, rest.hasPrefix(":"), let port = Self.parsePort(rest.dropFirst()) else { return nil }
            self.port = port
        } else {
            guard let colon = text.lastIndex(of: ":"), let port = Self.parsePort(text[text.index(after: colon)...]) else { return nil }
            let h = String(text[..<colon])
            guard !h.contains(":") else { return nil }
            host = h.isEmpty ? "0.0.0.0" : h
            self.port = port
        }
    }

    /// Decimal digits only: `UInt16(_:)` alone would also take a sign (`+80`).
    private static func parsePort(_ text: Substring) -> UInt16? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return UInt16(text)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Raw socket operations. Every call goes through `syscall`.
public enum Socket {
    /// Binds and listens; returns the fd and the actual port (useful with port 0).
    public static func listen(_ spec: SocketAddressSpec, backlog: Int32 = 4096, reusePort: Bool = false) throws(SystemError) -> (fd: Int32, port: UInt16) {
        let host = spec.host == "localhost" ? "127.0.0.1" : spec.host
        let isV6 = host.contains(":")
        let fd = try syscallChecked("socket") { csys_socket_stream(isV6 ? AF_INET6 : AF_INET) }
        do {
            _ = try syscallChecked("setsockopt(SO_REUSEADDR)") { csys_set_int_sockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1) }
            if reusePort {
                _ = try syscallChecked("setsockopt(SO_REUSEPORT)") { csys_set_int_sockopt(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
            }
            try withSockaddr(host: host, port: spec.port) { (addr, len) throws(SystemError) in
                _ = try syscallChecked("bind \(spec)") { Glibc.bind(fd, addr, len) }
            }
            _ = try syscallChecked("listen") { Glibc.listen(fd, backlog) }
            return (fd, try localPort(fd))
        } catch {
            closeFD(fd)
            throw error
        }
    }

    /// Starts a non-blocking connect; the fd becomes writable when connected (check `pendingError`).
    public static func connect(_ spec: SocketAddressSpec) throws(SystemError) -> Int32 {
        let host = spec.host == "localhost" ? "127.0.0.1" : spec.host
        let fd = try syscallChecked("socket") { csys_socket_stream(host.contains(":") ? AF_INET6 : AF_INET) }
        do {
            try withSockaddr(host: host, port: spec.port) { (addr, len) throws(SystemError) in
                let rc = Glibc.connect(fd, addr, len)
                if rc != 0 && csys_errno() != EINPROGRESS { throw SystemError("connect \(spec)", errno: csys_errno()) }
            }
            return fd
        } catch {
            closeFD(fd)
            throw error
        }
    }

    /// Accepts one connection (non-blocking, close-on-exec), with TCP_NODELAY set.
    public static func accept(_ listener: Int32) throws(SystemError) -> IOResult<Int32> {
        let result = try syscall("accept4") { csys_accept(listener) }
        if case .processed(let fd) = result { setNoDelay(fd) }
        return result
    }

    public static func setNoDelay(_ fd: Int32) {
        _ = csys_set_int_sockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
    }

    /// Reads into `buffer`; `.processed(0)` is EOF.
    @inline(__always)
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try syscall("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    /// The SO_ERROR of a socket (0 when a non-blocking connect succeeded).
    public static func pendingError(_ fd: Int32) -> Int32 {
        var value: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &len)
        return value
    }

    /// The local port bound to `fd`.
    public static func localPort(_ fd: Int32) throws(SystemError) -> UInt16 {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { pointer throws(SystemError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { addr throws(SystemError) in
                try syscallChecked("getsockname") { getsockname(fd, addr, &len) }
            }
        }
        if Int32(storage.ss_family) == AF_INET6 {
            return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) } }
        }
        return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) } }
    }

    private static func withSockaddr(host: String, port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) throws(SystemError) -> Void) throws(SystemError) {
        if host.contains(":") {
            var addr = sockaddr_in6()
            addr.sin6_family = sa_family_t(AF_INET6)
            addr.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, host, &addr.sin6_addr) == 1 else { throw SystemError("inet_pton(\(host))", errno: EINVAL) }
            try withUnsafePointer(to: &addr) { p throws(SystemError) in
                try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { a throws(SystemError) in try body(a, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = port.bigEndian
            guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { throw SystemError("inet_pton(\(host))", errno: EINVAL) }
            try withUnsafePointer(to: &addr) { p throws(SystemError) in
                try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { a throws(SystemError) in try body(a, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
    }
}

/// A reusable iovec array for gathered writes (one per loop: filled, written, forgotten).
public final class IOVectors {
    public let capacity: Int
    private let vectors: UnsafeMutablePointer<iovec>

    /// `capacity` is capped at IOV_MAX (1024 on Linux).
    public init(capacity: Int = 1024) {
        self.capacity = min(capacity, 1024)
        vectors = .allocate(capacity: self.capacity)
    }

    deinit { vectors.deallocate() }

    @inline(__always)
    public func set(_ index: Int, base: UnsafeRawPointer, count: Int) {
        vectors[index] = iovec(iov_base: UnsafeMutableRawPointer(mutating: base), iov_len: count)
    }

    /// writev(2) of the first `count` vectors.
    @inline(__always)
    public func write(fd: Int32, count: Int) throws(SystemError) -> IOResult<Int> {
        try syscall("writev") { Glibc.writev(fd, vectors, Int32(count)) }
    }
}
