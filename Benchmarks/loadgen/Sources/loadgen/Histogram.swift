// Histogram: latency percentiles in microseconds with ~1.6 % relative precision and a fixed footprint.

/// A log-linear histogram: exact below 128, then 64 sub-buckets per power of two (HdrHistogram's idea,
/// small enough to keep one per run without allocation on the hot path).
struct Histogram {
    private var counts = [UInt64](repeating: 0, count: 128 + 58 * 64)
    private(set) var total: UInt64 = 0
    private(set) var maximum: UInt64 = 0

    /// Records one value (microseconds).
    mutating func record(_ value: UInt64) {
        counts[Self.index(value)] &+= 1
        total &+= 1
        if value > maximum { maximum = value }
    }

    /// Bucket of a value: identity below 128; above, the top 7 significant bits select the bucket.
    static func index(_ value: UInt64) -> Int {
        if value < 128 { return Int(value) }
        let msb = 63 - value.leadingZeroBitCount
        let shift = msb - 6
        let sub = Int(value >> UInt64(shift)) - 64
        return 128 + (shift - 1) * 64 + sub
    }

    /// The midpoint of a bucket's value range.
    static func value(at index: Int) -> UInt64 {
        if index < 128 { return UInt64(index) }
        let shift = (index - 128) / 64 + 1
        let sub = UInt64((index - 128) % 64 + 64)
        return (sub << UInt64(shift)) + (UInt64(1) << UInt64(shift)) / 2
    }

    /// The value below which a fraction `q` (0...1) of recordings fall; 0 when empty.
    func percentile(_ q: Double) -> UInt64 {
        guard total > 0 else { return 0 }
        let target = max(1, UInt64((Double(total) * q).rounded(.up)))
        var seen: UInt64 = 0
        for (index, count) in counts.enumerated() where count > 0 {
            seen += count
            if seen >= target { return min(Self.value(at: index), maximum) }
        }
        return maximum
    }
}
