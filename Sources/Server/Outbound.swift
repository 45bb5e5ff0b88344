// Outbound: a connection's pending output, written with one writev per flush. Shared frames are queued by
// reference (a fan-out frame is encoded once and never copied); small frames of this connection alone (an
// echo, an ack) are copied into one staging buffer, so sending them allocates nothing. The server lends an
// Outbound to a connection while it has bytes to write and takes it back when drained: an idle connection
// holds no output memory, a busy one reuses capacity instead of allocating per tick.
import EventLoop
import IOBytes

final class Outbound {
    /// A run of bytes to write: a shared frame (`owner` set; bytes at `owner.rawPointer + start`) or a
    /// run of the staging buffer (`owner` nil; bytes at `staging + start`).
    private struct Segment {
        var owner: SharedBytes?
        var start: Int
        var count: Int
    }

    private var segments: [Segment] = []
    /// Index of the first segment not completely written.
    private var head = 0
    /// Whether segment `head` was partly written (a frame is in flight: it must not be dropped).
    private var headStarted = false
    private var staging: UnsafeMutableRawPointer?
    private var stagingCapacity = 0
    private var stagingUsed = 0
    /// Bytes queued and not yet written.
    private(set) var byteCount = 0
    /// Pongs of this connection queued since the queue was last empty (cleared when it empties).
    var pongsQueued: UInt8 = 0
    /// The Pong answering the latest Ping, held back while an earlier Pong is still queued and queued by the
    /// connection when this queue empties (RFC 6455 §5.5.3: only the most recent Ping needs an answer). It
    /// lives here, not in the connection, so an idle connection pays nothing for it.
    var owedPong: [UInt8]?

    deinit { staging?.deallocate() }

    /// Queues a shared frame by reference.
    func append(_ chunk: SharedBytes) {
        guard chunk.count > 0 else { return }
        segments.append(Segment(owner: chunk, start: 0, count: chunk.count))
        byteCount += chunk.count
    }

    /// Queues `count` bytes that `fill` writes straight into the staging buffer (exactly `count` of them).
    func appendCopy(count: Int, fill: (UnsafeMutableRawPointer) -> Void) {
        guard count > 0 else { return }
        reserveStaging(count)
        fill(staging! + stagingUsed)
        let last = segments.count - 1
        if last >= head, segments[last].owner == nil, segments[last].start + segments[last].count == stagingUsed {
            segments[last].count += count  // contiguous with the previous staged run: one iovec for both
        } else {
            segments.append(Segment(owner: nil, start: stagingUsed, count: count))
        }
        stagingUsed += count
        byteCount += count
    }

    /// Queues a copy of `bytes`.
    func appendCopy(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress else { return }
        appendCopy(count: bytes.count) { $0.copyMemory(from: source, byteCount: bytes.count) }
    }

    /// Writes as much as the socket takes. Returns true when drained, false when the kernel buffer filled
    /// (the caller arms EPOLLOUT), and throws on a dead socket.
    func flush(fd: Int32, vectors: IOVectors) throws(SystemError) -> Bool {
        while byteCount > 0 {
            var count = 0
            var index = head
            while index < segments.count && count < vectors.capacity {
                let segment = segments[index]
                let base = segment.owner.map { $0.rawPointer } ?? UnsafeRawPointer(staging!)
                vectors.set(count, base: base + segment.start, count: segment.count)
                count += 1
                index += 1
            }
            switch try vectors.write(fd: fd, count: count) {
            case .processed(let written): consume(written)
            case .wouldBlock: return false
            }
        }
        return true
    }

    private func consume(_ written: Int) {
        var remaining = written
        byteCount -= written
        while remaining > 0 {
            let available = segments[head].count
            if remaining >= available {
                remaining -= available
                segments[head].owner = nil  // release the shared frame now
                head += 1
                headStarted = false
            } else {
                segments[head].start += remaining
                segments[head].count -= remaining
                headStarted = true
                remaining = 0
            }
        }
        if head == segments.count {
            empty()
        } else if head > 64 && head * 2 > segments.count {
            segments.removeFirst(head)
            head = 0
        }
    }

    /// Drops every frame not yet started, keeping one partly written so the byte stream stays framed.
    /// (A partly written staged run may hold several small frames; they are kept whole.)
    func dropUnsent() {
        let keep = head + (headStarted ? 1 : 0)
        guard keep < segments.count else { return }
        for segment in segments[keep...] { byteCount -= segment.count }
        segments.removeSubrange(keep...)
        if byteCount == 0 { reset() }
    }

    /// Forgets everything queued, an owed Pong included; capacity is kept within the pool's bounds.
    func reset() {
        owedPong = nil
        empty()
    }

    /// Everything was written (or dropped): forgets the segments but keeps an owed Pong.
    private func empty() {
        pongsQueued = 0
        segments.removeAll(keepingCapacity: segments.capacity <= 1024)
        head = 0
        headStarted = false
        byteCount = 0
        stagingUsed = 0
        if stagingCapacity > 64 << 10 {
            staging?.deallocate()
            staging = nil
            stagingCapacity = 0
        }
    }

    /// Makes room for `count` more staged bytes: first by sliding the unwritten staged bytes to the front
    /// (offsets of their segments move with them), then by growing.
    private func reserveStaging(_ count: Int) {
        if stagingUsed + count <= stagingCapacity { return }
        if let liveStart = segments[head...].first(where: { $0.owner == nil })?.start, liveStart > 0 {
            let live = stagingUsed - liveStart
            staging!.copyMemory(from: staging! + liveStart, byteCount: live)
            for index in head..<segments.count where segments[index].owner == nil { segments[index].start -= liveStart }
            stagingUsed = live
        } else if !segments[head...].contains(where: { $0.owner == nil }) {
            stagingUsed = 0
        }
        if stagingUsed + count <= stagingCapacity { return }
        // Small at first (a welcome or a 101 is all most connections ever stage); doubled as needed.
        let capacity = max(stagingCapacity * 2, stagingUsed + count, 512)
        let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        if let staging {
            grown.copyMemory(from: staging, byteCount: stagingUsed)
            staging.deallocate()
        }
        staging = grown
        stagingCapacity = capacity
    }
}
