// EpollPoller: the only file that touches epoll_* (level-triggered; token in epoll_event.data.u64).
import CSystem

/// Linux epoll behind the `Poller` protocol.
public final class EpollPoller: Poller {
    private var epfd: Int32
    private let events: UnsafeMutableRawPointer
    private let capacity: Int32

    /// `capacity`: events fetched per `epoll_wait`; more ready fds are returned by the next call.
    public init(capacity: Int32 = 1024) throws(SystemError) {
        epfd = try syscallChecked("epoll_create1") { csys_epoll_create() }
        self.capacity = capacity
        events = UnsafeMutableRawPointer.allocate(
            byteCount: Int(capacity) * csys_epoll_event_size(), alignment: 8)
    }

    deinit {
        close()
        events.deallocate()
    }

    private static func mask(_ interest: Interest) -> UInt32 {
        // EPOLLRDHUP with EPOLLIN, so a peer's half-close is seen even when no bytes follow. Not without
        // EPOLLIN: a connection that stopped reading (output backpressure) would be woken for it again and
        // again (level-triggered). EPOLLHUP and EPOLLERR are always reported.
        var mask: UInt32 = 0
        if interest.contains(.read) { mask |= CSYS_EPOLLIN | CSYS_EPOLLRDHUP }
        if interest.contains(.write) { mask |= CSYS_EPOLLOUT }
        return mask
    }

    public func add(fd: Int32, interest: Interest, token: UInt64) throws(SystemError) {
        _ = try syscallChecked("epoll_ctl(ADD)") {
            csys_epoll_ctl(epfd, CSYS_EPOLL_CTL_ADD, fd, Self.mask(interest), token)
        }
    }

    public func modify(fd: Int32, interest: Interest, token: UInt64) throws(SystemError) {
        _ = try syscallChecked("epoll_ctl(MOD)") {
            csys_epoll_ctl(epfd, CSYS_EPOLL_CTL_MOD, fd, Self.mask(interest), token)
        }
    }

    public func remove(fd: Int32) throws(SystemError) {
        _ = try syscallChecked("epoll_ctl(DEL)") { csys_epoll_ctl(epfd, CSYS_EPOLL_CTL_DEL, fd, 0, 0) }
    }

    public func wait(timeoutMilliseconds: Int32, _ body: (PollEvent) -> Void) throws(SystemError) {
        // Not through `syscall(_:_:)`, which retries EINTR: a retry would wait the whole timeout again
        // (a late timer); returning lets the loop recompute it. A signal (signalfd) wakes the loop anyway.
        let ready = csys_epoll_wait(epfd, events.assumingMemoryBound(to: epoll_event.self), capacity, timeoutMilliseconds)
        if ready < 0 {
            let err = csys_errno()
            if err == EINTR { return }
            throw SystemError("epoll_wait", errno: err)
        }
        let stride = csys_epoll_event_size()
        for i in 0..<Int(ready) {
            let ev = (events + i * stride).assumingMemoryBound(to: epoll_event.self)
            let raw = csys_epoll_event_events(ev)
            var out: IOEvents = []
            if raw & CSYS_EPOLLIN != 0 { out.insert(.readable) }
            if raw & CSYS_EPOLLOUT != 0 { out.insert(.writable) }
            if raw & (CSYS_EPOLLERR | CSYS_EPOLLHUP | CSYS_EPOLLRDHUP) != 0 { out.insert(.hangup) }
            body(PollEvent(token: csys_epoll_event_data(ev), events: out))
        }
    }

    public func close() {
        if epfd >= 0 {
            closeFD(epfd)
            epfd = -1
        }
    }
}
