// Payload: the benchmark message body — a send timestamp and a sequence number, padded to a fixed size.
import CLoadgen

/// `bench:<19-digit monotonic ns>:<10-digit seq>:xxxx…` — found inside any wrapper (Medic's event JSON)
/// by its marker, so the same parser serves echo, NIO pub/sub and Medic's comment events.
enum Payload {
    static let marker: [UInt8] = Array("bench:".utf8)
    /// Bytes before the padding: marker + 19 digits + ':' + 10 digits + ':'.
    static let headerLength = 6 + 19 + 1 + 10 + 1

    /// Writes a payload of `size` bytes (at least `headerLength`) into `buffer`.
    static func write(into buffer: inout [UInt8], size: Int, timestamp: UInt64, seq: Int) {
        buffer.removeAll(keepingCapacity: true)
        buffer.append(contentsOf: marker)
        appendDigits(&buffer, timestamp, width: 19)
        buffer.append(UInt8(ascii: ":"))
        appendDigits(&buffer, UInt64(seq), width: 10)
        buffer.append(UInt8(ascii: ":"))
        while buffer.count < size { buffer.append(UInt8(ascii: "x")) }
    }

    private static func appendDigits(_ buffer: inout [UInt8], _ value: UInt64, width: Int) {
        let start = buffer.count
        for _ in 0..<width { buffer.append(UInt8(ascii: "0")) }
        var v = value
        var i = start + width - 1
        while v > 0 && i >= start {
            buffer[i] = UInt8(ascii: "0") + UInt8(v % 10)
            v /= 10
            i -= 1
        }
    }

    /// Finds the marker in a received message and returns (timestamp, seq), or nil if absent.
    static func parse(_ message: UnsafeRawBufferPointer) -> (timestamp: UInt64, seq: Int)? {
        guard let base = message.baseAddress, message.count >= headerLength else { return nil }
        guard let found = marker.withUnsafeBytes({ lg_memmem(base, message.count, $0.baseAddress, 6) }) else {
            return nil
        }
        let offset = UnsafeRawPointer(found) - base
        guard message.count - offset >= headerLength else { return nil }
        let p = found.assumingMemoryBound(to: UInt8.self)
        var ts: UInt64 = 0
        for i in 6..<25 { ts = ts &* 10 &+ UInt64(p[i] &- 48) }
        var seq = 0
        for i in 26..<36 { seq = seq &* 10 &+ Int(p[i] &- 48) }
        return (ts, seq)
    }
}

/// Small byte-level searches over received JSON (the load generator never decodes JSON).
enum Bytes {
    /// Whether `needle` occurs in `haystack`.
    static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: StaticString) -> Bool {
        find(haystack, needle) != nil
    }

    /// Offset just past the first occurrence of `needle`, or nil.
    static func find(_ haystack: UnsafeRawBufferPointer, _ needle: StaticString) -> Int? {
        guard let base = haystack.baseAddress,
            let found = lg_memmem(base, haystack.count, needle.utf8Start, needle.utf8CodeUnitCount)
        else { return nil }
        return UnsafeRawPointer(found) - base + needle.utf8CodeUnitCount
    }

    /// Number of non-overlapping occurrences of `needle`.
    static func count(_ haystack: UnsafeRawBufferPointer, _ needle: StaticString) -> Int {
        guard var p = haystack.baseAddress else { return 0 }
        var left = haystack.count
        var n = 0
        let len = needle.utf8CodeUnitCount
        while left >= len, let found = lg_memmem(p, left, needle.utf8Start, len) {
            n += 1
            let advance = UnsafeRawPointer(found) - p + len
            p += advance
            left -= advance
        }
        return n
    }

    /// The integer after `key` (e.g. `"ts":`), or nil.
    static func integer(after key: StaticString, in haystack: UnsafeRawBufferPointer) -> Int64? {
        guard var i = find(haystack, key) else { return nil }
        var value: Int64 = 0
        var any = false
        while i < haystack.count, haystack[i] >= 48, haystack[i] <= 57 {
            value = value * 10 + Int64(haystack[i] - 48)
            i += 1
            any = true
        }
        return any ? value : nil
    }

    /// The string value after `key` (e.g. `"proposal":"`), up to the next quote.
    static func string(after key: StaticString, in haystack: UnsafeRawBufferPointer) -> String? {
        guard let start = find(haystack, key) else { return nil }
        var end = start
        while end < haystack.count, haystack[end] != UInt8(ascii: "\"") { end += 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: haystack[start..<end]), as: UTF8.self)
    }
}
