// FileAnalysis: what a reviewer should look at in one file — deterministic checks, no LLM: size, the longest
// functions, TODO/FIXME, broad exception handlers, SQL built from strings, shell calls with interpolation,
// literals that look like secrets.

public struct Finding: Sendable, Equatable {
    public enum Severity: String, Sendable, Equatable, Comparable {
        case info, low, medium, high

        private var rank: Int { [.info: 0, .low: 1, .medium: 2, .high: 3][self]! }
        public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
    }

    public var line: Int
    public var severity: Severity
    /// e.g. "long_function", "todo", "broad_except", "sql_string", "shell_interpolation", "secret_literal".
    public var kind: String
    public var message: String

    public init(line: Int, severity: Severity, kind: String, message: String) {
        self.line = line
        self.severity = severity
        self.kind = kind
        self.message = message
    }
}

public enum FileAnalysis {
    /// Findings in line order (at most 200), for `text` in `language` with its `symbols`.
    public static func analyze(_ text: String, language: Language, symbols: [CodeSymbol]) -> [Finding] {
        var findings: [Finding] = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.count > 1000 {
            findings.append(Finding(line: 1, severity: .low, kind: "large_file", message: "\(lines.count) lines: hard to review as one unit"))
        }
        let functions = symbols.filter { ["function", "method", "member", "initializer"].contains($0.kind) }
        for symbol in functions {
            guard let end = symbol.endLine else { continue }
            let length = end - symbol.line + 1
            if length > 80 {
                findings.append(Finding(
                    line: symbol.line, severity: length > 200 ? .medium : .low, kind: "long_function",
                    message: "\(symbol.name) is \(length) lines long"))
            }
        }
        for (index, raw) in lines.enumerated() {
            let line = raw.trimmingSpace()
            let number = index + 1
            let upper = line.uppercased()
            if upper.contains("TODO") || upper.contains("FIXME") || upper.contains("XXX:") || upper.contains("HACK") {
                findings.append(Finding(line: number, severity: .info, kind: "todo", message: String(line.prefix(160))))
            }
            switch language {
            case .python:
                if line == "except:" || line.hasPrefix("except Exception") || line.hasPrefix("except BaseException") {
                    findings.append(Finding(line: number, severity: .medium, kind: "broad_except", message: "catches every exception: \(line.prefix(80))"))
                }
                if (line.contains("subprocess.") || line.contains("os.system(") || line.contains("os.popen(")),
                    line.contains("shell=True") || line.contains("os.system(") || line.contains("os.popen("),
                    line.contains("f\"") || line.contains("f'") || line.contains("%") || line.contains(".format(") || line.contains("+")
                {
                    findings.append(Finding(line: number, severity: .high, kind: "shell_interpolation", message: "shell command built from values: \(line.prefix(100))"))
                }
            case .javascript, .typescript, .java, .kotlin, .swift, .csharp, .php:
                if line.hasPrefix("} catch {") || line.hasPrefix("catch (e)") || line.hasPrefix("} catch (e) {}") || line.hasPrefix("} catch (_)")
                    || line.contains("catch (Exception ") || line.contains("catch (Throwable ")
                {
                    findings.append(Finding(line: number, severity: .low, kind: "broad_except", message: "broad catch: \(line.prefix(80))"))
                }
                if (line.contains("exec(") || line.contains("execSync(") || line.contains("spawn(")), line.contains("${") || line.contains("+ ") {
                    findings.append(Finding(line: number, severity: .high, kind: "shell_interpolation", message: "command built from values: \(line.prefix(100))"))
                }
            default:
                break
            }
            if looksLikeSQLBuiltFromStrings(line) {
                findings.append(Finding(line: number, severity: .high, kind: "sql_string", message: "SQL built from strings (use parameters): \(line.prefix(100))"))
            }
            if let secret = secretLiteral(line) {
                findings.append(Finding(line: number, severity: .high, kind: "secret_literal", message: "looks like a secret in the source: \(secret)"))
            }
            if findings.count >= 200 { break }
        }
        return findings.sorted { ($0.line, $0.kind) < ($1.line, $1.kind) }
    }

    static func looksLikeSQLBuiltFromStrings(_ line: String) -> Bool {
        let upper = line.uppercased()
        let hasSQL = ["SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM", " WHERE "].contains { upper.contains($0) }
        guard hasSQL else { return false }
        return line.contains("f\"") || line.contains("f'") || line.contains("\" +") || line.contains("' +") || line.contains("+ \"")
            || line.contains("% (") || line.contains("\" %") || line.contains(".format(") || line.contains("${") || line.contains("\\(")
    }

    /// `key = "…"` with a secret-sounding name and a long literal, or a well-known key prefix. The literal is
    /// shown masked.
    static func secretLiteral(_ line: String) -> String? {
        let lower = line.lowercased()
        let named = ["password", "passwd", "secret", "api_key", "apikey", "token", "private_key", "access_key"].contains { lower.contains($0) }
        let prefixes = ["AKIA", "sk-ant-", "sk_live_", "ghp_", "xoxb-", "-----BEGIN"]
        for prefix in prefixes where line.contains(prefix) { return prefix + "…" }
        guard named, line.contains("=") || line.contains(":") else { return nil }
        for quote in ["\"", "'"] {
            let parts = line.split(separator: Character(quote), omittingEmptySubsequences: false)
            guard parts.count >= 3 else { continue }
            let literal = parts[1]
            if literal.count >= 8, !literal.contains(" "), !literal.contains("{"), !literal.contains("$"), !literal.contains("%") {
                return String(literal.prefix(2)) + "…(\(literal.count) chars)"
            }
        }
        return nil
    }
}
