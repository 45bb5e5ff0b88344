// FixReply: the strict parser for the LLM's fix answer; everything in it is untrusted (DESIGN invariant 6).
public import Protocol

import Foundation

/// The LLM's answer: either a patch with an explanation, or `unfixable` with the reason in `explanation`.
public struct FixReply: Sendable, Hashable {
    /// The model judged the failure impossible to fix by editing the repository.
    public var unfixable: Bool
    /// What went wrong and what the patch changes (or why it is unfixable).
    public var explanation: String
    /// The patch, validated by `PatchValidator` (empty only when `unfixable`).
    public var changes: [FileChange]

    public init(unfixable: Bool, explanation: String, changes: [FileChange]) {
        self.unfixable = unfixable
        self.explanation = explanation
        self.changes = changes
    }

    /// Parses a reply text. The JSON object may be wrapped in prose or a ```json fence; the outermost object is
    /// taken. Every field is type-checked, unknown actions are refused and the patch must pass `PatchValidator`.
    /// Thrown messages are meant for `fix_failed.reason`.
    public static func parse(_ text: String, limits: PatchLimits = PatchLimits()) throws(FixReplyError) -> FixReply {
        guard let objectText = extractObject(text) else { throw FixReplyError(.noObject) }
        let value: JSONValue
        do { value = try JSONValue.parse(objectText, limits: .pipeline) } catch { throw FixReplyError(.malformed(error.description)) }
        guard let object = value.objectValue else { throw FixReplyError(.malformed("not an object")) }
        guard let unfixableValue = object["unfixable"] else { throw FixReplyError(.missing("unfixable")) }
        guard let unfixable = unfixableValue.boolValue else { throw FixReplyError(.wrongType("unfixable", "boolean", unfixableValue.typeName)) }
        guard let explanationValue = object["explanation"] else { throw FixReplyError(.missing("explanation")) }
        guard let explanation = explanationValue.stringValue else {
            throw FixReplyError(.wrongType("explanation", "string", explanationValue.typeName))
        }
        // (`Optional.none`, spelled out: a bare `nil` would be JSONValue's nil literal, `.null`.)
        let changesValue = object["changes"] ?? (unfixable ? JSONValue.array([]) : Optional<JSONValue>.none)
        guard let changesValue else { throw FixReplyError(.missing("changes")) }
        guard let items = changesValue.arrayValue else { throw FixReplyError(.wrongType("changes", "array", changesValue.typeName)) }
        var changes: [FileChange] = []
        for (index, item) in items.enumerated() {
            changes.append(try change(item, index: index))
        }
        if unfixable {
            return FixReply(unfixable: true, explanation: explanation, changes: [])
        }
        switch PatchValidator.validate(changes, limits: limits) {
        case .success(let valid): return FixReply(unfixable: false, explanation: explanation, changes: valid)
        case .failure(let error): throw FixReplyError(.invalidPatch(error))
        }
    }

    private static func change(_ item: JSONValue, index: Int) throws(FixReplyError) -> FileChange {
        let field = "changes[\(index)]"
        guard let o = item.objectValue else { throw FixReplyError(.wrongType(field, "object", item.typeName)) }
        guard let pathValue = o["path"] else { throw FixReplyError(.missing("\(field).path")) }
        guard let path = pathValue.stringValue else { throw FixReplyError(.wrongType("\(field).path", "string", pathValue.typeName)) }
        guard let actionValue = o["action"] else { throw FixReplyError(.missing("\(field).action")) }
        guard let actionName = actionValue.stringValue else {
            throw FixReplyError(.wrongType("\(field).action", "string", actionValue.typeName))
        }
        guard let action = FileChange.Action(rawValue: actionName) else { throw FixReplyError(.unknownAction(field, actionName)) }
        var content: String?
        switch o["content"] {
        case nil, .null?: content = nil
        case .string(let s)?: content = s
        case let other?: throw FixReplyError(.wrongType("\(field).content", "string", other.typeName))
        }
        return FileChange(path: path, action: action, content: content)
    }

    /// The JSON object inside a reply: the content of the first ```json (or ```) fence if it holds one, else the
    /// text from the first `{` to its matching `}` (strings and escapes respected, so braces in code are fine).
    static func extractObject(_ text: String) -> String? {
        if let fence = text.range(of: "```") {
            var body = text[fence.upperBound...]
            body = body.drop(while: { $0 != "\n" && $0 != "{" })
            if let close = body.range(of: "```"), let inner = outermostObject(String(body[..<close.lowerBound])) {
                return inner
            }
        }
        return outermostObject(text)
    }

    private static func outermostObject(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        guard let start = bytes.firstIndex(of: UInt8(ascii: "{")) else { return nil }
        var depth = 0
        var inString = false
        var escaped = false
        for i in start..<bytes.count {
            let b = bytes[i]
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "}"):
                depth -= 1
                if depth == 0 { return String(decoding: bytes[start...i], as: UTF8.self) }
            default: break
            }
        }
        return nil
    }
}

/// Why a fix reply was refused; `description` is a sentence suitable for `fix_failed.reason`.
public struct FixReplyError: Error, Sendable, Hashable, CustomStringConvertible {
    fileprivate enum Kind: Sendable, Hashable {
        case noObject
        case malformed(String)
        case missing(String)
        case wrongType(String, String, String)
        case unknownAction(String, String)
        case invalidPatch(PatchError)
    }

    fileprivate let kind: Kind

    fileprivate init(_ kind: Kind) { self.kind = kind }

    /// True when the reply was not usable JSON at all (the caller re-asks once in that case).
    public var isMalformed: Bool {
        switch kind {
        case .noObject, .malformed: true
        case .missing, .wrongType, .unknownAction, .invalidPatch: false
        }
    }

    /// The patch error, when the JSON was fine but the patch was refused.
    public var patchError: PatchError? {
        if case .invalidPatch(let e) = kind { return e } else { return nil }
    }

    public var description: String {
        switch kind {
        case .noObject: "the reply contains no JSON object"
        case .malformed(let detail): "the reply's JSON is malformed: \(detail)"
        case .missing(let field): "the reply lacks the field \"\(field)\""
        case .wrongType(let field, let expected, let got): "the reply's field \"\(field)\" must be a \(expected), not a \(got)"
        case .unknownAction(let field, let action):
            "the reply's \(field).action \"\(action)\" is not one of create, modify, delete"
        case .invalidPatch(let error): "the reply's patch was refused: \(error.description)"
        }
    }
}
