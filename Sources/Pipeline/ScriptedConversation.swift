// ScriptedConversation: the offline LLM provider's script file, so demos and tests run without the network.
import Protocol

/// Canned model replies, looked up by purpose, title, approach and attempt number.
///
/// File format (JSON):
/// ```json
/// {"replies": [
///   {"match": "redis", "attempt": 1, "delay_ms": 200,
///    "reply": {"unfixable": false, "explanation": "…", "changes": [{"path": "app.py", "action": "modify", "content": "…"}]}},
///   {"attempt": 2, "reply": "not JSON at all: exercises fix_failed"}
/// ]}
/// ```
/// - `match` (optional string): case-insensitive substring of the proposal title (the bug title for every bug
///   request); absent matches every title.
/// - `attempt` (optional integer ≥ 1): the attempt number (fix attempts 1, 2, …; a bug reproducer's re-ask is 2);
///   absent matches every attempt.
/// - `purpose` (optional non-empty string, default `"fix"`): which request the entry answers — `"fix"` (a proposal's
///   or an approach's fix attempt), `"bug_analysis"`, `"bug_reproducer"`, `"bug_approach"`. It must equal the
///   request's purpose, so a script written before bugs existed answers fix requests only.
/// - `approach` (optional integer ≥ 1): the bug approach number the entry answers; absent matches every approach
///   (and requests that have none).
/// - `reply` (required): an object in the `FixReply` format, returned as its JSON text, or a string returned
///   verbatim (to script malformed replies). The text then goes through `FixReply.parse` like a real reply.
/// - `delay_ms` (optional integer ≥ 0, default 0): how long the reply takes to write, streamed as it goes
///   (see `Entry.streamSchedule()`; the executor's timer, nothing here sleeps).
/// The first entry that matches wins.
public struct ScriptedConversation: Sendable {
    /// One scripted reply.
    public struct Entry: Sendable, Hashable {
        /// Title substring, or nil for any.
        public var match: String?
        /// Attempt number, or nil for any.
        public var attempt: Int?
        /// The request purpose answered (`"fix"` when the file gives none).
        public var purpose: String = ScriptedConversation.defaultPurpose
        /// Bug approach number, or nil for any.
        public var approach: Int?
        /// The reply text handed to `FixReply.parse`.
        public var reply: String
        /// Delay before answering.
        public var delayMs: Int
        /// Where the explanation's string value lies in `reply` (character offsets), for an object reply.
        public var explanationRange: Range<Int>?

        /// Pieces of the scripted reply written over the explanation this much slower than the rest: a person
        /// watching reads the explanation as it appears, and the file contents after it flow by.
        public static let explanationSlowdown = 8

        /// How the reply streams: pieces of about 24 characters (at least 8, at most 160 pieces) in order, each
        /// with the time (ns after the request) it is written; together they are `reply`, and the last one is
        /// written at `delayMs`. Pieces of the explanation take `explanationSlowdown` times as long as others.
        public func streamSchedule() -> [(text: String, atNanoseconds: UInt64)] {
            let characters = Array(reply)
            guard !characters.isEmpty else { return [] }
            let count = min(160, max(8, characters.count / 24))
            let size = max(1, (characters.count + count - 1) / count)
            var pieces: [(range: Range<Int>, weight: Int)] = []
            var start = 0
            while start < characters.count {
                let range = start..<min(characters.count, start + size)
                let prose = explanationRange.map { range.clamped(to: $0).count } ?? 0
                pieces.append((range, (range.count - prose) + prose * Self.explanationSlowdown))
                start = range.upperBound
            }
            let total = UInt64(max(1, pieces.reduce(0) { $0 + $1.weight }))
            let delay = UInt64(max(delayMs, 0)) * 1_000_000
            var elapsed: UInt64 = 0
            return pieces.map { piece in
                elapsed += UInt64(piece.weight)
                return (String(characters[piece.range]), delay * elapsed / total)
            }
        }
    }

    /// The purpose of entries and requests that name none.
    public static let defaultPurpose = "fix"

    /// The entries in file order.
    public let entries: [Entry]

    /// Parses a script file's bytes.
    public init(json: [UInt8]) throws(ScriptError) {
        let root: JSONValue
        do { root = try JSONValue.parse(json, limits: .pipeline) } catch { throw ScriptError("script is not valid JSON: \(error.description)") }
        guard let replies = root["replies"]?.arrayValue else { throw ScriptError("script needs a \"replies\" array") }
        var entries: [Entry] = []
        for (i, item) in replies.enumerated() {
            guard let o = item.objectValue else { throw ScriptError("replies[\(i)] must be an object") }
            var match: String?
            if let m = o["match"], m != .null {
                guard let s = m.stringValue else { throw ScriptError("replies[\(i)].match must be a string") }
                match = s
            }
            var attempt: Int?
            if let a = o["attempt"], a != .null {
                guard let n = a.intValue, n >= 1 else { throw ScriptError("replies[\(i)].attempt must be an integer ≥ 1") }
                attempt = Int(n)
            }
            var purpose = Self.defaultPurpose
            if let p = o["purpose"], p != .null {
                guard let s = p.stringValue, !s.isEmpty else { throw ScriptError("replies[\(i)].purpose must be a non-empty string") }
                purpose = s
            }
            var approach: Int?
            if let a = o["approach"], a != .null {
                guard let n = a.intValue, n >= 1 else { throw ScriptError("replies[\(i)].approach must be an integer ≥ 1") }
                approach = Int(n)
            }
            var delay = 0
            if let d = o["delay_ms"], d != .null {
                guard let n = d.intValue, n >= 0 else { throw ScriptError("replies[\(i)].delay_ms must be an integer ≥ 0") }
                delay = Int(n)
            }
            let text: String
            var explanationRange: Range<Int>?
            switch o["reply"] {
            case .string(let s)?: text = s
            case .object(let obj)?:
                text = JSONValue.object(obj).jsonString
                if let explanation = obj["explanation"]?.stringValue {
                    explanationRange = Self.locate(JSONValue.string(explanation).jsonString, after: #""explanation":"#, in: text)
                }
            case nil: throw ScriptError("replies[\(i)] needs a \"reply\"")
            case _?: throw ScriptError("replies[\(i)].reply must be an object or a string")
            }
            entries.append(Entry(
                match: match, attempt: attempt, purpose: purpose, approach: approach, reply: text, delayMs: delay,
                explanationRange: explanationRange))
        }
        self.entries = entries
    }

    /// The character range of `value` where it first follows `key` in `text` (nil when it does not).
    static func locate(_ value: String, after key: String, in text: String) -> Range<Int>? {
        let haystack = Array(text), needle = Array(key + value)
        guard needle.count <= haystack.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start..<start + needle.count].elementsEqual(needle) {
            let from = start + key.count
            return from..<(from + value.count)
        }
        return nil
    }

    /// The first entry that answers a fix request with this title and attempt.
    public func entry(for title: String, attempt: Int) -> Entry? {
        entry(for: title, attempt: attempt, purpose: Self.defaultPurpose, approach: nil)
    }

    /// The first entry that answers a request: same purpose, the title contains its `match`, and its attempt and
    /// approach (when given) equal the request's. An entry that names an approach never answers a request without one.
    public func entry(for title: String, attempt: Int, purpose: String, approach: Int?) -> Entry? {
        let lowered = title.lowercased()
        return entries.first { e in
            e.purpose == purpose
                && (e.match.map { lowered.contains($0.lowercased()) } ?? true)
                && (e.attempt.map { $0 == attempt } ?? true)
                && (e.approach.map { $0 == approach } ?? true)
        }
    }

    /// The reply text for a proposal title and attempt, or nil when the script has none.
    public func reply(for title: String, attempt: Int) -> String? { entry(for: title, attempt: attempt)?.reply }
}

/// Why a script file was refused.
public struct ScriptError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong, naming the entry.
    public let description: String
    init(_ description: String) { self.description = description }
}
