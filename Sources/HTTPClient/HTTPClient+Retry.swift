// HTTPClient+Retry: runs a request through RetryPolicy on the loop — attempts, waits on loop timers, one outcome.
public import EventLoop

/// A request being retried; `cancel()` stops it wherever it is (in flight or waiting for the next attempt).
public final class RetryingTransfer {
    fileprivate let client: HTTPClient
    fileprivate let loop: EventLoop
    fileprivate let request: HTTPClientRequest
    fileprivate let policy: RetryPolicy
    fileprivate let random: () -> Double
    fileprivate let maxErrorBodyBytes: Int
    fileprivate let onAttempt: (Int) -> Void
    fileprivate let onHead: (HTTPClientResponseHead) -> Void
    fileprivate let onBody: (UnsafeRawBufferPointer) -> Void
    fileprivate let onComplete: (Result<HTTPClientResponseHead, HTTPClientError>) -> Void

    /// Attempts started so far.
    public private(set) var attempts = 0
    /// True between a failed attempt and the next one (a loop timer is pending).
    public var isWaitingToRetry: Bool { waiting != nil }
    /// True once `onComplete` has run.
    public var isDone: Bool { done }
    fileprivate var current: TransferID?
    fileprivate var waiting: TimerID?
    fileprivate var done = false

    fileprivate init(
        client: HTTPClient, loop: EventLoop, request: HTTPClientRequest, policy: RetryPolicy, random: @escaping () -> Double,
        maxErrorBodyBytes: Int, onAttempt: @escaping (Int) -> Void, onHead: @escaping (HTTPClientResponseHead) -> Void,
        onBody: @escaping (UnsafeRawBufferPointer) -> Void,
        onComplete: @escaping (Result<HTTPClientResponseHead, HTTPClientError>) -> Void
    ) {
        self.client = client
        self.loop = loop
        self.request = request
        self.policy = policy
        self.random = random
        self.maxErrorBodyBytes = maxErrorBodyBytes
        self.onAttempt = onAttempt
        self.onHead = onHead
        self.onBody = onBody
        self.onComplete = onComplete
    }

    /// Stops retrying; `onComplete` gets `.aborted` (synchronously) unless it already ran.
    public func cancel() {
        guard !done else { return }
        if let waiting {
            loop.cancel(waiting)
            self.waiting = nil
            complete(.failure(HTTPClientError(code: .aborted, message: "cancelled")))
        } else if let current {
            client.cancel(current)  // its onComplete reports .aborted, which is never retried
        }
    }

    fileprivate func startAttempt() {
        attempts += 1
        let attempt = attempts
        onAttempt(attempt)
        guard !done else { return }  // onAttempt may have cancelled
        // Per attempt: a retryable status is held back (head + body collected for the error), anything else streams.
        var heldHead: HTTPClientResponseHead?
        var heldBody: [UInt8] = []
        var streamed = false
        current = client.execute(
            request,
            onHead: { [self] head in
                if policy.isRetryable(status: head.status) {
                    heldHead = head
                } else {
                    streamed = true
                    onHead(head)
                }
            },
            onBody: { [self] chunk in
                if heldHead != nil {
                    heldBody.append(contentsOf: chunk.prefix(max(0, maxErrorBodyBytes - heldBody.count)))
                } else {
                    onBody(chunk)
                }
            },
            onComplete: { [self] result in
                current = nil
                if done { return }
                switch result {
                case .success(let head):
                    if let held = heldHead {
                        retryOrFail(attempt: attempt, head: held, body: heldBody, error: nil)
                    } else {
                        complete(.success(head))
                    }
                case .failure(let error):
                    if error.code == .aborted || streamed {
                        complete(.failure(error))  // cancelled, or the caller already saw this attempt's head
                    } else if let held = heldHead {
                        retryOrFail(attempt: attempt, head: held, body: heldBody, error: error)
                    } else if error.code == .connect || error.code == .timeout {
                        retryOrFail(attempt: attempt, head: nil, body: [], error: error)
                    } else {
                        complete(.failure(error))
                    }
                }
            })
    }

    /// Waits and tries again if the policy allows; otherwise reports the last failure.
    private func retryOrFail(attempt: Int, head: HTTPClientResponseHead?, body: [UInt8], error: HTTPClientError?) {
        let wait = policy.delay(
            afterAttempt: attempt, status: head?.status, retryAfter: head?.header("retry-after"),
            retryAfterMs: head?.header("retry-after-ms"), random: random())
        guard let wait else {
            if let head {
                let text = String(decoding: body, as: UTF8.self)
                complete(.failure(HTTPClientError(
                    code: .httpStatus, message: "HTTP \(head.status) after \(attempt) attempt(s): \(text)", status: head.status)))
            } else if let error {
                complete(.failure(error))
            }
            return
        }
        waiting = loop.schedule(afterNanoseconds: UInt64(wait) * 1_000_000) { [self] in
            waiting = nil
            if !done { startAttempt() }
        }
    }

    private func complete(_ result: Result<HTTPClientResponseHead, HTTPClientError>) {
        guard !done else { return }
        done = true
        onComplete(result)
    }
}

/// Executes `request`, retrying per `policy` (see `RetryPolicy`). Only the attempt that is finally accepted streams:
/// `onHead`/`onBody` see a non-retryable answer (2xx, 4xx other than 429, …); a retryable status's body is collected
/// (up to `maxErrorBodyBytes`, default 64 KiB) and, when the policy gives up, reported as `.httpStatus` with that
/// body in the message. Connect errors and timeouts before any head are retried; an error after the head was
/// streamed is not (the caller has already seen bytes). `onAttempt(n)` runs as attempt n (1-based) starts.
/// Waits are loop timers; everything runs on the loop thread.
@discardableResult
public func executeWithRetry(
    client: HTTPClient, loop: EventLoop, request: HTTPClientRequest, policy: RetryPolicy = RetryPolicy(),
    random: @escaping () -> Double = { Double.random(in: 0..<1) }, maxErrorBodyBytes: Int = 64 << 10,
    onAttempt: @escaping (Int) -> Void = { _ in },
    onHead: @escaping (HTTPClientResponseHead) -> Void,
    onBody: @escaping (UnsafeRawBufferPointer) -> Void,
    onComplete: @escaping (Result<HTTPClientResponseHead, HTTPClientError>) -> Void
) -> RetryingTransfer {
    let transfer = RetryingTransfer(
        client: client, loop: loop, request: request, policy: policy, random: random, maxErrorBodyBytes: maxErrorBodyBytes,
        onAttempt: onAttempt, onHead: onHead, onBody: onBody, onComplete: onComplete)
    transfer.startAttempt()
    return transfer
}
