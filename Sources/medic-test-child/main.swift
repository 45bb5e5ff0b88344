// medic-test-child: a helper process for child-process and sandbox tests (prints, floods, sleeps, exits as told).
import Glibc

/// Writes all of `bytes` to `fd`, retrying short writes and EINTR (a pipe may accept less than asked).
func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            exit(70)
        }
        offset += n
    }
}

func out(_ text: String) { writeAll(1, Array(text.utf8)) }
func err(_ text: String) { writeAll(2, Array(text.utf8)) }

/// Sleeps `seconds` (fractional) with nanosleep, resuming after signals.
func sleepSeconds(_ seconds: Double) {
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

func usage() -> Never {
    err("""
        usage: medic-test-child MODE [ARGS]
          print-lines N                 N lines "line 1".."line N" on stdout
          stdout-stderr                 known interleaved lines on stdout and stderr
          flood BYTES                   BYTES of 99-byte lines ("x"*98 + newline) on stdout
          sleep SECONDS [MARKER]        sleeps (MARKER only tags the command line)
          exit CODE                     exits with CODE
          spawn-grandchild-and-sleep [MARKER]
                                        forks `medic-test-child sleep 1000 MARKER`, prints its pid, sleeps
          orphan-grandchild [MARKER]    forks `medic-test-child sleep 1000 MARKER` (holding stdout), prints its pid, exits 0
          partial-line                  prints "no newline" without a newline, then sleeps 1000 s
          invalid-utf8                  prints a line holding the bytes FF FE between "a" and "b"
          crash                         raises SIGSEGV
          abort                         calls abort() (SIGABRT)
          write-file PATH               writes "x" to PATH (exit 0) or reports the errno (exit 1)
          connect PORT                  TCP connect to 127.0.0.1:PORT (exit 0 connected, 3 refused/unreachable)

        """)
    exit(64)
}

let args = Array(CommandLine.arguments.dropFirst())
guard let mode = args.first else { usage() }

switch mode {
case "print-lines":
    guard args.count >= 2, let n = Int(args[1]) else { usage() }
    var text = ""
    var i = 1
    while i <= n {
        text += "line \(i)\n"
        if text.utf8.count > 64 * 1024 { out(text); text = "" }
        i += 1
    }
    out(text)
case "stdout-stderr":
    // Interleaved, each write a whole line: the order within each stream is what tests check.
    out("out 1\n"); err("err 1\n"); out("out 2\n"); err("err 2\n"); out("out 3\n")
case "flood":
    guard args.count >= 2, let total = Int(args[1]) else { usage() }
    let line = Array(repeating: UInt8(ascii: "x"), count: 98) + [UInt8(ascii: "\n")]
    var chunk: [UInt8] = []
    for _ in 0..<(64 * 1024 / line.count) { chunk += line }
    var written = 0
    while written + chunk.count <= total { writeAll(1, chunk); written += chunk.count }
    while written + line.count <= total { writeAll(1, line); written += line.count }
case "sleep":
    guard args.count >= 2, let seconds = Double(args[1]) else { usage() }
    sleepSeconds(seconds)
case "exit":
    guard args.count >= 2, let code = Int32(args[1]) else { usage() }
    exit(code)
case "spawn-grandchild-and-sleep":
    let marker = args.count >= 2 ? args[1] : "grandchild"
    let me = CommandLine.arguments[0]
    let pid = fork()
    if pid == 0 {
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(me), strdup("sleep"), strdup("1000"), strdup(marker), nil]
        execv(me, argv)
        _exit(127)
    }
    out("grandchild \(pid)\n")
    sleepSeconds(1000)
case "orphan-grandchild":
    let marker = args.count >= 2 ? args[1] : "grandchild"
    let me = CommandLine.arguments[0]
    let pid = fork()
    if pid == 0 {
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(me), strdup("sleep"), strdup("1000"), strdup(marker), nil]
        execv(me, argv)
        _exit(127)
    }
    out("grandchild \(pid)\n")
    exit(0)
case "partial-line":
    out("no newline")
    sleepSeconds(1000)
case "invalid-utf8":
    writeAll(1, [UInt8(ascii: "a"), 0xFF, 0xFE, UInt8(ascii: "b"), UInt8(ascii: "\n")])
case "crash":
    // The Swift runtime installs a crash handler (backtraces); restore the default so the signal kills us.
    signal(SIGSEGV, SIG_DFL)
    raise(SIGSEGV)
    exit(71)
case "abort":
    abort()
case "write-file":
    guard args.count >= 2 else { usage() }
    let fd = open(args[1], O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if fd < 0 {
        err("open \(args[1]): errno \(errno)\n")
        exit(1)
    }
    writeAll(fd, [UInt8(ascii: "x")])
    close(fd)
case "connect":
    guard args.count >= 2, let port = UInt16(args[1]) else { usage() }
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if rc == 0 {
        out("connected\n")
        exit(0)
    }
    err("connect: errno \(errno)\n")
    exit(3)
default:
    usage()
}
