// SchemaValidator: the subset of JSON Schema 2020-12 that protocol/schema uses, for the protocol tests.
import Foundation
public import Protocol

/// The subset of JSON Schema 2020-12 that protocol/schema uses: type, const, enum, properties, required,
/// additionalProperties (false or a schema), items, minItems, maxItems, minimum, maximum, minLength, maxLength,
/// pattern. Unknown keywords are reported, so a schema cannot silently outgrow the checker;
/// `additionalProperties: false` is what makes an extra field fail. Used by the examples tests
/// (ProtocolTests) and by the live runs (IntegrationTests/LiveSchemaTests).
public enum SchemaValidator {
    public static let known: Set<String> = [
        "$schema", "$id", "title", "description", "type", "const", "enum", "properties", "required", "items",
        "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength", "pattern", "additionalProperties",
    ]

    /// The violations of `value` (empty when valid), each prefixed with a JSON-path-like location.
    public static func validate(_ value: JSONValue, against schema: JSONValue, at path: String = "$") -> [String] {
        guard case .object(let s) = schema else { return ["\(path): schema is not an object"] }
        var errors: [String] = []
        for member in s.members where !known.contains(member.key) { errors.append("\(path): unsupported keyword \(member.key)") }
        if let type = s["type"] {
            let allowed = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue ?? "?"]
            if !allowed.contains(where: { matches(value, type: $0) }) { errors.append("\(path): expected \(allowed), got \(value.jsonString)") }
        }
        if let c = s["const"], c != value { errors.append("\(path): expected const \(c.jsonString), got \(value.jsonString)") }
        if let e = s["enum"]?.arrayValue, !e.contains(value) { errors.append("\(path): \(value.jsonString) not in enum") }
        if case .object(let o) = value {
            for required in s["required"]?.arrayValue ?? [] {
                if let name = required.stringValue, o[name] == nil { errors.append("\(path): missing \(name)") }
            }
            let props = s["properties"]?.objectValue ?? JSONObject()
            for member in props.members {
                if let v = o[member.key] { errors += validate(v, against: member.value, at: "\(path).\(member.key)") }
            }
            switch s["additionalProperties"] {
            case .bool(false)?:
                for member in o.members where props[member.key] == nil { errors.append("\(path): unexpected field \(member.key)") }
            case .object?:
                for member in o.members where props[member.key] == nil {
                    errors += validate(member.value, against: s["additionalProperties"]!, at: "\(path).\(member.key)")
                }
            default: break
            }
        }
        if case .array(let a) = value {
            if let items = s["items"] {
                for (i, element) in a.enumerated() { errors += validate(element, against: items, at: "\(path)[\(i)]") }
            }
            if let min = s["minItems"]?.intValue, a.count < min { errors.append("\(path): fewer than \(min) items") }
            if let max = s["maxItems"]?.intValue, a.count > max { errors.append("\(path): more than \(max) items") }
        }
        if let min = s["minimum"]?.intValue, let n = value.intValue, n < min { errors.append("\(path): below \(min)") }
        if case .number(let d) = value, let min = s["minimum"]?.intValue, d < Double(min) { errors.append("\(path): below \(min)") }
        if let max = s["maximum"]?.intValue, let n = value.intValue, n > max { errors.append("\(path): above \(max)") }
        if case .number(let d) = value, let max = s["maximum"]?.intValue, d > Double(max) { errors.append("\(path): above \(max)") }
        if case .string(let str) = value {
            let length = str.unicodeScalars.count
            if let min = s["minLength"]?.intValue, length < min { errors.append("\(path): shorter than \(min)") }
            if let max = s["maxLength"]?.intValue, length > max { errors.append("\(path): longer than \(max)") }
            if let pattern = s["pattern"]?.stringValue, str.range(of: pattern, options: .regularExpression) == nil {
                errors.append("\(path): '\(str)' does not match \(pattern)")
            }
        }
        return errors
    }

    public static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object): true
        case ("integer", .int): true
        case ("integer", .number(let d)): d.rounded() == d
        case ("number", .int), ("number", .number): true
        default: false
        }
    }
}
