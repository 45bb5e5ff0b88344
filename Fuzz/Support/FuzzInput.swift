// FuzzInput: the fuzzer's bytes as decisions (limits, split points, modes) followed by the payload under test.

/// Reads choices from the front of a libFuzzer input; the rest is the payload. Choices read past the end are 0,
/// so every input — even the empty one — is valid and the fuzzer can grow decisions and payload independently.
struct FuzzInput {
    private let bytes: [UInt8]
    private var index = 0

    init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    }

    /// One decision byte.
    mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    /// A number in `0..<bound` from two decision bytes.
    mutating func int(below bound: Int) -> Int {
        let raw = Int(byte()) << 8 | Int(byte())
        return bound > 0 ? raw % bound : 0
    }

    mutating func bool() -> Bool { byte() & 1 == 1 }

    /// Everything not consumed as a decision.
    var rest: [UInt8] { index < bytes.count ? Array(bytes[index...]) : [] }
}

/// A broken invariant is a crash: libFuzzer keeps the input that caused it.
func require(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition { fatalError("invariant broken: \(message())", file: file, line: line) }
}

/// Split points for feeding a stream in pieces: one fuzzer-chosen cut, or every byte when `drip` and short.
func cuts(count: Int, at point: Int, drip: Bool) -> [Int] {
    if drip && count <= 512 { return count > 1 ? Array(1..<count) : [] }
    return count > 0 ? [point % (count + 1)] : []
}

/// `bytes` in the pieces `cuts` makes (cuts ascending, inside 0...count).
func pieces(_ bytes: [UInt8], _ cuts: [Int]) -> [[UInt8]] {
    var out: [[UInt8]] = []
    var start = 0
    for end in cuts + [bytes.count] where end >= start {
        out.append(Array(bytes[start..<end]))
        start = end
    }
    return out
}
