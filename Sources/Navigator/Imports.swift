// Imports: what a file imports (Python, JavaScript/TypeScript, Swift, Go), resolved to repository files or
// directories where possible — the edges of the import graph behind `related` and the ranking's centrality.

/// One import statement's target as written (`a.b`, `./util`, `Foundation`, `example.com/m/pkg`).
public struct ImportRef: Sendable, Equatable {
    public var module: String
    public var line: Int

    public init(module: String, line: Int) {
        self.module = module
        self.line = line
    }
}

public enum Imports {
    /// The imports of a file, in order, at most 500.
    public static func parse(_ text: String, language: Language) -> [ImportRef] {
        var out: [ImportRef] = []
        var inGoBlock = false
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where out.count < 500 {
            let line = raw.trimmingSpace()
            let number = index + 1
            switch language {
            case .python:
                if line.hasPrefix("import ") {
                    for part in line.dropFirst(7).split(separator: ",") {
                        let name = part.trimmingSpace().split(separator: " ").first.map(String.init) ?? ""
                        if isModuleName(name) { out.append(ImportRef(module: name, line: number)) }
                    }
                } else if line.hasPrefix("from "), let importRange = line.firstRange(of: " import ") {
                    let module = line[line.index(line.startIndex, offsetBy: 5)..<importRange.lowerBound].trimmingSpace()
                    let names = line[importRange.upperBound...].filter { $0 != "(" && $0 != ")" }.split(separator: ",")
                        .compactMap { $0.trimmingSpace().split(separator: " ").first.map(String.init) }
                    guard isModuleName(module.trimmingDots()) || module.allSatisfy({ $0 == "." }) else { continue }
                    // `from a import b` may import module a.b or name b of a: both candidates, resolution decides.
                    for name in names where name != "*" && isModuleName(name) {
                        out.append(ImportRef(module: module.hasSuffix(".") ? module + name : module + "." + name, line: number))
                    }
                    if !module.allSatisfy({ $0 == "." }) { out.append(ImportRef(module: module, line: number)) }
                }
            case .javascript, .typescript:
                for target in quotedTargets(line, after: [" from ", "import ", "require(", "import("]) {
                    out.append(ImportRef(module: target, line: number))
                }
            case .swift:
                var words = line.split(separator: " ").map(String.init)
                while let first = words.first, first.hasPrefix("@") || ["public", "internal", "private", "fileprivate", "package"].contains(first) {
                    words.removeFirst()
                }
                if words.count >= 2, words[0] == "import" {
                    let name = words.count >= 3 && ["struct", "class", "enum", "func", "protocol", "typealias", "let", "var"].contains(words[1])
                        ? words[2] : words[1]
                    let module = String(name.split(separator: ".").first ?? "")
                    if isModuleName(module) { out.append(ImportRef(module: module, line: number)) }
                }
            case .go:
                if line.hasPrefix("import (") { inGoBlock = true; continue }
                if inGoBlock {
                    if line.hasPrefix(")") { inGoBlock = false; continue }
                    if let target = quoted(line) { out.append(ImportRef(module: target, line: number)) }
                } else if line.hasPrefix("import "), let target = quoted(line) {
                    out.append(ImportRef(module: target, line: number))
                }
            default:
                return []
            }
        }
        return out
    }

    /// The repository file (or directory, ending in `/`) an import names, if it is in the repository.
    /// `files` are repository-relative paths; `goModule` is go.mod's module path.
    public static func resolve(_ ref: ImportRef, from path: String, language: Language, files: Set<String>, goModule: String? = nil)
        -> String?
    {
        let directory = path.split(separator: "/").dropLast().joined(separator: "/")
        switch language {
        case .python:
            let dots = ref.module.prefix { $0 == "." }.count
            let rest = ref.module.dropFirst(dots).split(separator: ".").joined(separator: "/")
            var bases: [String] = []
            if dots > 0 {
                var parts = directory.split(separator: "/").map(String.init)
                parts.removeLast(min(parts.count, dots - 1))
                bases = [parts.joined(separator: "/")]
            } else {
                bases = ["", "src"] + (directory.isEmpty ? [] : [directory])
            }
            for base in bases {
                let stem = [base, rest].filter { !$0.isEmpty }.joined(separator: "/")
                guard !stem.isEmpty else { continue }
                for candidate in [stem + ".py", stem + "/__init__.py"] where files.contains(candidate) { return candidate }
            }
            return nil
        case .javascript, .typescript:
            guard ref.module.hasPrefix(".") else { return nil }  // a package, not a repository file
            let joined = normalize(directory.isEmpty ? ref.module : directory + "/" + ref.module)
            guard let joined else { return nil }
            if files.contains(joined) { return joined }
            for ext in [".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", "/index.ts", "/index.tsx", "/index.js", "/index.jsx"]
            where files.contains(joined + ext) {
                return joined + ext
            }
            return nil
        case .swift:
            for root in ["Sources/", "Tests/"] {
                let prefix = root + ref.module + "/"
                if files.contains(where: { $0.hasPrefix(prefix) }) { return prefix }
            }
            return nil
        case .go:
            guard let goModule, ref.module == goModule || ref.module.hasPrefix(goModule + "/") else { return nil }
            let relative = String(ref.module.dropFirst(goModule.count).drop { $0 == "/" })
            let prefix = relative.isEmpty ? "" : relative + "/"
            return files.contains(where: { $0.hasPrefix(prefix) && $0.hasSuffix(".go") && !$0.dropFirst(prefix.count).contains("/") })
                ? prefix : nil
        default:
            return nil
        }
    }

    /// go.mod's `module` line.
    public static func goModule(_ goMod: String) -> String? {
        for line in goMod.split(separator: "\n") {
            let trimmed = line.trimmingSpace()
            if trimmed.hasPrefix("module ") { return String(trimmed.dropFirst(7)).trimmingSpace().filter { $0 != "\"" } }
        }
        return nil
    }

    private static func isModuleName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 200 && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." }
    }

    private static func quoted(_ line: String) -> String? {
        guard let open = line.firstIndex(where: { $0 == "\"" || $0 == "'" || $0 == "`" }) else { return nil }
        let quote = line[open]
        let rest = line[line.index(after: open)...]
        guard let close = rest.firstIndex(of: quote) else { return nil }
        let target = String(rest[..<close])
        return target.isEmpty || target.count > 300 ? nil : target
    }

    private static func quotedTargets(_ line: String, after markers: [String]) -> [String] {
        guard !line.hasPrefix("//") else { return [] }
        var out: [String] = []
        for marker in markers {
            var rest = line[...]
            while let range = rest.firstRange(of: marker) {
                let tail = String(rest[range.upperBound...]).trimmingSpace()
                if let first = tail.first, first == "\"" || first == "'" || first == "`", let target = quoted(tail), !out.contains(target) {
                    out.append(target)
                }
                rest = rest[range.upperBound...]
            }
        }
        return out
    }

    /// `a/./b/../c` → `a/c`; nil when it climbs out of the repository.
    static func normalize(_ path: String) -> String? {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." || part.isEmpty { continue }
            if part == ".." {
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
            } else {
                parts.append(part)
            }
        }
        return parts.joined(separator: "/")
    }
}

extension StringProtocol {
    func trimmingDots() -> String { String(drop { $0 == "." }) }
}
