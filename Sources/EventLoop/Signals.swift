// Signals: POSIX signals delivered as loop events through signalfd(2).
import CSystem
import Glibc

/// Delivers the given signals to `handler` on the loop thread.
/// Call `Signals.block(_:)` on the main thread before any other thread starts, so every thread
/// inherits the mask and no thread takes the signal the default way.
public final class SignalSource: IOHandler {
    private let fd: Int32
    private var registration: Registration?
    private unowned let loop: EventLoop
    private let handler: (Int32) -> Void

    public init(loop: EventLoop, signals: [Int32], handler: @escaping (Int32) -> Void) throws(SystemError) {
        self.loop = loop
        self.handler = handler
        fd = try syscallChecked("signalfd") { signals.withUnsafeBufferPointer { csys_signalfd($0.baseAddress, Int32($0.count)) } }
        registration = try loop.register(fd: fd, interest: .read, handler: self)
    }

    public func ioReady(_ events: IOEvents) {
        let size = csys_signalfd_siginfo_size()
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            guard case .processed(let n)? = try? syscall("read(signalfd)", { Glibc.read(fd, buffer, size) }), n == size else { return }
            handler(Int32(csys_signalfd_signo(buffer)))
        }
    }

    public func close() {
        if let registration {
            loop.unregister(registration)
            closeFD(fd)
            self.registration = nil
        }
    }
}

/// Process-wide signal setup.
public enum Signals {
    /// Blocks `signals` in the calling thread (threads created later inherit it) and ignores SIGPIPE,
    /// so a write to a closed socket is an EPIPE error, not a dead server.
    public static func block(_ signals: [Int32]) {
        csys_ignore_sigpipe()
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }
}
