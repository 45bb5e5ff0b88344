// SSEParser: an incremental server-sent-events parser (WHATWG HTML §9.2.6) that resumes at any byte split.

/// One dispatched server-sent event.
public struct SSEEvent: Sendable, Hashable {
    /// The `event:` field, or "message" when absent.
    public var event: String
    /// The `data:` lines joined with "\n".
    public var data: String
    /// The last `id:` field seen, if any.
    public var id: String?

    public init(event: String = "message", data: String, id: String? = nil) {
        self.event = event
        self.data = data
        self.id = id
    }
}

/// Why an SSE stream was refused.
public struct SSEError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The configured limit that was exceeded.
    public let limit: Int
    /// Which limit: "line" or "event".
    public let which: String
    public var description: String { "server-sent event \(which) longer than \(limit) bytes" }
}

/// Feed bytes as they arrive; complete events come out. Lines end in CRLF, LF or CR (a CR at the end of one
/// chunk followed by LF at the start of the next is one line end). A blank line dispatches the event.
public struct SSEParser: Sendable {
    /// Longest line in bytes (default 1 MiB).
    public let maxLineBytes: Int
    /// Largest event data in bytes (default 4 MiB).
    public let maxEventBytes: Int

    private var line: [UInt8] = []
    private var lastWasCR = false
    private var sawFirstByte = false
    private var eventName = ""
    private var data: [UInt8] = []
    private var hasData = false
    private var lastID: String?

    public init(maxLineBytes: Int = 1 << 20, maxEventBytes: Int = 4 << 20) {
        self.maxLineBytes = maxLineBytes
        self.maxEventBytes = maxEventBytes
    }

    /// Consumes a chunk and returns the events it completed.
    public mutating func feed(_ bytes: some Sequence<UInt8>) throws(SSEError) -> [SSEEvent] {
        var events: [SSEEvent] = []
        for b in bytes {
            if b == 0x0A, lastWasCR {
                lastWasCR = false
                continue
            }
            lastWasCR = false
            if b == 0x0A || b == 0x0D {
                lastWasCR = b == 0x0D
                if let event = try processLine() { events.append(event) }
                line.removeAll(keepingCapacity: true)
                continue
            }
            guard line.count < maxLineBytes else { throw SSEError(limit: maxLineBytes, which: "line") }
            line.append(b)
        }
        return events
    }

    private mutating func processLine() throws(SSEError) -> SSEEvent? {
        if !sawFirstByte {
            sawFirstByte = true
            // The stream may start with a UTF-8 byte order mark, which is ignored.
            if line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }
        }
        if line.isEmpty { return dispatch() }
        if line[0] == UInt8(ascii: ":") { return nil }
        let field: [UInt8]
        var value: ArraySlice<UInt8>
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            field = Array(line[..<colon])
            value = line[(colon + 1)...]
            if value.first == 0x20 { value = value.dropFirst() }
        } else {
            field = line
            value = []
        }
        switch String(decoding: field, as: UTF8.self) {
        case "event": eventName = String(decoding: value, as: UTF8.self)
        case "data":
            if hasData { data.append(0x0A) }
            data.append(contentsOf: value)
            hasData = true
            guard data.count <= maxEventBytes else { throw SSEError(limit: maxEventBytes, which: "event") }
        case "id":
            if !value.contains(0) { lastID = String(decoding: value, as: UTF8.self) }
        default: break  // "retry" and unknown fields do not concern a one-shot client.
        }
        return nil
    }

    private mutating func dispatch() -> SSEEvent? {
        defer {
            eventName = ""
            data.removeAll(keepingCapacity: true)
            hasData = false
        }
        guard hasData else { return nil }
        return SSEEvent(event: eventName.isEmpty ? "message" : eventName, data: String(decoding: data, as: UTF8.self), id: lastID)
    }
}
