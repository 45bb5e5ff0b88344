// Language: which language a repository file is in (by name), and which files the index skips.

public enum Language: String, Sendable, CaseIterable {
    case python, javascript, typescript, swift, go, rust, java, kotlin, ruby, php, c, cpp, csharp, shell, sql
    case markdown, yaml, json, toml, html, css, other

    /// By extension (and a few names).
    public static func of(path: String) -> Language {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: ".") else {
            return name == "Dockerfile" || name == "Makefile" ? .other : .other
        }
        switch name[name.index(after: dot)...].lowercased() {
        case "py", "pyi": return .python
        case "js", "mjs", "cjs", "jsx": return .javascript
        case "ts", "tsx", "mts", "cts": return .typescript
        case "swift": return .swift
        case "go": return .go
        case "rs": return .rust
        case "java": return .java
        case "kt", "kts": return .kotlin
        case "rb": return .ruby
        case "php": return .php
        case "c", "h": return .c
        case "cc", "cpp", "cxx", "hpp", "hh", "hxx": return .cpp
        case "cs": return .csharp
        case "sh", "bash", "zsh": return .shell
        case "sql": return .sql
        case "md", "rst", "txt": return .markdown
        case "yml", "yaml": return .yaml
        case "json": return .json
        case "toml", "ini", "cfg": return .toml
        case "html", "htm": return .html
        case "css", "scss": return .css
        default: return .other
        }
    }
}

/// What the index skips: version control and dependency/build trees, generated and minified files, binaries,
/// and files over a size limit.
public struct IndexRules: Sendable, Equatable {
    /// Files larger than this are listed but not read (default 1 MiB).
    public var maxFileBytes: Int
    /// Directory names never entered.
    public var skippedDirectories: Set<String>

    public init(maxFileBytes: Int = 1 << 20, skippedDirectories: Set<String> = IndexRules.defaultSkippedDirectories) {
        self.maxFileBytes = maxFileBytes
        self.skippedDirectories = skippedDirectories
    }

    public static let defaultSkippedDirectories: Set<String> = [
        ".git", ".hg", ".svn", "node_modules", "vendor", "third_party", "dist", "build", ".build", "target", "__pycache__",
        ".venv", "venv", ".tox", ".mypy_cache", ".pytest_cache", ".next", "coverage", ".idea", ".gradle", "Pods",
    ]

    /// Whether a file name is generated or minified (skipped whatever its size).
    public static func isGenerated(_ name: String) -> Bool {
        name.hasSuffix(".min.js") || name.hasSuffix(".min.css") || name.hasSuffix(".map") || name.hasSuffix(".lock")
            || name == "package-lock.json" || name.hasSuffix(".pb.go") || name.hasSuffix("_pb2.py")
    }

    /// Whether bytes look binary: a NUL in the first 8 KiB.
    public static func looksBinary(_ bytes: some Collection<UInt8>) -> Bool { bytes.prefix(8192).contains(0) }

    /// Whether one line is longer than anyone writes by hand (minified or generated, e.g. a bundled file
    /// without a .min name): over 2,000 bytes on average per line in the first 64 KiB.
    public static func looksMinified(_ bytes: some Collection<UInt8>) -> Bool {
        let head = bytes.prefix(65536)
        guard head.count > 4096 else { return false }
        let lines = head.reduce(into: 1) { count, byte in if byte == 10 { count += 1 } }
        return head.count / lines > 2000
    }
}
