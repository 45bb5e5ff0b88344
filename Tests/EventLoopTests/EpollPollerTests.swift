// EpollPollerTests: the real epoll backend — tokens round-trip, level-triggered readiness, hang-up, and the same
// kernel rules (EEXIST, ENOENT) the FakePoller plays.
import EventLoop
import Glibc
import TestSupport
import Testing

/// A pipe whose ends are closed by `close()` (idempotent per end).
final class TestPipe {
    var readFD: Int32
    var writeFD: Int32

    init() throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw SystemError("pipe", errno: errno) }
        readFD = fds[0]
        writeFD = fds[1]
    }

    func write(_ text: String) {
        var bytes = Array(text.utf8)
        precondition(Glibc.write(writeFD, &bytes, bytes.count) == bytes.count)
    }

    func closeWriteEnd() {
        if writeFD >= 0 { Glibc.close(writeFD) }
        writeFD = -1
    }

    func close() {
        closeWriteEnd()
        if readFD >= 0 { Glibc.close(readFD) }
        readFD = -1
    }
}

/// A connected AF_UNIX stream pair.
func unixSocketPair() throws -> (Int32, Int32) {
    var fds: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { throw SystemError("socketpair", errno: errno) }
    return (fds[0], fds[1])
}

/// Every event one `wait` returned.
func collect(_ poller: any Poller, timeoutMilliseconds: Int32 = 0) throws -> [PollEvent] {
    var events: [PollEvent] = []
    try poller.wait(timeoutMilliseconds: timeoutMilliseconds) { events.append($0) }
    return events
}

@Suite struct EpollPollerTests {
    @Test func aReadablePipeReachesItsHandlerLevelTriggered() throws {
        let loop = try EventLoop()
        let pipe = try TestPipe()
        defer { pipe.close() }
        let handler = RecordingHandler()
        let registration = try loop.register(fd: pipe.readFD, interest: .read, handler: handler)

        // epoll_wait(0) reports what is ready now; nothing is.
        loop.runOnce(maxWaitMilliseconds: 0)
        #expect(handler.events.isEmpty)

        pipe.write("x")
        #expect(runLoop(loop, seconds: 20) { !handler.events.isEmpty })
        #expect(handler.events.first == .readable)
        // Level-triggered: unread data is reported again.
        let seen = handler.events.count
        loop.runOnce(maxWaitMilliseconds: 0)
        #expect(handler.events.count == seen + 1)

        // No interest: not reported; interest back: reported again.
        loop.setInterest(registration, .none)
        loop.runOnce(maxWaitMilliseconds: 0)
        #expect(handler.events.count == seen + 1)
        loop.setInterest(registration, .read)
        loop.runOnce(maxWaitMilliseconds: 0)
        #expect(handler.events.count == seen + 2)

        loop.unregister(registration)
        loop.runOnce(maxWaitMilliseconds: 0)
        #expect(handler.events.count == seen + 2)
    }

    @Test func closingTheWriterIsAHangup() throws {
        let loop = try EventLoop()
        let pipe = try TestPipe()
        defer { pipe.close() }
        let handler = RecordingHandler()
        let registration = try loop.register(fd: pipe.readFD, interest: .read, handler: handler)
        pipe.closeWriteEnd()
        #expect(runLoop(loop, seconds: 20) { !handler.events.isEmpty })
        #expect(handler.events.first?.contains(.hangup) == true)
        loop.unregister(registration)
    }

    /// EPOLLRDHUP comes with read interest only: a connection that stopped reading (output backpressure,
    /// Server's Connection) must not be woken for a half-close again and again (level-triggered). A peer
    /// gone both ways (EPOLLHUP) is reported regardless.
    @Test func aPeerHalfCloseIsSeenWithReadInterestAndAHangUpWithout() throws {
        let loop = try EventLoop()
        let (a, b) = try unixSocketPair()
        defer {
            close(a)
            close(b)
        }
        let handler = RecordingHandler()
        let registration = try loop.register(fd: a, interest: .none, handler: handler)
        loop.runOnce(maxWaitMilliseconds: 0)
        shutdown(b, Int32(SHUT_WR))
        loop.runOnce(maxWaitMilliseconds: 100)
        #expect(handler.events.isEmpty)
        loop.setInterest(registration, .read)
        #expect(runLoop(loop, seconds: 20) { !handler.events.isEmpty })
        #expect(handler.events.first?.contains(.hangup) == true)  // EPOLLRDHUP (with EPOLLIN: EOF is readable)
        loop.setInterest(registration, .none)
        handler.events.removeAll()
        shutdown(b, Int32(SHUT_RDWR))  // both ways: EPOLLHUP on `a`
        #expect(runLoop(loop, seconds: 20) { !handler.events.isEmpty })
        #expect(handler.events.first == .hangup)
        loop.unregister(registration)
    }

    @Test func writableSocketAndTheFull64BitTokenRoundTrip() throws {
        let poller = try EpollPoller()
        defer { poller.close() }
        let (a, b) = try unixSocketPair()
        defer {
            close(a)
            close(b)
        }
        let token: UInt64 = 0xFEED_FACE_0000_0000 | UInt64(UInt32(bitPattern: a))
        try poller.add(fd: a, interest: .write, token: token)
        let events = try collect(poller)
        #expect(events.map(\.token) == [token])
        #expect(events.first?.events == .writable)

        try poller.modify(fd: a, interest: .read, token: token &+ 1)
        #expect(try collect(poller).isEmpty)
        var byte: UInt8 = 7
        #expect(write(b, &byte, 1) == 1)
        let readable = try collect(poller, timeoutMilliseconds: 5_000)
        #expect(readable.map(\.token) == [token &+ 1])
        #expect(readable.first?.events == .readable)
    }

    /// The FakePoller must refuse what epoll refuses, or tests against it would pass for code epoll rejects.
    @Test(arguments: ["epoll", "fake"])
    func kernelRulesAreTheSameForTheFake(kind: String) throws {
        let poller: any Poller = kind == "epoll" ? try EpollPoller() : FakePoller()
        defer { poller.close() }
        let (a, b) = try unixSocketPair()
        defer {
            close(a)
            close(b)
        }
        try poller.add(fd: a, interest: .read, token: 1)
        let duplicate = #expect(throws: SystemError.self) { try poller.add(fd: a, interest: .read, token: 2) }
        #expect(duplicate?.errno == EEXIST)
        try poller.modify(fd: a, interest: .write, token: 3)
        try poller.remove(fd: a)
        let removeAgain = #expect(throws: SystemError.self) { try poller.remove(fd: a) }
        #expect(removeAgain?.errno == ENOENT)
        #expect(removeAgain?.call == "epoll_ctl(DEL)")
        let modifyMissing = #expect(throws: SystemError.self) { try poller.modify(fd: b, interest: .read, token: 4) }
        #expect(modifyMissing?.errno == ENOENT)
        #expect(modifyMissing?.call == "epoll_ctl(MOD)")
    }
}
