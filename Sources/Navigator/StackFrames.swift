// StackFrames: file:line references in pasted stack traces and log lines (Python, JavaScript, Swift, Go, Java,
// generic `path:line`), matched against repository paths — `locate`'s strongest evidence.

/// A reference to a repository file found in text.
public struct FrameReference: Sendable, Equatable {
    public var path: String
    public var line: Int?
    /// The function the frame names, when the format says.
    public var function: String?

    public init(path: String, line: Int?, function: String? = nil) {
        self.path = path
        self.line = line
        self.function = function
    }
}

public enum StackFrames {
    /// The repository files named in `text`, innermost frame last as in the text, each at most once per line.
    /// A candidate path (absolute, or relative with directories) matches a repository file when it ends with
    /// that file's path on a `/` boundary (`/srv/app/auth/login.py` → `auth/login.py`). At most 100.
    public static func references(in text: String, files: Set<String>) -> [FrameReference] {
        var out: [FrameReference] = []
        for raw in text.split(separator: "\n").prefix(5000) where out.count < 100 {
            let line = String(raw.prefix(2000))
            var function: String?
            // Python: File "path", line N, in fn
            if let range = line.firstRange(of: "File \"") {
                let rest = line[range.upperBound...]
                if let close = rest.firstIndex(of: "\"") {
                    let candidate = String(rest[..<close])
                    let after = rest[close...]
                    let number = after.firstRange(of: "line ").flatMap { Int(after[$0.upperBound...].prefix { $0.isNumber }) }
                    if let inRange = after.firstRange(of: ", in ") { function = String(after[inRange.upperBound...]).trimmingSpace() }
                    if let path = match(candidate, files) {
                        out.append(FrameReference(path: path, line: number, function: function))
                        continue
                    }
                }
            }
            // JavaScript `at fn (path:line:col)`, Go/Swift/generic `path:line`, Java `(File.java:line)`.
            for token in line.split(whereSeparator: { $0 == " " || $0 == "(" || $0 == ")" || $0 == "\t" || $0 == "\"" || $0 == "'" }) {
                let parts = token.split(separator: ":", omittingEmptySubsequences: false)
                guard parts.count >= 2 else { continue }
                // file:///x.js:3:4 and C:\ paths are rare in Medic's targets; take the last path-like part.
                var pathPart = parts[0]
                var lineNumber: Int?
                for (i, part) in parts.enumerated() where i > 0 {
                    if let n = Int(part) { lineNumber = n; pathPart = parts[i - 1]; break }
                }
                guard let number = lineNumber, pathPart.contains(".") else { continue }
                if let path = match(String(pathPart), files), !out.contains(where: { $0.path == path && $0.line == number }) {
                    out.append(FrameReference(path: path, line: number))
                }
            }
        }
        return out
    }

    /// The repository path `candidate` names, if any.
    static func match(_ candidate: String, _ files: Set<String>) -> String? {
        var trimmed = candidate
        while trimmed.hasPrefix("./") { trimmed.removeFirst(2) }
        if files.contains(trimmed) { return trimmed }
        // Longest suffix on a `/` boundary.
        var parts = trimmed.split(separator: "/")
        while parts.count > 1 {
            parts.removeFirst()
            let suffix = parts.joined(separator: "/")
            if files.contains(suffix) { return suffix }
        }
        return nil
    }
}
