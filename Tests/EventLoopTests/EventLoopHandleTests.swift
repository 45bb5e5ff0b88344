// EventLoopHandleTests: the one thread-safe door into a real loop — execute from many threads, hop, wake.
import Dispatch
import EventLoop
import Foundation
import Glibc
import Synchronization
import Testing

/// Per-thread sequence bookkeeping, touched only on the loop thread (through a `LoopBound`).
final class SequenceRecorder {
    var next: [Int]
    var total = 0
    var outOfOrder = 0
    var offLoopThread = 0

    init(threads: Int) { next = Array(repeating: 0, count: threads) }

    func record(thread: Int, sequence: Int, onLoopThread: Bool) {
        total += 1
        // A duplicate, a loss or a reordering all break "each thread's next number".
        if sequence != next[thread] { outOfOrder += 1 }
        next[thread] = sequence + 1
        if !onLoopThread { offLoopThread += 1 }
    }
}

/// Unblocks a loop that a test expects to be woken some other way: if `disarm()` is not called within
/// `seconds`, it writes to a pipe the loop watches, so a broken wakeup fails the test instead of hanging it.
final class Watchdog: Sendable {
    private let disarmed = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    let readFD: Int32

    init(seconds: Int = 20) {
        var fds: [Int32] = [-1, -1]
        precondition(pipe(&fds) == 0)
        readFD = fds[0]
        let writeFD = fds[1]
        let disarmed = self.disarmed
        let finished = self.finished
        Thread {
            if disarmed.wait(timeout: .now() + .seconds(seconds)) == .timedOut {
                var byte: UInt8 = 1
                _ = write(writeFD, &byte, 1)
            }
            close(writeFD)
            finished.signal()
        }.start()
    }

    /// Stops the watchdog and waits for its thread; then closes the read end.
    func disarm() {
        disarmed.signal()
        finished.wait()
        close(readFD)
    }
}

@Suite struct EventLoopHandleTests {
    @Test func executeFromEightThreadsRunsEachItemOnceInOrderOnTheLoopThread() throws {
        let threads = 8
        let perThread = 10_000
        let loop = try EventLoop()
        let loopThread = pthread_self()
        let recorder = LoopBound(SequenceRecorder(threads: threads), loop: loop)
        let handle = loop.handle
        for t in 0..<threads {
            Thread {
                for i in 0..<perThread {
                    handle.execute { loop in
                        let onLoop = loop.inLoopThread && pthread_equal(pthread_self(), loopThread) != 0
                        recorder.value.record(thread: t, sequence: i, onLoopThread: onLoop)
                    }
                }
            }.start()
        }
        #expect(runLoop(loop) { recorder.value.total >= threads * perThread })
        // Nothing runs twice: a few more ticks add nothing.
        for _ in 0..<3 { loop.runOnce(maxWaitMilliseconds: 10) }
        #expect(recorder.value.total == threads * perThread)
        #expect(recorder.value.outOfOrder == 0)
        #expect(recorder.value.offLoopThread == 0)
        #expect(recorder.value.next == Array(repeating: perThread, count: threads))
    }

    @Test func workPostedFromTheLoopDuringADrainRunsOnALaterTick() throws {
        // A work item that re-posts itself must not keep one drain going forever.
        let loop = try EventLoop()
        let tick = LoopBound(0, loop: loop)
        let seen = LoopBound([Int](), loop: loop)
        loop.addBeforeSleepHook { tick.value += 1 }
        loop.handle.execute { loop in
            seen.value.append(tick.value)
            loop.handle.execute { _ in seen.value.append(tick.value) }
        }
        #expect(runLoop(loop) { seen.value.count == 2 })
        #expect(seen.value[1] > seen.value[0])
    }

    @Test func hopDeliversTheValueOnTheLoopThread() throws {
        final class Box { var hops: [Bool] = [] }
        let loop = try EventLoop()
        let loopThread = pthread_self()
        let bound = LoopBound(Box(), loop: loop)
        let posterWasLoopThread = Mutex<Bool?>(nil)
        Thread {
            posterWasLoopThread.withLock { $0 = pthread_equal(pthread_self(), loopThread) != 0 }
            bound.hop { box in box.hops.append(pthread_equal(pthread_self(), loopThread) != 0) }
        }.start()
        #expect(runLoop(loop) { !bound.value.hops.isEmpty })
        #expect(bound.value.hops == [true])
        #expect(posterWasLoopThread.withLock { $0 } == false)
    }

    @Test func wakeInterruptsARunOnceThatWouldBlockForever() throws {
        let loop = try EventLoop()
        let watchdog = Watchdog()
        let watchdogFired = RecordingHandler()
        let registration = try loop.register(fd: watchdog.readFD, interest: .read, handler: watchdogFired)
        let handle = loop.handle
        Thread {
            usleep(50_000)  // most likely the loop is asleep in epoll_wait by now; if not, the wake is still seen
            handle.wake()
        }.start()
        loop.runOnce(maxWaitMilliseconds: -1)
        #expect(watchdogFired.events.isEmpty)
        loop.unregister(registration)
        watchdog.disarm()
    }

    @Test func executeFromAnotherThreadWakesABlockedLoopAndRunsInThatTick() throws {
        let loop = try EventLoop()
        let watchdog = Watchdog()
        let watchdogFired = RecordingHandler()
        let registration = try loop.register(fd: watchdog.readFD, interest: .read, handler: watchdogFired)
        let ran = LoopBound(false, loop: loop)
        let handle = loop.handle
        Thread {
            usleep(50_000)
            handle.execute { _ in ran.value = true }
        }.start()
        loop.runOnce(maxWaitMilliseconds: -1)
        #expect(ran.value)
        #expect(watchdogFired.events.isEmpty)
        loop.unregister(registration)
        watchdog.disarm()
    }
}
