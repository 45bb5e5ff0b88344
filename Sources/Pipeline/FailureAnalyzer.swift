// FailureAnalyzer: turns a failed run's raw output (Python, Node, Swift, Go) into a categorised FailureAnalysis.
import Protocol

import Foundation

/// Bounds on analysis work and result size. Every limit has a documented default.
public struct AnalyzerLimits: Sendable, Hashable {
    /// Most locations kept (default 20).
    public var maxLocations: Int
    /// Most distinct messages kept (default 20).
    public var maxMessages: Int
    /// Longest message kept, in characters; longer ones are cut with "…" (default 300).
    public var maxMessageLength: Int
    /// Bytes of output scanned: the first and last half of this many (default 1 MiB); errors sit at either end.
    public var maxScanBytes: Int

    public init(maxLocations: Int = 20, maxMessages: Int = 20, maxMessageLength: Int = 300, maxScanBytes: Int = 1 << 20) {
        self.maxLocations = maxLocations
        self.maxMessages = maxMessages
        self.maxMessageLength = maxMessageLength
        self.maxScanBytes = maxScanBytes
    }
}

/// Reads test output and classifies the failure. Pure: the caller supplies the output, how the process ended and,
/// optionally, the repository's file list (used to keep only repository locations and to map absolute paths).
public enum FailureAnalyzer {
    /// Analyses one failed run.
    /// - Parameters:
    ///   - output: the run's combined stdout and stderr (possibly truncated).
    ///   - exitCode: the exit status (ignored when `signal` is set).
    ///   - timedOut: the run was killed for exceeding its time limit (primary category `timeout`).
    ///   - diskQuotaExceeded: the executor killed the run for exceeding its disk quota (primary `disk_quota`).
    ///   - signal: the signal that killed the process, if any (primary category `crash` unless timed out).
    ///   - repositoryFiles: repository-relative paths; when given, only locations in these files are kept and
    ///     absolute paths are mapped to the longest suffix that names one of them.
    ///   - workspaceRoot: the directory the repository was checked out in; stripped from absolute paths.
    public static func analyze(
        output: String, exitCode: Int32, timedOut: Bool, signal: Int32?, repositoryFiles: Set<String>?,
        workspaceRoot: String? = nil, diskQuotaExceeded: Bool = false, limits: AnalyzerLimits = AnalyzerLimits()
    ) -> FailureAnalysis {
        var scan = Scan(repositoryFiles: repositoryFiles, workspaceRoot: workspaceRoot)
        scan.language = Language.guess(output)
        for line in boundedLines(output, maxBytes: limits.maxScanBytes) {
            scan.consume(line)
        }
        scan.flushFrames(assignTo: nil)
        if diskQuotaExceeded {
            scan.findings.append(Finding(category: .diskQuota, message: nil, subject: nil, language: scan.language))
        } else if timedOut {
            scan.findings.append(Finding(category: .timeout, message: nil, subject: nil, language: scan.language))
        } else if let signal {
            let name = signalName(signal)
            scan.findings.append(
                Finding(category: .crash, message: "killed by signal \(name)", subject: name, language: scan.language))
        } else if [134, 136, 137, 139].contains(exitCode) {
            // A shell reports a child killed by signal n as exit status 128+n.
            let name = signalName(exitCode - 128)
            scan.findings.append(
                Finding(category: .crash, message: "exit status \(exitCode) (\(name))", subject: name, language: scan.language))
        }
        return scan.result(exitCode: exitCode, timedOut: timedOut, signal: signal, limits: limits)
    }

    /// The lines of the first and last half of `maxBytes` of the output (all of it when shorter).
    private static func boundedLines(_ output: String, maxBytes: Int) -> [Substring] {
        let text: String
        if output.utf8.count > maxBytes {
            let half = maxBytes / 2
            text = String(decoding: output.utf8.prefix(half), as: UTF8.self) + "\n"
                + String(decoding: output.utf8.suffix(half), as: UTF8.self)
        } else {
            text = output
        }
        return text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
    }

    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case 4: "SIGILL"
        case 5: "SIGTRAP"
        case 6: "SIGABRT"
        case 7: "SIGBUS"
        case 8: "SIGFPE"
        case 9: "SIGKILL"
        case 11: "SIGSEGV"
        case 13: "SIGPIPE"
        case 15: "SIGTERM"
        default: "signal \(signal)"
        }
    }
}

/// The language an error line came from, for the root-cause sentence.
enum Language: String, Sendable {
    case python = "Python"
    case javascript = "Node.js"
    case swift = "Swift"
    case go = "Go"
    case unknown = "The program"

    /// A whole-output guess used when a line itself does not say.
    static func guess(_ output: String) -> Language {
        if output.contains("Traceback (most recent call last)") || output.contains("  File \"") { return .python }
        if output.contains("node:internal") || output.contains("Node.js v") || output.contains(".js:") { return .javascript }
        if output.contains(".swift:") { return .swift }
        if output.contains(".go:") || output.contains("--- FAIL") { return .go }
        return .unknown
    }

    static func from(path: String) -> Language? {
        if path.hasSuffix(".py") { return .python }
        if path.hasSuffix(".js") || path.hasSuffix(".mjs") || path.hasSuffix(".cjs") || path.hasSuffix(".ts") { return .javascript }
        if path.hasSuffix(".swift") { return .swift }
        if path.hasSuffix(".go") { return .go }
        return nil
    }
}

/// One classified error line.
struct Finding {
    var category: FailureCategory
    var message: String?
    var subject: String?
    var language: Language
    var location: SourceLocation?
}

/// The line-by-line state of one analysis.
private struct Scan {
    let repositoryFiles: Set<String>?
    let workspaceRoot: String?
    var language: Language = .unknown
    var findings: [Finding] = []
    var locations: [SourceLocation] = []
    /// Python frames of the traceback being read, outermost first.
    var frames: [SourceLocation] = []
    /// Findings (by index) still waiting for the next location (Node prints the stack after the message).
    var awaitingLocation: [Int] = []

    init(repositoryFiles: Set<String>?, workspaceRoot: String?) {
        self.repositoryFiles = repositoryFiles
        self.workspaceRoot = workspaceRoot
    }

    static let sourceExtensions: Set<String> = [
        "py", "js", "mjs", "cjs", "ts", "tsx", "jsx", "swift", "go", "rb", "rs", "c", "h", "cc", "cpp", "hpp", "m",
        "java", "kt",
    ]

    mutating func consume(_ raw: Substring) {
        let line = raw.trimmed(" \t")
        // Python frame: `  File "path", line N, in name` (no ", in" for SyntaxError).
        if line.hasPrefix("File \""), let frame = pythonFrame(line) {
            if let location = normalize(frame.path, line: frame.line) { frames.append(location) }
            return
        }
        let indented = raw.first == " " || raw.first == "\t"
        var sameLine: SourceLocation?
        for candidate in Scan.pathLineCandidates(line) {
            guard let location = normalize(candidate.path, line: candidate.line) else { continue }
            if sameLine == nil { sameLine = location }
            record(location)
            for index in awaitingLocation { findings[index].location = location }
            awaitingLocation.removeAll()
        }
        guard var finding = classify(line) else {
            // The frames belong to the exception line that ends the traceback; other unindented lines end it too.
            if !indented { flushFrames(assignTo: nil) }
            return
        }
        finding.location = sameLine
        findings.append(finding)
        let index = findings.count - 1
        if !frames.isEmpty {
            flushFrames(assignTo: index)
        } else if sameLine == nil {
            awaitingLocation.append(index)
        }
    }

    /// Records the pending Python frames innermost first (the innermost repository frame is where the error is).
    mutating func flushFrames(assignTo index: Int?) {
        guard !frames.isEmpty else { return }
        for frame in frames.reversed() { record(frame) }
        if let index, findings[index].location == nil { findings[index].location = frames.last }
        frames.removeAll()
    }

    mutating func record(_ location: SourceLocation) {
        if !locations.contains(location) { locations.append(location) }
    }

    func pythonFrame(_ line: String) -> (path: String, line: Int)? {
        let rest = line.dropFirst(6)
        guard let quote = rest.firstIndex(of: "\"") else { return nil }
        let path = String(rest[..<quote])
        let after = rest[rest.index(after: quote)...]
        guard after.hasPrefix(", line ") else { return nil }
        guard let number = Int(after.dropFirst(7).prefix(while: \.isNumber)) else { return nil }
        return (path, number)
    }

    /// Every `path.ext:LINE` in a line (compiler diagnostics, Node stack frames, Go test logs).
    static func pathLineCandidates(_ line: String) -> [(path: String, line: Int)] {
        let chars = Array(line.unicodeScalars)
        var out: [(String, Int)] = []
        var i = 0
        while i < chars.count {
            defer { i += 1 }
            guard chars[i] == ":", i + 1 < chars.count, ("0"..."9").contains(chars[i + 1]) else { continue }
            var start = i
            while start > 0, isPathScalar(chars[start - 1]) { start -= 1 }
            guard start < i else { continue }
            var path = String(String.UnicodeScalarView(chars[start..<i]))
            while path.hasPrefix("//") { path.removeFirst() }
            guard let dot = path.lastIndex(of: "."), Scan.sourceExtensions.contains(String(path[path.index(after: dot)...]))
            else { continue }
            var end = i + 1
            while end < chars.count, ("0"..."9").contains(chars[end]) { end += 1 }
            if let number = Int(String(String.UnicodeScalarView(chars[(i + 1)..<end]))) { out.append((path, number)) }
        }
        return out
    }

    static func isPathScalar(_ s: Unicode.Scalar) -> Bool {
        switch s {
        case "a"..."z", "A"..."Z", "0"..."9", "_", ".", "/", "-", "+", "@", "~": true
        default: false
        }
    }

    /// Maps a printed path to a repository-relative one, or nil when it is outside the repository.
    func normalize(_ printed: String, line: Int) -> SourceLocation? {
        guard line > 0 else { return nil }
        var path = printed
        if path.hasPrefix("file://") { path.removeFirst(7) }
        if let root = workspaceRoot, !root.isEmpty {
            let prefix = root.hasSuffix("/") ? root : root + "/"
            if path.hasPrefix(prefix) { path.removeFirst(prefix.count) }
        }
        while path.hasPrefix("./") { path.removeFirst(2) }
        if path.hasPrefix("/") {
            guard let files = repositoryFiles else { return nil }
            let parts = path.split(separator: "/")
            guard let k = (0..<parts.count).first(where: { files.contains(parts[$0...].joined(separator: "/")) }) else {
                return nil
            }
            path = parts[k...].joined(separator: "/")
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        if segments.contains(where: { $0 == ".." || $0.isEmpty || $0 == "site-packages" || $0 == "dist-packages" || $0 == "node_modules" }) {
            return nil
        }
        if path.hasPrefix("<") || path.hasPrefix("Swift/") { return nil }
        if let files = repositoryFiles, !files.contains(path) { return nil }
        return SourceLocation(file: path, line: line)
    }

    // MARK: Classification

    /// Classifies one trimmed line, or nil when it is not an error line.
    func classify(_ full: String) -> Finding? {
        var line = full
        // pytest: "E       AssertionError: …" and "FAILED tests/test_a.py::test_x - AssertionError: …".
        if line.hasPrefix("E "), line.count > 2 { line = line.dropFirst(2).trimmed(" \t") }
        if line.hasPrefix("FAILED "), let dash = line.range(of: " - ") { line = String(line[dash.upperBound...]) }
        if line.isEmpty { return nil }

        if let finding = crash(line) { return finding }
        for marker in ["No space left on device", "Disk quota exceeded", "ENOSPC"] where line.contains(marker) {
            return finding(.diskQuota, line)
        }
        if let finding = diagnostic(line) { return finding }
        if let finding = goLine(line) { return finding }
        if let finding = exceptionLine(line) { return finding }
        return testFrameworkLine(line)
    }

    func finding(_ category: FailureCategory, _ message: String, subject: String? = nil, language: Language? = nil) -> Finding {
        Finding(category: category, message: message, subject: subject, language: language ?? self.language)
    }

    /// Runtime crashes: Swift traps, Go panics, signals reported by a shell or runtime.
    func crash(_ line: String) -> Finding? {
        if line.contains("Fatal error:") { return finding(.crash, line, language: .swift) }
        if line.hasPrefix("panic: test timed out") { return finding(.timeout, line, language: .go) }
        if line.hasPrefix("panic: ") { return finding(.crash, line, language: .go) }
        for marker in ["Segmentation fault", "Illegal instruction", "Aborted (core dumped)", "Bus error", "Fatal Python error"]
        where line.contains(marker) {
            return finding(.crash, line)
        }
        return nil
    }

    /// Compiler diagnostics `path:line[:col]: error: message` (swiftc, clang, XCTest failures).
    func diagnostic(_ line: String) -> Finding? {
        guard let r = line.range(of: ": error: ") ?? (line.hasPrefix("error: ") ? line.range(of: "error: ") : nil) else {
            return nil
        }
        let message = String(line[r.upperBound...])
        let head = String(line[..<r.lowerBound])
        // node --test's TAP YAML has `error: |-` / `error: '…'` blocks; their `name:` line classifies them instead.
        if head.isEmpty, message.hasPrefix("|") || message.hasPrefix("'") || message.hasPrefix("\"") { return nil }
        let language = Scan.pathLineCandidates(head + ":").first.flatMap { Language.from(path: $0.path) } ?? .swift
        if message.contains("XCTAssert") || message.contains("XCTFail") || message.contains("Expectation failed") {
            return finding(.assertion, line, language: language)
        }
        if message.hasPrefix("no such module") || message.contains("could not build module") {
            return finding(.import, line, subject: quoted(message), language: language)
        }
        if message.hasPrefix("cannot find '") || message.hasPrefix("cannot find type '")
            || message.hasPrefix("use of unresolved identifier") || message.hasPrefix("use of undeclared")
        {
            return finding(.undefinedName, line, subject: quoted(message), language: language)
        }
        if message.hasPrefix("expected ") || message.contains("consecutive statements") || message.hasPrefix("unterminated")
            || message.hasPrefix("extraneous ") || message.hasPrefix("unexpected ") || message.hasPrefix("unbalanced")
        {
            return finding(.syntax, line, language: language)
        }
        let typeMarkers = [
            "cannot convert", "has no member", "cannot assign value of type", "of type", "argument type",
            "no exact matches", "non-function type", "argument label", "missing argument", "extra argument",
            "does not conform", "mismatching types", "ambiguous use", "cannot be applied", "no matching",
        ]
        if typeMarkers.contains(where: { message.contains($0) }) { return finding(.type, line, language: language) }
        return finding(.other, line, language: language)
    }

    /// Go compiler, module and test-runner lines.
    func goLine(_ line: String) -> Finding? {
        if line.hasPrefix("--- FAIL:") { return finding(.assertion, line, language: .go) }
        let importMarkers = ["cannot find package", "no required module provides package", "could not import", "is not in std", "is not in GOROOT"]
        if importMarkers.contains(where: { line.contains($0) }) {
            return finding(.import, line, subject: quoted(line) ?? goPackage(line), language: .go)
        }
        // `./main.go:5:2: undefined: foo`: a path with a .go extension, then the message.
        guard let candidate = Scan.pathLineCandidates(line).first, candidate.path.hasSuffix(".go") else { return nil }
        guard let r = line.range(of: ": ", range: line.range(of: candidate.path)!.upperBound..<line.endIndex) else { return nil }
        let message = String(line[r.upperBound...])
        if message.hasPrefix("undefined: ") {
            return finding(.undefinedName, line, subject: String(message.dropFirst(11)), language: .go)
        }
        if message.hasPrefix("syntax error") { return finding(.syntax, line, language: .go) }
        if (message.hasPrefix("cannot use ") && message.contains(" as ")) || message.hasPrefix("invalid operation")
            || message.contains("mismatched types") || message.contains("has no field or method")
        {
            return finding(.type, line, language: .go)
        }
        return nil
    }

    /// `Name: message`, `Name [CODE]: message` or a bare `AssertionError` (Python and Node exceptions).
    func exceptionLine(_ line: String) -> Finding? {
        let name = String(line.prefix(while: { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." }))
        guard !name.isEmpty, name.first!.isUppercase || name.contains(".") else { return nil }
        let rest = line.dropFirst(name.count)
        guard rest.isEmpty || rest.hasPrefix(":") || rest.hasPrefix(" [") else { return nil }
        let short = name.split(separator: ".").last.map(String.init) ?? name
        guard short == "Error" || short.hasSuffix("Error") || short.hasSuffix("Exception") else { return nil }
        let message = rest.drop(while: { $0 != ":" }).dropFirst().trimmed(" ")
        let language: Language = rest.hasPrefix(" [") ? .javascript : language
        switch short {
        case "ModuleNotFoundError", "ImportError":
            return finding(.import, line, subject: quoted(message), language: .python)
        case "SyntaxError": return finding(.syntax, line, language: language)
        case "IndentationError", "TabError": return finding(.indentation, line, language: .python)
        case "NameError", "UnboundLocalError":
            return finding(.undefinedName, line, subject: quoted(message), language: .python)
        case "ReferenceError":
            return finding(.undefinedName, line, subject: message.split(separator: " ").first.map(String.init), language: .javascript)
        case "TypeError", "AttributeError": return finding(.type, line, language: language)
        case "FileNotFoundError": return finding(.fileNotFound, line, subject: quoted(message), language: .python)
        case "AssertionError": return finding(.assertion, line, language: language)
        default:
            if message.hasPrefix("Cannot find module") || message.hasPrefix("Cannot find package") || line.contains("ERR_MODULE_NOT_FOUND") {
                return finding(.import, line, subject: quoted(message), language: .javascript)
            }
            if message.hasPrefix("ENOENT") { return finding(.fileNotFound, line, subject: quoted(message), language: .javascript) }
            if line.contains("ERR_ASSERTION") { return finding(.assertion, line, language: .javascript) }
            return finding(.other, line, language: language)
        }
    }

    /// unittest `FAIL:` headers, pytest `assert` lines, Swift Testing issues, jest expectations.
    func testFrameworkLine(_ line: String) -> Finding? {
        if line.hasPrefix("FAIL: ") { return finding(.assertion, line, language: .python) }
        if line.hasPrefix("assert ") { return finding(.assertion, line, language: .python) }
        if line.contains("recorded an issue") || line.contains("Expectation failed") { return finding(.assertion, line, language: .swift) }
        if line.hasPrefix("expect(") && line.contains(")."), line.contains("(") { return finding(.assertion, line, language: .javascript) }
        if line.hasPrefix("ImportError while importing test module") { return finding(.import, line, language: .python) }
        // node --test (TAP YAML): `name: 'AssertionError'` names the thrown error class.
        if line.hasPrefix("name: '"), line.hasSuffix("'"), line.count > 8, var named = exceptionLine(String(line.dropFirst(7).dropLast())) {
            named.language = .javascript
            return named
        }
        if line.contains("ERR_ASSERTION") { return finding(.assertion, line, language: .javascript) }
        return nil
    }

    /// The first '…' or "…" quoted text.
    func quoted(_ text: some StringProtocol) -> String? {
        for q: Character in ["'", "\"", "`"] {
            guard let a = text.firstIndex(of: q) else { continue }
            let after = text[text.index(after: a)...]
            guard let b = after.firstIndex(of: q) else { continue }
            let s = String(after[..<b])
            if !s.isEmpty { return s }
        }
        return nil
    }

    /// "… provides package example.com/x; to add it" → "example.com/x".
    func goPackage(_ line: String) -> String? {
        guard let r = line.range(of: "package ") else { return nil }
        let name = line[r.upperBound...].prefix(while: { $0 != " " && $0 != ";" && $0 != ":" })
        return name.isEmpty ? nil : String(name)
    }

    // MARK: Result

    func result(exitCode: Int32, timedOut: Bool, signal: Int32?, limits: AnalyzerLimits) -> FailureAnalysis {
        let primary: Finding
        if let d = findings.first(where: { $0.category == .diskQuota }) {
            primary = d
        } else if timedOut, let t = findings.first(where: { $0.category == .timeout }) {
            primary = t
        } else if signal != nil, let c = findings.last(where: { $0.category == .crash }) {
            primary = findings.first(where: { $0.category == .crash && $0.message != nil && $0.language != .unknown }) ?? c
        } else if let best = findings.min(by: { $0.category.priority < $1.category.priority }) {
            // Among equally ranked findings prefer one that names its subject (pytest prints a generic
            // "ImportError while importing test module" before the specific ModuleNotFoundError).
            primary = findings.first { $0.category == best.category && $0.subject != nil } ?? best
        } else {
            primary = Finding(category: .other, message: nil, subject: nil, language: language)
        }
        var categories = [primary.category]
        for category in findings.map(\.category).sorted(by: { $0.priority < $1.priority }) where !categories.contains(category) {
            categories.append(category)
        }
        var ordered = locations
        if let first = primary.location, let i = ordered.firstIndex(of: first) {
            ordered.remove(at: i)
            ordered.insert(first, at: 0)
        }
        var messages: [String] = []
        // The bound is checked before appending, so `maxMessages: 0` keeps none (found by Fuzz/, target `summary`).
        for message in findings.compactMap(\.message) where messages.count < limits.maxMessages {
            let cut = message.count > limits.maxMessageLength ? String(message.prefix(limits.maxMessageLength)) + "…" : message
            if !messages.contains(cut) { messages.append(cut) }
        }
        let primaryMessage = primary.message.map { $0.count > limits.maxMessageLength ? String($0.prefix(limits.maxMessageLength)) + "…" : $0 }
        return FailureAnalysis(
            category: primary.category, categories: categories,
            rootCause: rootCause(primary, message: primaryMessage, location: ordered.first, exitCode: exitCode, signal: signal),
            locations: Array(ordered.prefix(limits.maxLocations)), messages: messages)
    }

    func rootCause(_ f: Finding, message: String?, location: SourceLocation?, exitCode: Int32, signal: Int32?) -> String {
        let lang = f.language.rawValue
        let at = location.map { " at \($0.file):\($0.line)" } ?? ""
        let detail = message.map { " (\($0))" } ?? ""
        switch f.category {
        case .import:
            if let s = f.subject { return "\(lang) cannot import module '\(s)'\(detail)" }
            return "\(lang) cannot import a required module\(detail)"
        case .syntax: return "\(lang) rejected invalid syntax\(at)\(detail)"
        case .indentation: return "Python rejected inconsistent indentation\(at)\(detail)"
        case .undefinedName:
            if let s = f.subject { return "\(lang) uses the undefined name '\(s)'\(at)\(detail)" }
            return "\(lang) uses an undefined name\(at)\(detail)"
        case .type: return "\(lang) applied an operation to a value of the wrong type\(at)\(detail)"
        case .fileNotFound:
            if let s = f.subject { return "The code opens '\(s)', which does not exist\(at)\(detail)" }
            return "The code opens a file that does not exist\(at)\(detail)"
        case .assertion: return "A test assertion failed\(at)\(detail)"
        case .timeout: return "The test run exceeded its time limit and was killed\(detail)"
        case .diskQuota: return "The test run wrote more than its disk quota\(detail)"
        case .crash:
            let how = signal.map { " with \(FailureAnalyzer.signalName($0))" } ?? ""
            return "The test process crashed\(how)\(at)\(detail)"
        case .other:
            if let message { return "The tests failed with exit code \(exitCode)\(at) (\(message))" }
            return "The tests failed with exit code \(exitCode) without a recognisable error message"
        }
    }
}
