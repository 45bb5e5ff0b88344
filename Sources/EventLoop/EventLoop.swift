// EventLoop: one thread's loop over a Poller — fd registrations, timers, before-sleep hooks, deferred work.
import CSystem
import Glibc
public import Logging

/// Receives readiness for one registered fd. Implemented by connections, listeners, pipes.
public protocol IOHandler: AnyObject {
    func ioReady(_ events: IOEvents)
}

/// A registration of an fd with the loop. The generation makes stale events (for a closed, possibly
/// reused fd) detectable: the token is `generation << 32 | fd` (SwiftNIO's SelectorRegistrationID idea).
public struct Registration: Hashable, Sendable {
    public let fd: Int32
    public let generation: UInt32
    var token: UInt64 { UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd)) }
    /// The registration whose `uniqueID` is `id` (so a holder can keep the 8-byte id alone).
    public init(uniqueID id: UInt64) {
        fd = Int32(bitPattern: UInt32(truncatingIfNeeded: id))
        generation = UInt32(truncatingIfNeeded: id >> 32)
    }

    init(fd: Int32, generation: UInt32) {
        self.fd = fd
        self.generation = generation
    }

    /// `generation << 32 | fd`: unique for the life of the process (unless one fd number is registered
    /// 2^32 times), and its low 32 bits are the fd — a small dense integer, usable as an array index.
    public var uniqueID: UInt64 { token }
}

/// Identifies a scheduled timer so it can be cancelled.
public struct TimerID: Hashable, Sendable {
    let raw: UInt64
}

/// The single-threaded event loop. Not `Sendable`: everything except `handle` is used on the loop
/// thread only. Each tick runs named phases: update `now` → due timers → before-sleep hooks
/// (flush writes, free closed) → poll (timeout = earliest timer) → dispatch (libuv's `uv_run` order).
public final class EventLoop {
    /// One per fd. Field order matters: handler first packs the slot into 24 bytes (32 otherwise).
    private struct Slot {
        var handler: (any IOHandler)?
        var generation: UInt32 = 0
        var interest: Interest = .none
    }

    private struct TimerEntry {
        var deadline: UInt64
        var id: UInt64

        /// Heap order: earlier deadline first; equal deadlines in the order they were scheduled (ids only grow).
        func precedes(_ other: TimerEntry) -> Bool {
            deadline != other.deadline ? deadline < other.deadline : id < other.id
        }
    }

    public let logger: Logger
    /// The only thread-safe door into this loop.
    public let handle: EventLoopHandle
    private let poller: any Poller
    private var slots: [Slot] = []
    private var timerHeap: [TimerEntry] = []
    private var timerCallbacks: [UInt64: () -> Void] = [:]
    private var nextTimerID: UInt64 = 1
    private var beforeSleepHooks: [() -> Void] = []
    private var stopped = false
    private var pollWithoutSleeping = false
    private let ownerThread: pthread_t
    /// Monotonic nanoseconds at the start of the current tick (cheap to read; refreshed each tick).
    public private(set) var now: UInt64
    /// One read buffer per loop, shared by every connection: data is consumed before the next read.
    public let readBuffer: UnsafeMutableRawBufferPointer
    private var wakeupRegistration: Registration?
    /// Monotonic nanoseconds; injected so tests can drive timers without sleeping.
    private let clock: () -> UInt64

    /// Creates a loop owned by the calling thread. `poller` defaults to epoll; `clock` (monotonic
    /// nanoseconds) defaults to CLOCK_MONOTONIC — tests pass a fake poller and its clock.
    public init(
        poller: (any Poller)? = nil, logger: Logger = Logger(label: "medic.loop"), readBufferSize: Int = 256 * 1024,
        clock: @escaping () -> UInt64 = monotonicNanoseconds
    ) throws(SystemError) {
        if let poller { self.poller = poller } else { self.poller = try EpollPoller() }
        self.logger = logger
        self.clock = clock
        self.handle = try EventLoopHandle()
        self.ownerThread = pthread_self()
        self.now = clock()
        self.readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: readBufferSize, alignment: 16)
        wakeupRegistration = try register(fd: handle.eventFD, interest: .read, handler: WakeupHandler(loop: self))
    }

    deinit {
        readBuffer.deallocate()
        poller.close()
    }

    /// True on the thread that created the loop.
    public var inLoopThread: Bool { pthread_equal(pthread_self(), ownerThread) != 0 }

    // MARK: fds

    /// Watches `fd` for `interest`; `handler` is called with what is ready. The caller keeps ownership of the fd.
    /// Throws when the kernel refuses (EEXIST: the fd is still registered); an existing registration then
    /// keeps working. A slot whose fd was closed without `unregister` (the kernel forgot it) is taken over.
    public func register(fd: Int32, interest: Interest, handler: any IOHandler) throws(SystemError) -> Registration {
        precondition(fd >= 0, "register: negative fd \(fd)")
        let index = Int(fd)
        if index >= slots.count {
            // Grown by an eighth, not doubled: one slot per fd, resident for the life of the loop.
            slots.reserveCapacity(FDTable<AnyObject>.capacity(for: index))
            slots.append(contentsOf: repeatElement(Slot(), count: slots.capacity - slots.count))
        }
        let registration = Registration(fd: fd, generation: slots[index].generation &+ 1)
        // Ask the kernel first and touch the slot only on success: a refused add must not orphan the
        // registration that still owns the fd (its events would be dropped as stale forever).
        try poller.add(fd: fd, interest: interest, token: registration.token)
        slots[index] = Slot(handler: handler, generation: registration.generation, interest: interest)
        return registration
    }

    /// Changes what a registration waits for (no syscall when unchanged).
    public func setInterest(_ registration: Registration, _ interest: Interest) {
        let index = Int(registration.fd)
        guard index < slots.count, slots[index].generation == registration.generation, slots[index].handler != nil,
              slots[index].interest != interest else { return }
        slots[index].interest = interest
        do {
            try poller.modify(fd: registration.fd, interest: interest, token: registration.token)
        } catch {
            logger.error("epoll modify failed", metadata: ["fd": "\(registration.fd)", "error": "\(error)"])
        }
    }

    /// Stops watching. Events already fetched for this registration are dropped (generation check).
    /// Call before closing the fd.
    public func unregister(_ registration: Registration) {
        let index = Int(registration.fd)
        guard index < slots.count, slots[index].generation == registration.generation, slots[index].handler != nil else { return }
        slots[index].handler = nil
        slots[index].generation &+= 1
        do { try poller.remove(fd: registration.fd) } catch {
            logger.debug("epoll remove failed", metadata: ["fd": "\(registration.fd)", "error": "\(error)"])
        }
    }

    // MARK: timers

    /// Runs `body` once, `nanoseconds` from now (on the loop thread).
    @discardableResult
    public func schedule(afterNanoseconds nanoseconds: UInt64, _ body: @escaping () -> Void) -> TimerID {
        schedule(at: clock() &+ nanoseconds, body)
    }

    /// Runs `body` once at the monotonic `deadline`.
    @discardableResult
    public func schedule(at deadline: UInt64, _ body: @escaping () -> Void) -> TimerID {
        let id = nextTimerID
        nextTimerID += 1
        timerCallbacks[id] = body
        heapPush(TimerEntry(deadline: deadline, id: id))
        return TimerID(raw: id)
    }

    /// Cancels a timer; harmless if it already ran. Its heap entry is dropped lazily (`pruneCancelledTimers`).
    public func cancel(_ timer: TimerID) {
        timerCallbacks[timer.raw] = nil
    }

    /// Makes the next poll return at once instead of sleeping: for work left for the before-sleep hooks
    /// by one of those hooks (it runs on the next tick instead of after the next event).
    public func pollWithoutSleepingOnce() { pollWithoutSleeping = true }

    /// Called once per tick, before the loop sleeps (write flushing, deferred frees).
    public func addBeforeSleepHook(_ hook: @escaping () -> Void) {
        beforeSleepHooks.append(hook)
    }

    // MARK: running

    /// Runs ticks until `stop()`.
    public func run() {
        precondition(inLoopThread, "EventLoop.run must be called on the thread that created the loop")
        stopped = false
        while !stopped {
            runOnce(maxWaitMilliseconds: -1)
        }
    }

    /// Asks `run()` to return after the current tick.
    public func stop() { stopped = true }

    /// One tick. `maxWaitMilliseconds` caps the poll (-1: until the next timer or event).
    public func runOnce(maxWaitMilliseconds: Int32) {
        now = clock()
        runDueTimers()
        for hook in beforeSleepHooks { hook() }
        // The earliest *live* timer bounds the sleep (a cancelled one would only cause a spurious wakeup),
        // measured from a fresh clock read: the timers and hooks above took time. Rounded up, so the
        // loop never wakes a little early and spins through an extra tick with nothing due.
        pruneCancelledTimers()
        var timeout = maxWaitMilliseconds
        if let first = timerHeap.first {
            let current = clock()
            let wait = first.deadline > current ? Int32(clamping: (first.deadline - current + 999_999) / 1_000_000) : 0
            timeout = timeout < 0 ? wait : min(timeout, wait)
        }
        if stopped || pollWithoutSleeping { timeout = 0 }
        pollWithoutSleeping = false
        do {
            try poller.wait(timeoutMilliseconds: timeout) { event in
                let fd = Int(UInt32(truncatingIfNeeded: event.token))
                let generation = UInt32(truncatingIfNeeded: event.token >> 32)
                guard fd < slots.count, slots[fd].generation == generation, let handler = slots[fd].handler else {
                    return  // stale: the fd was unregistered (and maybe reused) after the kernel reported it
                }
                handler.ioReady(event.events)
            }
        } catch {
            logger.error("poll failed", metadata: ["error": "\(error)"])
        }
    }

    /// Runs the timers due at `now`, in deadline order. The due set is taken before any runs, so a timer
    /// scheduled by a callback waits for a later tick even if already due: a timer that re-arms itself
    /// at `now` cannot keep the loop from polling. A callback may cancel a later timer of the same batch.
    private func runDueTimers() {
        var due: [UInt64] = []
        while let first = timerHeap.first, first.deadline <= now {
            heapPop()
            due.append(first.id)
        }
        for id in due {
            if let callback = timerCallbacks.removeValue(forKey: id) { callback() }
        }
    }

    /// Drops cancelled heap entries: those on top (so the poll timeout comes from a live timer), and all of
    /// them once they are most of the heap (so code that re-arms and cancels many long timeouts cannot
    /// grow the heap without bound). Outside `runDueTimers`, every callback has exactly one heap entry.
    private func pruneCancelledTimers() {
        if timerHeap.count > 64, timerHeap.count > 2 * timerCallbacks.count {
            timerHeap.removeAll { timerCallbacks[$0.id] == nil }
            timerHeap.sort { $0.precedes($1) }  // a sorted array is a valid min-heap
        }
        while let first = timerHeap.first, timerCallbacks[first.id] == nil { heapPop() }
    }

    /// Runs the deferred work posted through `handle` (called when the eventfd is readable).
    fileprivate func drainDeferred() {
        handle.drain { work in work(self) }
    }

    // MARK: timer heap (binary min-heap on deadline, then id)

    private func heapPush(_ entry: TimerEntry) {
        timerHeap.append(entry)
        var child = timerHeap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if !timerHeap[child].precedes(timerHeap[parent]) { break }
            timerHeap.swapAt(parent, child)
            child = parent
        }
    }

    private func heapPop() {
        let last = timerHeap.removeLast()
        guard !timerHeap.isEmpty else { return }
        timerHeap[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < timerHeap.count, timerHeap[left].precedes(timerHeap[smallest]) { smallest = left }
            if right < timerHeap.count, timerHeap[right].precedes(timerHeap[smallest]) { smallest = right }
            if smallest == parent { break }
            timerHeap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}

/// Reads the eventfd and runs the deferred queue.
private final class WakeupHandler: IOHandler {
    unowned let loop: EventLoop
    init(loop: EventLoop) { self.loop = loop }
    func ioReady(_ events: IOEvents) { loop.drainDeferred() }
}
