// Symbols: what a file defines — from Universal Ctags' JSON output, plus a small Swift reader (this ctags,
// 5.9, has no Swift parser) — and the comment or docstring that documents each.
public import Protocol

/// One definition in a file.
public struct CodeSymbol: Sendable, Equatable {
    public var name: String
    /// ctags' long kind name: function, class, member, method, variable, struct, …
    public var kind: String
    /// The enclosing scope's name ("Auth" for Auth.validate), if any.
    public var scope: String?
    public var signature: String?
    /// 1-based.
    public var line: Int
    /// The last line, when known.
    public var endLine: Int?
    /// The docstring or the comment right above it, trimmed and bounded.
    public var doc: String?

    public init(name: String, kind: String, scope: String? = nil, signature: String? = nil, line: Int, endLine: Int? = nil, doc: String? = nil) {
        self.name = name
        self.kind = kind
        self.scope = scope
        self.signature = signature
        self.line = line
        self.endLine = endLine
        self.doc = doc
    }
}

public enum Ctags {
    /// The arguments for `ctags` reading the file list on stdin, run in the repository's root.
    public static let arguments = ["--output-format=json", "--fields=+nKSel", "--fields=-P", "-f", "-", "-L", "-"]

    /// Parses ctags' JSON lines into symbols per path. Lines that are not tags (`_type: ptag`), malformed,
    /// or name a path not in `paths` (never trusted: ctags echoes what it read) are skipped.
    public static func parse(_ output: some StringProtocol, paths: Set<String>) -> [String: [CodeSymbol]] {
        var out: [String: [CodeSymbol]] = [:]
        for line in output.split(separator: "\n", omittingEmptySubsequences: true) {
            guard let json = try? JSONValue.parse(String(line)), json["_type"]?.stringValue == "tag",
                let name = json["name"]?.stringValue, let path = json["path"]?.stringValue, paths.contains(path),
                let number = json["line"]?.intValue, number > 0
            else { continue }
            let symbol = CodeSymbol(
                name: String(name.prefix(256)), kind: json["kind"]?.stringValue ?? "unknown", scope: json["scope"]?.stringValue,
                signature: json["signature"]?.stringValue.map { String($0.prefix(512)) }, line: Int(number),
                endLine: json["end"]?.intValue.map { Int($0) })
            out[path, default: []].append(symbol)
        }
        for path in out.keys { out[path]!.sort { ($0.line, $0.name) < ($1.line, $1.name) } }
        return out
    }
}

public enum SwiftSymbols {
    private static let kinds: [(keyword: String, kind: String)] = [
        ("func", "function"), ("class", "class"), ("struct", "struct"), ("enum", "enum"), ("protocol", "protocol"),
        ("extension", "extension"), ("actor", "actor"), ("typealias", "typealias"), ("init", "initializer"),
    ]
    private static let modifiers: Set<String> = [
        "public", "private", "fileprivate", "internal", "open", "package", "static", "final", "override", "mutating",
        "nonmutating", "convenience", "required", "indirect", "nonisolated", "@MainActor", "@inlinable", "@usableFromInline",
        "@discardableResult", "@objc", "@_cdecl", "@Test", "@Suite", "dynamic", "lazy", "weak", "unowned", "async",
    ]

    /// Declarations of a Swift file by their keyword at the start of a line (after modifiers and attributes);
    /// the scope is the innermost enclosing type by brace depth. Approximate, and enough to find code.
    public static func parse(_ text: String) -> [CodeSymbol] {
        var symbols: [CodeSymbol] = []
        var depth = 0
        var scopes: [(name: String, depth: Int)] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.drop { $0 == " " || $0 == "\t" }
            if !line.hasPrefix("//") {
                var words = line.split(whereSeparator: { $0 == " " || $0 == "(" || $0 == "<" || $0 == ":" || $0 == "{" }).map(String.init)
                while let first = words.first, modifiers.contains(first) || (first.hasPrefix("@") && words.count > 1) { words.removeFirst() }
                if let keyword = words.first, let kind = kinds.first(where: { $0.keyword == keyword })?.kind {
                    let name = keyword == "init" ? "init" : (words.count > 1 ? words[1] : "")
                    if !name.isEmpty, name.first!.isLetter || name.first == "_" || name.first == "`" {
                        let signature = keyword == "func" || keyword == "init"
                            ? line.firstIndex(of: "(").map { String(line[$0...].prefix { $0 != "{" }).trimmingTrailingSpace() } : nil
                        symbols.append(CodeSymbol(name: name, kind: kind, scope: scopes.last?.name, signature: signature, line: index + 1))
                        if ["class", "struct", "enum", "protocol", "extension", "actor"].contains(keyword), line.contains("{") {
                            scopes.append((name, depth))
                        }
                    }
                }
            }
            for c in line where c == "{" || c == "}" {
                if c == "{" { depth += 1 } else {
                    depth = max(0, depth - 1)
                    if let last = scopes.last, last.depth == depth { scopes.removeLast() }
                }
            }
        }
        return symbols
    }
}

extension StringProtocol {
    func trimmingTrailingSpace() -> String {
        var s = String(self)
        while let last = s.last, last == " " || last == "\t" { s.removeLast() }
        return s
    }

    func trimmingSpace() -> String {
        String(drop { $0 == " " || $0 == "\t" }).trimmingTrailingSpace()
    }
}

public enum SymbolDocs {
    /// The symbol's documentation from the file's lines: a Python docstring on the lines after the `def`/`class`,
    /// else the run of comment lines (`#`, `//`, `///`, `--`, ` * `) right above it. At most 400 characters.
    public static func doc(for symbol: CodeSymbol, lines: [Substring], language: Language) -> String? {
        let i = symbol.line - 1
        guard i >= 0, i < lines.count else { return nil }
        var text: String?
        if language == .python {
            var j = i + 1
            while j < lines.count, j <= i + 3 {
                let line = lines[j].trimmingSpace()
                if line.hasPrefix("\"\"\"") || line.hasPrefix("'''") {
                    let quote = String(line.prefix(3))
                    var body = String(line.dropFirst(3))
                    var k = j
                    while !body.contains(quote), k + 1 < lines.count, k < j + 15 {
                        k += 1
                        body += " " + lines[k].trimmingSpace()
                    }
                    text = body.split(separator: quote, maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)
                    break
                }
                if !line.isEmpty && !line.hasSuffix(":") { break }
                j += 1
            }
        }
        if text == nil {
            var comments: [String] = []
            var j = i - 1
            while j >= 0, comments.count < 12 {
                let line = lines[j].trimmingSpace()
                guard let stripped = commentText(line) else { break }
                comments.insert(stripped, at: 0)
                j -= 1
            }
            let joined = comments.filter { !$0.isEmpty }.joined(separator: " ")
            text = joined.isEmpty ? nil : joined
        }
        guard let text else { return nil }
        let trimmed = text.trimmingSpace()
        return trimmed.isEmpty ? nil : String(trimmed.prefix(400))
    }

    private static func commentText(_ line: String) -> String? {
        for marker in ["///", "//", "#", "--", "/**", "/*", "*/", "*"] where line.hasPrefix(marker) {
            if marker == "#" && line.hasPrefix("#!") { return nil }
            var rest = String(line.dropFirst(marker.count))
            if rest.hasSuffix("*/") { rest.removeLast(2) }
            return rest.trimmingSpace()
        }
        return nil
    }
}

