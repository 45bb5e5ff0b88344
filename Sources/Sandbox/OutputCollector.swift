// OutputCollector: the pure state machine that turns a test run's raw pipe bytes into capped, batched lines.
public import EventLoop
import Glibc

/// Bounds on what a test run may print (invariant 6: test output is untrusted and bounded).
public struct OutputLimits: Sendable, Equatable {
    /// Bytes of lines (each counted with its newline) emitted per run; beyond it lines are only counted.
    /// Default 1 MiB: enough for any useful failure report, small enough for every subscriber's queue.
    public var maxEmittedBytes: Int
    /// A line longer than this is cut into several lines. Default 64 KiB.
    public var maxLineBytes: Int
    /// A partial line (no newline yet) is emitted after this long. Default 200 ms: prompts and progress
    /// dots become visible without waiting for the newline.
    public var partialLineFlushNanoseconds: UInt64
    /// How much of the end of the output is kept for failure analysis (the emitted and the suppressed
    /// lines alike: a failure summary is usually at the very end). Default 64 KiB.
    public var tailBytes: Int
    /// Raw output after which the run is killed (counting lines costs the loop CPU time; a test printing
    /// this much is broken). Default 256 MiB. Enforced by `TestRun`.
    public var killAfterBytes: Int

    public init(maxEmittedBytes: Int = 1 << 20, maxLineBytes: Int = 64 << 10, partialLineFlushNanoseconds: UInt64 = 200_000_000,
                tailBytes: Int = 64 << 10, killAfterBytes: Int = 256 << 20) {
        self.maxEmittedBytes = maxEmittedBytes
        self.maxLineBytes = maxLineBytes
        self.partialLineFlushNanoseconds = partialLineFlushNanoseconds
        self.tailBytes = tailBytes
        self.killAfterBytes = killAfterBytes
    }
}

/// Splits each stream into lines, applies the output cap and keeps the tail. No I/O, no clock: the
/// executor (`TestRun`) feeds bytes, asks for the pending batch once per tick, and fires the partial-line
/// timers it is told to arm.
///
/// Lines are split at `\n` only (a trailing `\r` is dropped). `\n` never occurs inside a multi-byte
/// UTF-8 sequence, so splitting there is safe; invalid UTF-8 becomes U+FFFD, never dropped. Once the
/// cap is reached every further line is suppressed (even short ones, so the emitted output is a true
/// prefix) and `finish` appends "[medic] output truncated: N more lines (M bytes)" on stderr.
public struct OutputCollector {
    public let limits: OutputLimits
    private var partial: [OutputStream: [UInt8]] = [.stdout: [], .stderr: []]
    private var partialGeneration: [OutputStream: UInt64] = [.stdout: 0, .stderr: 0]
    private var armedGeneration: [OutputStream: UInt64] = [.stdout: .max, .stderr: .max]
    private var swallowNextEmptyLine: [OutputStream: Bool] = [.stdout: false, .stderr: false]
    /// Emitted lines not yet taken, as runs of consecutive lines of one stream (arrival order kept).
    private var pending: [(stream: OutputStream, lines: [String])] = []
    private var tail: [UInt8] = []
    public private(set) var emittedBytes = 0
    /// Every byte ingested, emitted or not.
    public private(set) var totalBytes = 0
    public private(set) var suppressedLines = 0
    public private(set) var suppressedBytes = 0
    public var truncated: Bool { suppressedLines > 0 }

    public init(limits: OutputLimits = OutputLimits()) {
        self.limits = limits
    }

    /// Feeds a chunk read from `stream`. Returns a generation when a new partial line started: the
    /// executor arms a timer and calls `flushPartial(stream, generation:)` when it fires.
    public mutating func ingest(_ stream: OutputStream, _ bytes: UnsafeRawBufferPointer) -> UInt64? {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return nil }
        totalBytes += bytes.count
        var start = 0
        while start < bytes.count {
            let remaining = bytes.count - start
            if let hit = memchr(base + start, 0x0A, remaining) {
                let end = base.distance(to: UnsafeRawPointer(hit))
                appendPartial(stream, UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                completeLine(stream)
                start = end + 1
            } else {
                appendPartial(stream, UnsafeRawBufferPointer(rebasing: bytes[start...]))
                start = bytes.count
            }
        }
        // Every completed line bumps the stream's generation, so a timer armed for generation G covers
        // exactly the partial line that began after the G-th completion: one timer per partial line.
        guard !(partial[stream]!.isEmpty), armedGeneration[stream] != partialGeneration[stream] else { return nil }
        armedGeneration[stream] = partialGeneration[stream]
        return partialGeneration[stream]
    }

    /// Emits the partial line of `stream` if it is still the one the timer was armed for.
    public mutating func flushPartial(_ stream: OutputStream, generation: UInt64) {
        guard partialGeneration[stream] == generation, !(partial[stream]!.isEmpty) else { return }
        completeLine(stream)
        // If the newline of this line arrives later it ends an empty piece: swallow it, not a blank line.
        swallowNextEmptyLine[stream] = true
    }

    /// Emits every partial line (end of a command: its last line may lack a newline).
    public mutating func flushAllPartials() {
        for stream in [OutputStream.stdout, .stderr] where !(partial[stream]!.isEmpty) { completeLine(stream) }
    }

    /// End of the run: flushes partial lines and appends the truncation summary when lines were suppressed.
    public mutating func finish() {
        flushAllPartials()
        if truncated {
            let summary = "[medic] output truncated: \(suppressedLines) more lines (\(suppressedBytes) bytes)"
            appendPending(.stderr, summary)
            appendTail(Array(summary.utf8))
        }
    }

    /// Appends a line of Medic's own (e.g. "[medic] setup command failed") outside the cap.
    public mutating func note(_ stream: OutputStream, _ line: String) {
        flushAllPartials()
        appendPending(stream, line)
        appendTail(Array(line.utf8))
    }

    /// Takes the lines emitted since the last call, as runs per stream in arrival order.
    public mutating func takePending() -> [(stream: OutputStream, lines: [String])] {
        defer { pending.removeAll(keepingCapacity: true) }
        return pending
    }

    public var hasPending: Bool { !pending.isEmpty }

    /// The last `limits.tailBytes` of output (whole lines where possible), for failure analysis.
    public var outputTail: String {
        var bytes = tail.count > limits.tailBytes ? Array(tail[(tail.count - limits.tailBytes)...]) : tail
        // Start at a line (or at least a character) boundary.
        if tail.count > limits.tailBytes, let newline = bytes.firstIndex(of: 0x0A), newline < bytes.count / 2 {
            bytes.removeFirst(newline + 1)
        }
        while let first = bytes.first, first & 0xC0 == 0x80 { bytes.removeFirst() }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: internals

    private mutating func appendPartial(_ stream: OutputStream, _ bytes: UnsafeRawBufferPointer) {
        let maxLine = max(limits.maxLineBytes, 4)
        var rest = bytes[...]
        while !rest.isEmpty {
            let room = max(maxLine - partial[stream]!.count, 0)
            if rest.count <= room {
                partial[stream]!.append(contentsOf: rest)
                return
            }
            partial[stream]!.append(contentsOf: rest.prefix(room))
            rest = rest.dropFirst(room)
            // The line is over-long: cut it, backing off an incomplete UTF-8 sequence at the end so a
            // character is not split in two replacement characters; those bytes start the next piece.
            var line = partial[stream]!
            var lead = line.count - 1
            var continuation = 0
            while lead > 0, continuation < 3, line[lead] & 0xC0 == 0x80 {
                lead -= 1
                continuation += 1
            }
            var cut = line.count
            if line[lead] & 0xC0 == 0xC0 {
                let needed = line[lead] >= 0xF0 ? 3 : line[lead] >= 0xE0 ? 2 : 1
                if continuation < needed && lead > 0 { cut = lead }
            }
            let carry = Array(line[cut...])
            line.removeSubrange(cut...)
            partial[stream] = line
            completeLine(stream)
            partial[stream]!.append(contentsOf: carry)
        }
    }

    private mutating func completeLine(_ stream: OutputStream) {
        var line = partial[stream]!
        partial[stream]!.removeAll(keepingCapacity: true)
        partialGeneration[stream]! &+= 1
        if swallowNextEmptyLine[stream]! {
            swallowNextEmptyLine[stream] = false
            if line.isEmpty { return }
        }
        if line.last == 0x0D { line.removeLast() }
        appendTail(line)
        let cost = line.count + 1
        if suppressedLines == 0 && emittedBytes + cost <= limits.maxEmittedBytes {
            emittedBytes += cost
            appendPending(stream, String(decoding: line, as: UTF8.self))
        } else {
            suppressedLines += 1
            suppressedBytes += cost
        }
    }

    private mutating func appendPending(_ stream: OutputStream, _ line: String) {
        if let last = pending.indices.last, pending[last].stream == stream {
            pending[last].lines.append(line)
        } else {
            pending.append((stream, [line]))
        }
    }

    private mutating func appendTail(_ line: [UInt8]) {
        tail.append(contentsOf: line)
        tail.append(0x0A)
        if tail.count > 2 * limits.tailBytes { tail.removeFirst(tail.count - limits.tailBytes) }
    }
}
