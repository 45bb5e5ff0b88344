// EventLoopTests: the loop's core against a FakePoller — generations, interest, timers, poll timeouts, hooks, phases.
import EventLoop
import Glibc
import TestSupport
import Testing

/// Records what it was woken for; `onReady` lets a test act from inside dispatch.
final class RecordingHandler: IOHandler {
    var events: [IOEvents] = []
    var onReady: ((IOEvents) -> Void)?

    init(onReady: ((IOEvents) -> Void)? = nil) { self.onReady = onReady }

    func ioReady(_ events: IOEvents) {
        self.events.append(events)
        onReady?(events)
    }
}

/// An ordered log of what ran, shared by the closures of one test.
final class PhaseLog {
    var entries: [String] = []
    func add(_ entry: String) { entries.append(entry) }
}

/// A loop over a fresh FakePoller and its clock; the loop's own eventfd registration is cleared from the calls.
func makeFakeLoop() throws -> (EventLoop, FakePoller) {
    let poller = FakePoller()
    let loop = try EventLoop(poller: poller, clock: poller.clock)
    poller.clearCalls()
    return (loop, poller)
}

/// The first fd number from `start` the fake kernel does not watch (the loop's real eventfd is watched).
func unwatchedFD(_ poller: FakePoller, from start: Int32 = 5) -> Int32 {
    var fd = start
    while poller.token(for: fd) != nil { fd += 1 }
    return fd
}

let millisecond: UInt64 = 1_000_000

@Suite struct RegistrationTests {
    @Test func staleTokenOfAReusedFdReachesNoHandler() throws {
        let (loop, poller) = try makeFakeLoop()
        let fd = unwatchedFD(poller)
        let oldHandler = RecordingHandler()
        let newHandler = RecordingHandler()

        let first = try loop.register(fd: fd, interest: .read, handler: oldHandler)
        let oldToken = try #require(poller.token(for: fd))
        loop.unregister(first)
        let second = try loop.register(fd: fd, interest: .read, handler: newHandler)
        let newToken = try #require(poller.token(for: fd))
        #expect(newToken != oldToken)
        #expect(second != first)
        #expect(second.fd == fd)
        #expect(
            poller.controlCalls == [
                .add(fd: fd, interest: .read, token: oldToken), .remove(fd: fd),
                .add(fd: fd, interest: .read, token: newToken),
            ])

        // The kernel reported the old registration before it was removed: nobody gets it.
        poller.enqueue([PollEvent(token: oldToken, events: .readable)])
        loop.runOnce(maxWaitMilliseconds: 0)
        #expect(oldHandler.events.isEmpty)
        #expect(newHandler.events.isEmpty)

        poller.enqueue([PollEvent(token: newToken, events: [.readable, .hangup])])
        loop.runOnce(maxWaitMilliseconds: 0)
        #expect(oldHandler.events.isEmpty)
        #expect(newHandler.events == [[.readable, .hangup]])

        // Stale and current in one batch: exactly one delivery, to the current handler.
        poller.enqueue([PollEvent(token: oldToken, events: .writable), PollEvent(token: newToken, events: .writable)])
        loop.runOnce(maxWaitMilliseconds: 0)
        #expect(oldHandler.events.isEmpty)
        #expect(newHandler.events == [[.readable, .hangup], .writable])
    }

    @Test func eventForAnFdNeverRegisteredIsDropped() throws {
        let (loop, poller) = try makeFakeLoop()
        let handler = RecordingHandler()
        let fd = unwatchedFD(poller)
        _ = try loop.register(fd: fd, interest: .read, handler: handler)
        let token = try #require(poller.token(for: fd))
        // Same fd, other generation; and an fd far beyond any slot.
        poller.enqueue([
            PollEvent(token: token &+ (1 << 32), events: .readable),
            PollEvent(token: UInt64(1) << 32 | 1_000_000, events: .readable),
        ])
        loop.runOnce(maxWaitMilliseconds: 0)
        #expect(handler.events.isEmpty)
        #expect(poller.pendingBatches == 0)
    }

    @Test func handlerThatUnregistersALaterFdOfTheSameBatchSuppressesItsEvent() throws {
        let (loop, poller) = try makeFakeLoop()
        let fdA = unwatchedFD(poller)
        let fdB = unwatchedFD(poller, from: fdA + 1)
        let handlerB = RecordingHandler()
        let registrationB = try loop.register(fd: fdB, interest: .read, handler: handlerB)
        let handlerA = RecordingHandler { _ in loop.unregister(registrationB) }
        _ = try loop.register(fd: fdA, interest: .read, handler: handlerA)
        let tokenA = try #require(poller.token(for: fdA))
        let tokenB = try #require(poller.token(for: fdB))

        poller.enqueue([PollEvent(token: tokenA, events: .readable), PollEvent(token: tokenB, events: .readable)])
        loop.runOnce(maxWaitMilliseconds: 0)
        #expect(handlerA.events == [.readable])
        #expect(handlerB.events.isEmpty)
        #expect(poller.token(for: fdB) == nil)
        handlerA.onReady = nil
    }

    @Test func handlerThatClosesAndReusesAnFdMidBatchSuppressesTheOldEvent() throws {
        let (loop, poller) = try makeFakeLoop()
        let fdA = unwatchedFD(poller)
        let fdB = unwatchedFD(poller, from: fdA + 1)
        let handlerB = RecordingHandler()
        let replacement = RecordingHandler()
        let registrationB = try loop.register(fd: fdB, interest: .read, handler: handlerB)
        // A closes B, then accept() hands out B's number again and it is registered: same fd, new generation.
        let handlerA = RecordingHandler { _ in
            loop.unregister(registrationB)
            _ = try? loop.register(fd: fdB, interest: .read, handler: replacement)
        }
        _ = try loop.register(fd: fdA, interest: .read, handler: handlerA)
        let tokenA = try #require(poller.token(for: fdA))
        let oldTokenB = try #require(poller.token(for: fdB))

        poller.enqueue([PollEvent(token: tokenA, events: .readable), PollEvent(token: oldTokenB, events: .readable)])
        loop.runOnce(maxWaitMilliseconds: 0)
        #expect(handlerA.events == [.readable])
        #expect(handlerB.events.isEmpty)
        #expect(replacement.events.isEmpty)
        let newTokenB = try #require(poller.token(for: fdB))
        #expect(newTokenB != oldTokenB)

        poller.enqueueReady(fd: fdB, .readable)
        loop.runOnce(maxWaitMilliseconds: 0)
        #expect(replacement.events == [.readable])
        #expect(handlerB.events.isEmpty)
        handlerA.onReady = nil
    }

    @Test func unregisterIsIdempotentAndAStaleUnregisterLeavesTheNewOwnerAlone() throws {
        let (loop, poller) = try makeFakeLoop()
        let fd = unwatchedFD(poller)
        let first = try loop.register(fd: fd, interest: .read, handler: RecordingHandler())
        loop.unregister(first)
        loop.unregister(first)
        #expect(poller.controlCalls.filter { $0 == .remove(fd: fd) }.count == 1)

        let owner = RecordingHandler()
        _ = try loop.register(fd: fd, interest: .read, handler: owner)
        poller.clearCalls()
        loop.unregister(first)  // a late close from the previous owner
        #expect(poller.controlCalls.isEmpty)
        poller.enqueueReady(fd: fd, .readable)
        loop.runOnce(maxWaitMilliseconds: 0)
        #expect(owner.events == [.readable])
    }

    @Test func registerRefusedByTheKernelKeepsTheExistingRegistration() throws {
        let (loop, poller) = try makeFakeLoop()
        let fd = unwatchedFD(poller)
        let owner = RecordingHandler()
        let intruder = RecordingHandler()
        let registration = try loop.register(fd: fd, interest: .read, handler: owner)
        let token = try #require(poller.token(for: fd))

        let error = #expect(throws: SystemError.self) { try loop.register(fd: fd, interest: .write, handler: intruder) }
        #expect(error?.errno == EEXIST)
        #expect(poller.token(for: fd) == token)

        poller.enqueueReady(fd: fd, .readable)
        loop.runOnce(maxWaitMilliseconds: 0)
        #expect(owner.events == [.readable])
        #expect(intruder.events.isEmpty)
        // The owner can still change interest and unregister.
        loop.setInterest(registration, .write)
        #expect(poller.watched[fd] == FakePoller.Watch(interest: .write, token: token))
        loop.unregister(registration)
        #expect(poller.token(for: fd) == nil)
    }

    @Test func failedRegisterDeliversNothing() throws {
        let (loop, poller) = try makeFakeLoop()
        let fd = unwatchedFD(poller)
        let handler = RecordingHandler()
        poller.failNextCall(errno: ENOMEM)
        let error = #expect(throws: SystemError.self) { try loop.register(fd: fd, interest: .read, handler: handler) }
        #expect(error?.errno == ENOMEM)
        #expect(error?.call == "epoll_ctl(ADD)")
        guard case .add(_, _, let attempted)? = poller.calls.last else {
            Issue.record("expected the attempted add, got \(poller.calls)")
            return
        }
        poller.enqueue([PollEvent(token: attempted, events: .readable)])
        loop.runOnce(maxWaitMilliseconds: 0)
        #expect(handler.events.isEmpty)
    }

    @Test func anFdClosedWithoutUnregisterIsTakenOverByTheNextRegistration() throws {
        let (loop, poller) = try makeFakeLoop()
        let fd = unwatchedFD(poller)
        let forgotten = RecordingHandler()
        let next = RecordingHandler()
        _ = try loop.register(fd: fd, interest: .read, handler: forgotten)
        let oldToken = try #require(poller.token(for: fd))
        poller.processClosed(fd: fd)  // closed without unregister: epoll forgets it, the loop's slot does not
        _ = try loop.register(fd: fd, interest: .read, handler: next)
        poller.enqueue([PollEvent(token: oldToken, events: .readable)])
        poller.enqueueReady(fd: fd, .readable)
        loop.runOnce(maxWaitMilliseconds: 0)
        loop.runOnce(maxWaitMilliseconds: 0)
        #expect(forgotten.events.isEmpty)
        #expect(next.events == [.readable])
    }
}

@Suite struct InterestTests {
    @Test func setInterestCallsThePollerOnlyOnChange() throws {
        let (loop, poller) = try makeFakeLoop()
        let fd = unwatchedFD(poller)
        let registration = try loop.register(fd: fd, interest: .read, handler: RecordingHandler())
        let token = try #require(poller.token(for: fd))
        poller.clearCalls()

        loop.setInterest(registration, .read)
        #expect(poller.controlCalls.isEmpty)

        loop.setInterest(registration, [.read, .write])
        #expect(poller.controlCalls == [.modify(fd: fd, interest: [.read, .write], token: token)])
        loop.setInterest(registration, [.read, .write])
        #expect(poller.controlCalls.count == 1)

        loop.setInterest(registration, .none)
        #expect(poller.controlCalls.last == .modify(fd: fd, interest: .none, token: token))
        #expect(poller.watched[fd]?.interest == Interest.none)
        #expect(poller.controlCalls.count == 2)
    }

    @Test func setInterestOnAStaleRegistrationDoesNothing() throws {
        let (loop, poller) = try makeFakeLoop()
        let fd = unwatchedFD(poller)
        let first = try loop.register(fd: fd, interest: .read, handler: RecordingHandler())
        loop.unregister(first)
        _ = try loop.register(fd: fd, interest: .read, handler: RecordingHandler())
        let token = poller.token(for: fd)
        poller.clearCalls()
        loop.setInterest(first, .write)
        #expect(poller.controlCalls.isEmpty)
        #expect(poller.watched[fd] == FakePoller.Watch(interest: .read, token: try #require(token)))
    }
}

@Suite struct TimerTests {
    @Test func timersRunInDeadlineOrderAndEqualDeadlinesInScheduleOrder() throws {
        let (loop, poller) = try makeFakeLoop()
        let log = PhaseLog()
        var tick = 0
        let start = loop.now
        loop.schedule(at: start + 30 * millisecond) { log.add("c@\(tick)") }
        loop.schedule(at: start + 10 * millisecond) { log.add("a@\(tick)") }
        loop.schedule(at: start + 20 * millisecond) { log.add("b@\(tick)") }
        loop.schedule(at: start + 10 * millisecond) { log.add("a2@\(tick)") }
        loop.schedule(at: start + 20 * millisecond) { log.add("b2@\(tick)") }
        for t in 1...5 {
            tick = t
            loop.runOnce(maxWaitMilliseconds: -1)
        }
        #expect(log.entries == ["a@2", "a2@2", "b@3", "b2@3", "c@4"])
        // Each sleep was exactly the time to the next timer; with none left, forever.
        #expect(poller.waitTimeouts == [10, 10, 10, -1, -1])
    }

    @Test func manyTimersComeOutSorted() throws {
        let (loop, _) = try makeFakeLoop()
        var order: [UInt64] = []
        var generator = SystemRandomNumberGenerator()
        let start = loop.now
        var deadlines: [UInt64] = []
        for _ in 0..<500 {
            let deadline = start + UInt64.random(in: 0...50, using: &generator) * millisecond
            deadlines.append(deadline)
            loop.schedule(at: deadline) { order.append(deadline) }
        }
        for _ in 0..<60 { loop.runOnce(maxWaitMilliseconds: -1) }
        #expect(order == deadlines.sorted())
    }

    @Test func cancelledTimerNeitherRunsNorBoundsThePoll() throws {
        let (loop, poller) = try makeFakeLoop()
        let log = PhaseLog()
        let early = loop.schedule(afterNanoseconds: 5 * millisecond) { log.add("early") }
        loop.schedule(afterNanoseconds: 50 * millisecond) { log.add("late") }
        loop.cancel(early)
        loop.runOnce(maxWaitMilliseconds: -1)
        #expect(poller.waitTimeouts == [50])
        #expect(log.entries.isEmpty)
        loop.runOnce(maxWaitMilliseconds: -1)
        #expect(log.entries == ["late"])
        loop.cancel(early)  // after the fact: harmless
        loop.runOnce(maxWaitMilliseconds: -1)
        #expect(poller.waitTimeouts == [50, -1, -1])
        #expect(log.entries == ["late"])
    }

    @Test func workLeftByABeforeSleepHookKeepsTheNextPollFromSleeping() throws {
        let (loop, poller) = try makeFakeLoop()
        var pending = 0
        var submitted = 0
        loop.addBeforeSleepHook {  // like the app's: submits what earlier phases left
            submitted += pending
            pending = 0
        }
        loop.addBeforeSleepHook {  // a later hook leaves work for the first
            if submitted == 0 && pending == 0 {
                pending = 1
                loop.pollWithoutSleepingOnce()
            }
        }
        loop.runOnce(maxWaitMilliseconds: -1)
        loop.runOnce(maxWaitMilliseconds: -1)
        #expect(poller.waitTimeouts == [0, -1])  // once without sleeping, then back to sleeping
        #expect(submitted == 1)
    }

    @Test func aTimerCanCancelAnotherDueInTheSameTick() throws {
        let (loop, _) = try makeFakeLoop()
        let log = PhaseLog()
        var victim: TimerID?
        loop.schedule(at: loop.now) {
            log.add("first")
            if let victim { loop.cancel(victim) }
        }
        victim = loop.schedule(at: loop.now) { log.add("victim") }
        loop.runOnce(maxWaitMilliseconds: 0)
        loop.runOnce(maxWaitMilliseconds: 0)
        #expect(log.entries == ["first"])
    }

    @Test func manyCancelledTimersStopBoundingThePoll() throws {
        let (loop, poller) = try makeFakeLoop()
        let log = PhaseLog()
        // An idle timeout re-armed per request: each one is cancelled and replaced by a later one.
        var ids: [TimerID] = []
        for i in 0..<1_000 { ids.append(loop.schedule(afterNanoseconds: UInt64(i + 1) * millisecond) { log.add("stale") }) }
        for id in ids { loop.cancel(id) }
        loop.schedule(afterNanoseconds: 2_000 * millisecond) { log.add("live") }
        loop.runOnce(maxWaitMilliseconds: -1)
        #expect(poller.waitTimeouts == [2_000])
        loop.runOnce(maxWaitMilliseconds: -1)
        #expect(log.entries == ["live"])
    }

    @Test func aTimerScheduledFromATimerRunsOnALaterTick() throws {
        let (loop, poller) = try makeFakeLoop()
        let log = PhaseLog()
        var tick = 0
        loop.schedule(afterNanoseconds: millisecond) {
            log.add("outer@\(tick)")
            // Already due: it must still wait for the next tick, or a self-re-arming timer would starve the poll.
            loop.schedule(at: loop.now) { log.add("inner@\(tick)") }
        }
        for t in 1...3 {
            tick = t
            loop.runOnce(maxWaitMilliseconds: -1)
        }
        #expect(log.entries == ["outer@2", "inner@3"])
        // The poll after the outer timer does not sleep: the inner one is due.
        #expect(poller.waitTimeouts == [1, 0, -1])
    }

    @Test func aTimerThatReArmsItselfAtNowDoesNotStarveThePoll() throws {
        let (loop, poller) = try makeFakeLoop()
        var runs = 0
        func rearm() {
            loop.schedule(at: loop.now) {
                runs += 1
                if runs < 1_000 { rearm() }
            }
        }
        rearm()
        for _ in 0..<3 { loop.runOnce(maxWaitMilliseconds: -1) }
        #expect(runs == 3)
        #expect(poller.waitTimeouts == [0, 0, 0])
    }

    /// Deadline offsets in nanoseconds → the poll timeout in milliseconds, rounded up.
    @Test(arguments: [
        (UInt64(1), Int32(1)), (999_999, 1), (1_000_000, 1), (1_000_001, 2), (2_500_000, 3), (4_000_000, 4),
        (60_000_000_000, 60_000), (UInt64(Int32.max) * 2 * 1_000_000, Int32.max),
    ])
    func pollTimeoutIsTheTimeToTheEarliestTimerRoundedUp(offset: UInt64, expected: Int32) throws {
        let (loop, poller) = try makeFakeLoop()
        var ran = false
        loop.schedule(at: loop.now + offset) { ran = true }
        loop.schedule(at: loop.now + offset + 5_000 * millisecond) {}
        loop.runOnce(maxWaitMilliseconds: -1)
        #expect(poller.waitTimeouts == [expected])
        #expect(!ran)
        if expected < Int32.max {
            // The fake kernel slept the timeout; rounding up means the timer is due at the next tick.
            loop.runOnce(maxWaitMilliseconds: 0)
            #expect(ran)
        }
    }

    @Test func maxWaitCapsThePollAndNoTimerMeansForever() throws {
        let (loop, poller) = try makeFakeLoop()
        loop.runOnce(maxWaitMilliseconds: -1)
        loop.runOnce(maxWaitMilliseconds: 7)
        loop.runOnce(maxWaitMilliseconds: 0)
        loop.schedule(afterNanoseconds: 30 * millisecond) {}
        loop.runOnce(maxWaitMilliseconds: 5)  // the cap is sooner
        loop.runOnce(maxWaitMilliseconds: 100)  // the timer is sooner (25 ms left)
        #expect(poller.waitTimeouts == [-1, 7, 0, 5, 25])
    }

    @Test func anOverdueTimerMeansAZeroTimeoutPoll() throws {
        let (loop, poller) = try makeFakeLoop()
        // Time passes inside a before-sleep hook (a slow flush): the timer is overdue by the time of the poll.
        var hookRuns = 0
        loop.addBeforeSleepHook {
            hookRuns += 1
            if hookRuns == 1 { poller.advance(byNanoseconds: 20 * millisecond) }
        }
        loop.schedule(afterNanoseconds: 10 * millisecond) {}
        loop.runOnce(maxWaitMilliseconds: -1)
        #expect(poller.waitTimeouts == [0])
    }

    @Test func thePollTimeoutIsMeasuredAfterTheHooks() throws {
        let (loop, poller) = try makeFakeLoop()
        loop.addBeforeSleepHook { poller.advance(byNanoseconds: 4 * millisecond) }
        loop.schedule(afterNanoseconds: 10 * millisecond) {}
        loop.runOnce(maxWaitMilliseconds: -1)
        #expect(poller.waitTimeouts == [6])
    }

    @Test func nowIsTheClockAtTheStartOfTheTick() throws {
        let (loop, poller) = try makeFakeLoop()
        var seen: [UInt64] = []
        loop.schedule(afterNanoseconds: 3 * millisecond) { seen.append(loop.now) }
        let start = poller.nowNanoseconds
        loop.runOnce(maxWaitMilliseconds: -1)
        #expect(loop.now == start)
        loop.runOnce(maxWaitMilliseconds: -1)
        #expect(seen == [start + 3 * millisecond])
    }
}

@Suite struct TickPhaseTests {
    @Test func beforeSleepHooksRunOncePerTickBeforeThePoll() throws {
        let (loop, poller) = try makeFakeLoop()
        let log = PhaseLog()
        let fd = unwatchedFD(poller)
        _ = try loop.register(fd: fd, interest: .read, handler: RecordingHandler { _ in log.add("dispatch") })
        loop.addBeforeSleepHook { log.add("hook1") }
        loop.addBeforeSleepHook { log.add("hook2") }
        poller.onWait = { timeout in log.add("poll(\(timeout))") }
        loop.schedule(at: loop.now) { log.add("timer") }
        poller.enqueueReady(fd: fd, .readable)

        loop.runOnce(maxWaitMilliseconds: -1)
        #expect(log.entries == ["timer", "hook1", "hook2", "poll(-1)", "dispatch"])
        loop.runOnce(maxWaitMilliseconds: 3)
        #expect(log.entries == ["timer", "hook1", "hook2", "poll(-1)", "dispatch", "hook1", "hook2", "poll(3)"])
        poller.onWait = nil
    }

    @Test func stopMakesThePollNonBlockingAndEndsRun() throws {
        let (loop, poller) = try makeFakeLoop()
        let fd = unwatchedFD(poller)
        _ = try loop.register(fd: fd, interest: .read, handler: RecordingHandler { _ in loop.stop() })
        poller.enqueueReady(fd: fd, .readable, afterNanoseconds: 5 * millisecond)
        var safetyStops = 0
        poller.onWait = { _ in
            // A safety net so a broken stop() fails the test instead of spinning forever.
            if poller.waitTimeouts.count > 100 {
                safetyStops += 1
                loop.stop()
            }
        }
        loop.run()
        #expect(safetyStops == 0)
        #expect(poller.waitTimeouts == [-1])

        loop.stop()
        loop.runOnce(maxWaitMilliseconds: -1)
        #expect(poller.waitTimeouts == [-1, 0])
        poller.onWait = nil
    }

    @Test func deinitClosesThePoller() throws {
        let poller = FakePoller()
        do {
            let loop = try EventLoop(poller: poller, clock: poller.clock)
            loop.runOnce(maxWaitMilliseconds: 0)
        }
        #expect(poller.isClosed)
        #expect(poller.calls.last == .close)
    }
}
