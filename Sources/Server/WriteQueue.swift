// WriteQueue: a connection's outbound chunks (shared, never copied), flushed with one writev per tick.
import EventLoop
import IOBytes

/// A FIFO of immutable chunks plus the offset into the first. Chunks are shared with other queues
/// (one encoded frame in many connections), so nothing here copies payload bytes.
struct WriteQueue {
    private var chunks: [SharedBytes] = []
    private var start = 0
    private var offset = 0
    private(set) var byteCount = 0

    var isEmpty: Bool { byteCount == 0 }

    mutating func append(_ chunk: SharedBytes) {
        guard chunk.count > 0 else { return }
        chunks.append(chunk)
        byteCount += chunk.count
    }

    /// Writes as much as the socket takes. Returns true when the queue is drained, false when the
    /// kernel buffer filled (arm EPOLLOUT), and throws on a dead socket.
    mutating func flush(fd: Int32, vectors: IOVectors) throws(SystemError) -> Bool {
        while byteCount > 0 {
            var count = 0
            var index = start
            while index < chunks.count && count < vectors.capacity {
                let chunk = chunks[index]
                let skip = index == start ? offset : 0
                vectors.set(count, base: chunk.rawPointer + skip, count: chunk.count - skip)
                count += 1
                index += 1
            }
            let written: Int
            switch try vectors.write(fd: fd, count: count) {
            case .processed(let n): written = n
            case .wouldBlock: return false
            }
            consume(written)
            if index < chunks.count || byteCount == 0 { continue }
        }
        return true
    }

    private mutating func consume(_ written: Int) {
        var remaining = written
        byteCount -= written
        while remaining > 0 {
            let available = chunks[start].count - offset
            if remaining >= available {
                remaining -= available
                start += 1
                offset = 0
            } else {
                offset += remaining
                remaining = 0
            }
        }
        if start == chunks.count {
            chunks.removeAll(keepingCapacity: chunks.count <= 64)
            start = 0
        } else if start > 64 && start * 2 > chunks.count {
            chunks.removeFirst(start)
            start = 0
        }
    }

    /// Drops every chunk not yet started, keeping a partly written one so the byte stream stays framed.
    mutating func dropUnsent() {
        guard start < chunks.count else { return }
        let keep = offset > 0 ? 1 : 0
        let dropped = chunks[(start + keep)...].reduce(0) { $0 + $1.count }
        chunks.removeSubrange((start + keep)...)
        byteCount -= dropped
    }

    mutating func removeAll() {
        chunks = []
        start = 0
        offset = 0
        byteCount = 0
    }
}
