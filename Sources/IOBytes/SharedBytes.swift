// SharedBytes: immutable, reference-counted bytes with a stable address, shared by many write queues.

/// An immutable byte buffer allocated once. Many connections' queues can hold the same
/// instance (invariant 3, "encode once"); its storage never moves, so `writev` can point at it.
public final class SharedBytes: @unchecked Sendable {
    // @unchecked: the storage is written only in `init` and never mutated afterwards,
    // so concurrent reads from any thread are safe.
    public let count: Int
    private let storage: UnsafeMutableRawPointer

    /// Copies `bytes` into new storage.
    public init<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        count = bytes.count
        storage = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 16)
        let typed = storage.bindMemory(to: UInt8.self, capacity: max(count, 1))
        _ = UnsafeMutableBufferPointer(start: typed, count: count).initialize(from: bytes)
    }

    /// Allocates `count` bytes and lets `fill` write them exactly once.
    public init(count: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) {
        self.count = count
        storage = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 16)
        fill(UnsafeMutableRawBufferPointer(start: storage, count: count))
    }

    deinit { storage.deallocate() }

    /// The bytes, valid as long as this object is alive.
    public var rawPointer: UnsafeRawPointer { UnsafeRawPointer(storage) }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage, count: count))
    }

    /// A copy as an array (tests and small payloads only).
    public var array: [UInt8] { withUnsafeBytes { Array($0) } }
}
