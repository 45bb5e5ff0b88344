// Poller: the kernel readiness interface the loop talks to (epoll in production, a fake in tests).

/// What a registration wants to be woken for.
public struct Interest: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let read = Interest(rawValue: 1)
    public static let write = Interest(rawValue: 2)
    public static let none: Interest = []
}

/// What the kernel reported for one fd.
public struct IOEvents: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let readable = IOEvents(rawValue: 1)
    public static let writable = IOEvents(rawValue: 2)
    /// Error or hang-up: the handler should read (to see EOF / the error) and close.
    public static let hangup = IOEvents(rawValue: 4)
}

/// One readiness report: the token given at registration (fd + generation) and the events.
public struct PollEvent: Sendable {
    public var token: UInt64
    public var events: IOEvents
    public init(token: UInt64, events: IOEvents) {
        self.token = token
        self.events = events
    }
}

/// The readiness backend. Level-triggered semantics are assumed throughout.
public protocol Poller: AnyObject {
    func add(fd: Int32, interest: Interest, token: UInt64) throws(SystemError)
    func modify(fd: Int32, interest: Interest, token: UInt64) throws(SystemError)
    func remove(fd: Int32) throws(SystemError)
    /// Waits at most `timeoutMilliseconds` (-1 = forever, 0 = poll) and calls `body` for each event.
    func wait(timeoutMilliseconds: Int32, _ body: (PollEvent) -> Void) throws(SystemError)
    func close()
}
