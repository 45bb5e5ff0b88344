// SandboxSecurityTests: readWorkspaceFile never follows a symbolic link nor blocks on a FIFO. Real files.
import EventLoop
import Glibc
import Sandbox
import Testing

/// Runs the loop until `condition` holds (a safety net against hangs, not a timing assertion).
private func spin(_ loop: EventLoop, until condition: () -> Bool) -> Bool {
    let deadline = monotonicNanoseconds() + 120_000_000_000
    while !condition() {
        if monotonicNanoseconds() > deadline { return false }
        loop.runOnce(maxWaitMilliseconds: 50)
    }
    return true
}

/// Runs `sh -c command` in `directory` to completion (test setup); returns its stdout.
@discardableResult
private func sh(_ loop: EventLoop, _ command: String, in directory: String) throws -> String {
    var out: [UInt8] = []
    var status: ProcessExit?
    _ = try ChildProcess(
        loop: loop, executable: "/bin/sh", arguments: ["-c", command], workingDirectory: directory,
        onOutput: { stream, bytes in if stream == .stdout { out.append(contentsOf: bytes) } }, onExit: { status = $0 })
    #expect(spin(loop) { status != nil })
    #expect(status == .exited(0), "`\(command)` failed")
    return String(decoding: out, as: UTF8.self)
}

private func scratch(_ name: String) -> String {
    let path = "/tmp/medic-sandbox-security-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    mkdir(path, 0o755)
    return path
}

private func read(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_NOFOLLOW)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: 1 << 16)
    let n = Glibc.read(fd, &bytes, bytes.count)
    return n < 0 ? nil : String(decoding: bytes[0..<n], as: UTF8.self)
}

private func exists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
}

@Suite struct SandboxSecurityTests {
    @Test func readWorkspaceFileNeverFollowsALinkNorOpensAFIFO() throws {
        let loop = try EventLoop()
        let root = scratch("read")
        try sh(loop, """
            printf 'hello\\n' > a.txt && printf '0123456789' > ten.txt && mkdir sub && printf 'in\\n' > sub/b.txt &&
            ln -s /proc/self/environ env.txt && ln -s a.txt inner.txt && ln -s /etc dirlink && ln -s sub sublink &&
            mkfifo fifo.txt
            """, in: root)
        #expect(readWorkspaceFile("a.txt", in: root, maxBytes: 100) == .file(bytes: Array("hello\n".utf8), size: 6))
        #expect(readWorkspaceFile("sub/b.txt", in: root, maxBytes: 100) == .file(bytes: Array("in\n".utf8), size: 3))
        let cut = readWorkspaceFile("ten.txt", in: root, maxBytes: 4)
        #expect(cut == .file(bytes: Array("0123".utf8), size: 10) && cut.isTruncated)
        #expect(!readWorkspaceFile("ten.txt", in: root, maxBytes: 10).isTruncated)
        // Links are named, never followed — to the outside or inside the tree, as the file or as a directory.
        #expect(readWorkspaceFile("env.txt", in: root, maxBytes: 100) == .symbolicLink(prefix: "env.txt"))
        #expect(readWorkspaceFile("inner.txt", in: root, maxBytes: 100) == .symbolicLink(prefix: "inner.txt"))
        #expect(readWorkspaceFile("dirlink/passwd", in: root, maxBytes: 100) == .symbolicLink(prefix: "dirlink"))
        #expect(readWorkspaceFile("sublink/b.txt", in: root, maxBytes: 100) == .symbolicLink(prefix: "sublink"))
        #expect(readWorkspaceFile("env.txt", in: root, maxBytes: 100).unreadableNote("env.txt") == "env.txt is a symbolic link (not followed)")
        // A FIFO with no writer would block an open or a read forever: it is named, not opened.
        #expect(readWorkspaceFile("fifo.txt", in: root, maxBytes: 100) == .notRegularFile(kind: "FIFO (named pipe)"))
        #expect(readWorkspaceFile("sub", in: root, maxBytes: 100) == .notRegularFile(kind: "directory"))
        #expect(readWorkspaceFile("missing.txt", in: root, maxBytes: 100) == .missing)
        #expect(readWorkspaceFile("a.txt/x", in: root, maxBytes: 100) == .missing)
        for hostile in ["../etc/passwd", "/etc/passwd", "sub/../a.txt", ".git/config", "a\0b"] {
            guard case .refused(let error) = readWorkspaceFile(hostile, in: root, maxBytes: 100) else {
                Issue.record("\(hostile) was not refused")
                continue
            }
            #expect(error.code == "invalid_path")
        }
        try sh(loop, "rm -rf '\(root)'", in: "/tmp")
    }
}
