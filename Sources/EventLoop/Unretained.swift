// Unretained: a non-owning reference for callbacks that must not keep their target alive.

/// A non-owning reference that, unlike `weak`, leaves its target's reference counting on the fast path:
/// the first `weak` reference to an object gives it a side table, and from then on every retain and
/// release of it goes through the runtime's slow path (9 % of the echo benchmark's CPU, seen in perf).
/// The target calls `invalidate()` in its `deinit`; holders read `value`, which is nil afterwards.
/// Loop-thread only, like the objects it is used for.
public final class Unretained<Target: AnyObject> {
    // unowned(unsafe): never read after the target's deinit, which clears `valid` first.
    private unowned(unsafe) let target: Target
    private var valid = true

    public init(_ target: Target) { self.target = target }

    /// The target, or nil once it is gone.
    public var value: Target? { valid ? target : nil }

    public func invalidate() { valid = false }
}
