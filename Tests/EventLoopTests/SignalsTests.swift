// SignalsTests: SIGUSR1/SIGUSR2 arrive as loop events through a SignalSource (signalfd), on a thread of their own.
import Dispatch
import EventLoop
import Foundation
import Glibc
import Synchronization
import Testing

@Suite struct SignalsTests {
    /// Everything runs on a fresh thread so the blocked mask dies with it. The signals are sent to that
    /// thread (`pthread_kill`), not to the process: `kill(getpid(), SIGUSR1)` may be delivered to any
    /// thread that does not block SIGUSR1 — the test runner's threads — whose default action ends the process.
    @Test func blockedSignalsArriveThroughTheLoop() throws {
        let outcome = Mutex<Result<(before: [Int32], after: [Int32]), any Error>?>(nil)
        let finished = DispatchSemaphore(value: 0)
        Thread {
            defer { finished.signal() }
            Signals.block([SIGUSR1, SIGUSR2])
            var received: [Int32] = []
            do {
                let loop = try EventLoop()
                let source = try SignalSource(loop: loop, signals: [SIGUSR1, SIGUSR2]) { received.append($0) }
                loop.runOnce(maxWaitMilliseconds: 0)
                let before = received
                pthread_kill(pthread_self(), SIGUSR1)
                _ = runLoop(loop, seconds: 20) { received.count >= before.count + 1 }
                pthread_kill(pthread_self(), SIGUSR2)
                _ = runLoop(loop, seconds: 20) { received.count >= before.count + 2 }
                // Read once, delivered once.
                loop.runOnce(maxWaitMilliseconds: 0)
                source.close()
                source.close()  // idempotent
                outcome.withLock { $0 = .success((before, received)) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
            }
        }.start()
        finished.wait()
        let received = try #require(outcome.withLock { $0 }).get()
        // Nothing before the first signal was sent, then exactly USR1, USR2.
        #expect(received.before.isEmpty)
        #expect(received.after == [SIGUSR1, SIGUSR2])
    }

    @Test func blockIgnoresSigpipeSoAWriteToAClosedPeerIsAnError() throws {
        Signals.block([])
        let (a, b) = try unixSocketPair()
        close(b)
        var byte: UInt8 = 1
        let error = #expect(throws: SystemError.self) { _ = try syscall("write") { write(a, &byte, 1) } }
        close(a)
        #expect(error?.errno == EPIPE)
    }
}
