// LoopThread: runs an EventLoop (and whatever the test builds on it) on a thread of its own.
public import EventLoop
import Foundation
import Synchronization

/// Starts a loop on a new thread, builds the test's server on it, and stops it on `stop()`.
/// The setup closure runs on the loop thread and returns a value (e.g. the bound port) to the test.
public final class LoopThread: Sendable {
    private let handle: Mutex<EventLoopHandle?> = Mutex(nil)
    private let finished = DispatchSemaphore(value: 0)

    /// Blocks until `setup` has run on the new loop thread; rethrows its error.
    public static func start<T: Sendable>(_ setup: @escaping @Sendable (EventLoop) throws -> T) throws -> (LoopThread, T) {
        let thread = LoopThread()
        let ready = DispatchSemaphore(value: 0)
        let result = Mutex<Result<T, any Error>?>(nil)
        let worker = Thread {
            do {
                let loop = try EventLoop()
                let value = try setup(loop)
                thread.handle.withLock { $0 = loop.handle }
                result.withLock { $0 = .success(value) }
                ready.signal()
                loop.run()
            } catch {
                result.withLock { $0 = .failure(error) }
                ready.signal()
            }
            thread.finished.signal()
        }
        worker.stackSize = 8 << 20
        worker.start()
        ready.wait()
        let value = try result.withLock { $0! }.get()
        return (thread, value)
    }

    /// Runs `work` on the loop thread (fire and forget).
    public func execute(_ work: @escaping DeferredWork) {
        handle.withLock { $0 }?.execute(work)
    }

    /// Runs `work` on the loop thread and waits for its result.
    public func sync<T: Sendable>(_ work: @escaping @Sendable (EventLoop) -> T) -> T {
        let done = DispatchSemaphore(value: 0)
        let box = Mutex<T?>(nil)
        execute { loop in
            box.withLock { $0 = work(loop) }
            done.signal()
        }
        done.wait()
        return box.withLock { $0! }
    }

    /// Stops the loop and waits for the thread to end.
    public func stop() {
        execute { $0.stop() }
        finished.wait()
    }
}
