// FailingTests: the names of the tests that failed (or passed) in a test run's output, per runner.

/// Reads test names out of a test run's output: which tests failed or errored (`parse`) and which passed
/// (`passed`; a bug workflow compares a fix's failures with what passed on the base). Names are
/// normalised per runner so the same test has the same name in both lists and across Python versions:
///
/// | runner | lines read | name |
/// |---|---|---|
/// | pytest | `FAILED tests/t.py::C::test_y - msg`, `ERROR tests/t.py::test_z`, `ERROR tests/t.py - …` (collection), `tests/t.py::test_y FAILED [ 20%]` (-v); passed: `tests/t.py::test_y PASSED`, `PASSED tests/t.py::test_y` (-rA) | the node id, `tests/t.py::C::test_y` |
/// | unittest | `FAIL: test_y (tests.t.C.test_y)` (3.11+), `FAIL: test_y (tests.t.C)` (older), `ERROR: …`, subtests (`… (i=1)`); passed: `test_y (tests.t.C.test_y) ... ok` (-v, also when a docstring line comes between) | `tests.t.C.test_y`; a module that failed to import: its name |
/// | go test | `--- FAIL: TestX (0.00s)`, subtests indented; passed: `--- PASS: …` | `TestX`, `TestX/sub` |
/// | XCTest | `Test Case '-[Mod.Cls testY]' failed (…)` (Darwin), `Test Case 'Cls.testY' failed (…)` (Linux); `passed` | `Mod.Cls.testY`, `Cls.testY` |
/// | swift-testing | `✘ Test testY() recorded an issue …`, `✘ Test "name" failed after …` (also `… with N test cases failed`); passed: `✔ Test … passed after …` | `testY()`, `name` |
///
/// The output is untrusted (it comes from the code under test): work is linear in its size and bounded —
/// at most `maxScanBytes` are read (the first and last halves of a longer output, where runners put their
/// results), lines longer than `maxLineBytes` are skipped, at most `maxNames` names are returned (first
/// seen first, each once). Invalid UTF-8 was already replaced when the output became a `String`; names keep
/// the replacement characters.
public enum FailingTests {
    /// Most names returned.
    public static let maxNames = 200
    /// Longer lines are skipped (no runner prints a result line this long).
    public static let maxLineBytes = 4096
    /// Most bytes of an output read: the first and last half of a longer one.
    public static let maxScanBytes = 16 << 20

    /// The tests that failed or errored, in first-seen order, each once, at most `maxNames`.
    public static func parse(_ output: String) -> [String] {
        collect(output, failed: true)
    }

    /// The tests that passed (pytest -v / -rA, unittest -v, go test -v, XCTest, swift-testing), in first-seen
    /// order, each once, at most `maxNames`.
    public static func passed(_ output: String) -> [String] {
        collect(output, failed: false)
    }

    private static func collect(_ output: String, failed: Bool) -> [String] {
        var names = Names()
        var pending: String?  // unittest -v: a description line whose " ... ok" comes on the next line (docstring)
        forEachLine(output, candidates: failed ? failureMarkers : passMarkers) { raw in
            guard let raw else {
                pending = nil
                return true
            }
            let line = raw.utf8.contains(0x1B) ? stripANSI(Substring(raw)) : Substring(raw)
            let name: String?
            if failed {
                name = failedName(line)
            } else {
                name = passedName(line, pending: pending)
                pending = unittestDescription(line)
            }
            if let name { names.add(name) }
            return names.list.count < maxNames
        }
        return names.list
    }

    // MARK: Failures

    static func failedName(_ line: Substring) -> String? {
        let trimmed = line.droppingBlanks()
        // go test: "--- FAIL: TestX (0.00s)", subtests indented.
        if let rest = trimmed.after("--- FAIL: ") { return goName(rest) }
        // unittest: "FAIL: test_y (tests.t.C.test_y)" / "ERROR: test_y (tests.t.C)".
        if let rest = line.after("FAIL: ") { return unittestName(rest) }
        if let rest = line.after("ERROR: ") { return unittestName(rest) }
        // pytest short summary: "FAILED tests/t.py::test_y - msg", "ERROR tests/t.py::test_z".
        let summary = dropXdistPrefix(line)
        if let rest = summary.after("FAILED ") { return pytestSummaryName(rest, allowModule: false) }
        if let rest = summary.after("ERROR ") { return pytestSummaryName(rest, allowModule: true) }
        // pytest -v: "tests/t.py::test_y FAILED   [ 20%]".
        if let name = pytestVerboseName(line, status: "FAILED") ?? pytestVerboseName(line, status: "ERROR") { return name }
        // XCTest: "Test Case '-[Mod.Cls testY]' failed (0.001 seconds)."
        if let name = xctestName(trimmed, verb: "failed") { return name }
        // swift-testing: "✘ Test testY() recorded an issue at …", "✘ Test \"name\" failed after …".
        if let rest = trimmed.after("\u{2718} Test "), !rest.starts("run with ") { return swiftTestingName(rest, passed: false) }
        return nil
    }

    // MARK: Passes

    static func passedName(_ line: Substring, pending: String?) -> String? {
        let trimmed = line.droppingBlanks()
        if let rest = trimmed.after("--- PASS: ") { return goName(rest) }
        let summary = dropXdistPrefix(line)
        if let rest = summary.after("PASSED ") { return pytestSummaryName(rest, allowModule: false) }
        if let name = pytestVerboseName(line, status: "PASSED") { return name }
        if let name = unittestPassed(line, pending: pending) { return name }
        if let name = xctestName(trimmed, verb: "passed") { return name }
        if let rest = trimmed.after("\u{2714} Test "), !rest.starts("run with ") { return swiftTestingName(rest, passed: true) }
        return nil
    }

    /// unittest -v: "test_y (tests.t.C.test_y) ... ok". In one line Python < 3.11 may print several
    /// descriptions (a test with subtests leaves its "..." open), so the status belongs to the last one.
    /// With a docstring the description line comes alone and the next line is "First doc line. ... ok".
    static func unittestPassed(_ line: Substring, pending: String?) -> String? {
        guard line.ends(" ... ok") else { return nil }
        let dots = ranges(of: " ... ", in: line)
        guard let last = dots.last else { return nil }
        let from = dots.count >= 2 ? dots[dots.count - 2].upperBound : line.startIndex
        if let name = unittestName(line[from..<last.lowerBound]) { return name }
        return dots.count == 1 ? pending : nil
    }

    /// A unittest -v description line standing alone ("test_y (tests.t.C.test_y)"), as printed before a
    /// docstring line.
    static func unittestDescription(_ line: Substring) -> String? {
        guard line.ends(")"), find(" ... ", in: line) == nil else { return nil }
        return unittestName(line, allowTrailing: false)
    }

    // MARK: Runners

    /// "test_y (tests.t.C.test_y)" or "test_y (tests.t.C)" (optionally followed by a subtest's " (i=1)" or
    /// " [msg]") → "tests.t.C.test_y". A module that failed to import is reported by unittest as a test of
    /// `unittest.loader._FailedTest` named after the module: its name is the module's.
    static func unittestName(_ text: Substring, allowTrailing: Bool = true) -> String? {
        guard let open = text.firstIndex(of: " ") else { return nil }
        let method = text[..<open]
        let rest = text[open...].dropFirst()
        guard rest.first == "(", let close = rest.firstIndex(of: ")") else { return nil }
        let path = rest[rest.index(after: rest.startIndex)..<close]
        let after = rest[rest.index(after: close)...]
        guard isIdentifier(method, dots: true), isIdentifier(path, dots: true) else { return nil }
        if !after.isEmpty {
            guard allowTrailing, after.starts(" (") || after.starts(" [") else { return nil }
        }
        let failedImport = "unittest.loader._FailedTest"
        if path == failedImport || path.starts(failedImport + ".") { return String(method) }
        if path == method || path.ends("." + method) { return String(path) }
        return path + "." + method
    }

    /// "tests/t.py::C::test_y - msg" → "tests/t.py::C::test_y". A node id has "::"; with `allowModule`
    /// (ERROR lines) a bare test file is accepted too, for an error while collecting it.
    static func pytestSummaryName(_ text: Substring, allowModule: Bool) -> String? {
        let id = find(" - ", in: text).map { text[..<$0.lowerBound] } ?? text
        guard let first = id.first, first != " ", first != "(", first != "[", id.last != " " else { return nil }
        if isNodeId(id) { return String(id) }
        if allowModule, !id.utf8.contains(0x20), id.ends(".py") { return String(id) }
        return nil
    }

    /// pytest -v: "<node id> STATUS" followed only by spaces and an optional "[ 20%]".
    static func pytestVerboseName(_ line: Substring, status: String) -> String? {
        guard find("::", in: line) != nil, let r = find(" " + status, in: line, last: true) else { return nil }
        let tail = line[r.upperBound...].droppingBlanks()
        guard tail.isEmpty || (tail.starts("[") && tail.ends("%]")) else { return nil }
        let id = line[..<r.lowerBound]
        guard isNodeId(id) else { return nil }
        return String(id)
    }

    /// A pytest node id: "path::name[::name…]", the path without spaces (a parameter id may hold some).
    static func isNodeId(_ id: Substring) -> Bool {
        guard let sep = find("::", in: id), sep.lowerBound > id.startIndex, sep.upperBound < id.endIndex else { return false }
        return !id[..<sep.lowerBound].utf8.contains(where: { $0 == 0x20 || $0 == 0x09 }) && id.last != " "
    }

    /// pytest-xdist prefixes results with "[gw0] [ 50%] "; the rest reads as without it.
    static func dropXdistPrefix(_ line: Substring) -> Substring {
        guard line.starts("[gw") else { return line }
        var rest = line
        while rest.starts("["), let close = rest.firstIndex(of: "]") {
            rest = rest[rest.index(after: close)...].droppingBlanks()
        }
        return rest
    }

    /// "TestX (0.00s)" → "TestX".
    static func goName(_ text: Substring) -> String? {
        guard let r = find(" (", in: text, last: true), text.ends("s)") else { return nil }
        let name = text[..<r.lowerBound]
        guard !name.isEmpty, !name.utf8.contains(0x20) else { return nil }
        return String(name)
    }

    /// "Test Case '-[Mod.Cls testY]' failed (…)" → "Mod.Cls.testY"; "Test Case 'Cls.testY' failed" → "Cls.testY".
    static func xctestName(_ line: Substring, verb: String) -> String? {
        guard let quoted = line.after("Test Case '"), let r = find("' " + verb + " (", in: quoted) else { return nil }
        var name = quoted[..<r.lowerBound]
        if name.starts("-["), name.ends("]") {
            name = name.dropFirst(2).dropLast()
            let parts = name.split(separator: " ")
            guard parts.count == 2 else { return nil }
            return parts[0] + "." + parts[1]
        }
        guard !name.isEmpty, !name.utf8.contains(0x20) else { return nil }
        return String(name)
    }

    /// swift-testing: `testY() recorded an issue …` → "testY()"; `"a name" failed after …` → "a name". The
    /// name ends where the rest of the line reads as the outcome (a display name may hold quotes and spaces).
    static func swiftTestingName(_ text: Substring, passed: Bool) -> String? {
        func outcome(_ rest: Substring) -> Bool {
            func verb(_ v: String) -> Bool { rest == " " + v || rest.starts(" " + v + " ") }
            if passed ? verb("passed") : (verb("failed") || rest.starts(" recorded an issue")) { return true }
            // "… with 2 test cases failed after …" (a parameterized test).
            guard rest.starts(" with ") else { return false }
            let afterWith = rest.dropFirst(6)
            let count = afterWith.utf8.prefix(while: { $0 >= 0x30 && $0 <= 0x39 }).count
            return count > 0 && afterWith.dropFirst(count).starts(" test case")
        }
        if let body = text.after("\"") {
            var i = body.startIndex
            while let quote = body[i...].firstIndex(of: "\"") {
                if quote > body.startIndex, outcome(body[body.index(after: quote)...]) { return String(body[..<quote]) }
                i = body.index(after: quote)
            }
            return nil
        }
        guard let space = text.firstIndex(of: " ") else { return nil }
        let name = text[..<space]
        guard !name.isEmpty, outcome(text[space...]) else { return nil }
        return String(name)
    }

    // MARK: Scanning

    /// What a line must contain to be looked at further (a cheap byte test before any String is made).
    struct Markers {
        var words: [[UInt8]]
        /// Also a line ending in one of these (unittest's " ... ok", and the description line before a docstring).
        var suffixes: [[UInt8]]
        /// `leads[b]`: some word starts with byte b.
        var leads: [Bool]

        init(words: [String], suffixes: [String]) {
            self.words = words.map { Array($0.utf8) }
            self.suffixes = suffixes.map { Array($0.utf8) }
            leads = [Bool](repeating: false, count: 256)
            for w in self.words { leads[Int(w[0])] = true }
        }
    }

    static let failureMarkers = Markers(words: ["FAIL", "ERROR", "' failed (", "\u{2718}"], suffixes: [])
    static let passMarkers = Markers(words: ["PASS", "' passed (", "\u{2714}"], suffixes: [" ... ok", ")"])

    /// Calls `body` for each line (without its "\n" or "\r\n") of the first and last `maxScanBytes / 2` bytes
    /// of `output`, until it returns false: with the line when it is at most `maxLineBytes` long and holds one
    /// of `markers`, otherwise with nil. One pass over the bytes read; only candidate lines become Strings.
    static func forEachLine(_ output: String, candidates markers: Markers, _ body: (String?) -> Bool) {
        var text = output
        text.makeContiguousUTF8()
        text.utf8.withContiguousStorageIfAvailable { buf in
            markers.leads.withUnsafeBufferPointer { leads in
                if buf.count > maxScanBytes {
                    let half = maxScanBytes / 2
                    // Partial lines at the cuts are not read (as a whole line they could say something else).
                    let head = UnsafeBufferPointer(rebasing: buf[..<half])
                    let tail = UnsafeBufferPointer(rebasing: buf[(buf.count - half)...])
                    if scan(head, markers, leads, dropFirst: false, dropLast: true, body) {
                        _ = scan(tail, markers, leads, dropFirst: true, dropLast: false, body)
                    }
                } else {
                    _ = scan(buf, markers, leads, dropFirst: false, dropLast: false, body)
                }
            }
        }
    }

    /// false when `body` asked to stop.
    private static func scan(
        _ buf: UnsafeBufferPointer<UInt8>, _ markers: Markers, _ leads: UnsafeBufferPointer<Bool>, dropFirst: Bool,
        dropLast: Bool, _ body: (String?) -> Bool
    ) -> Bool {
        let newline = UInt8(ascii: "\n")
        var start = 0
        var first = true
        while start < buf.count {
            var end = start
            var hit = false
            while end < buf.count {
                let b = buf[end]
                if b == newline { break }
                if leads[Int(b)], !hit { hit = wordAt(end, buf, markers) }
                end += 1
            }
            let next = end + 1
            defer {
                start = next
                first = false
            }
            if end == buf.count && dropLast { return true }
            if first && dropFirst { continue }
            if end > start, buf[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            let line = UnsafeBufferPointer(rebasing: buf[start..<end])
            let keep = line.count <= maxLineBytes && (hit || endsWithSuffix(line, markers))
            if !body(keep ? String(decoding: line, as: UTF8.self) : nil) { return false }
        }
        return true
    }

    private static func wordAt(_ i: Int, _ buf: UnsafeBufferPointer<UInt8>, _ markers: Markers) -> Bool {
        for word in markers.words where word[0] == buf[i] && buf.count - i >= word.count {
            var k = 1
            while k < word.count, buf[i + k] == word[k] { k += 1 }
            if k == word.count { return true }
        }
        return false
    }

    private static func endsWithSuffix(_ line: UnsafeBufferPointer<UInt8>, _ markers: Markers) -> Bool {
        for suffix in markers.suffixes where suffix.count <= line.count {
            if line[(line.count - suffix.count)...].elementsEqual(suffix) { return true }
        }
        return false
    }

    /// Removes ANSI CSI escape sequences ("ESC [ … final byte") from a line (colored runner output).
    static func stripANSI(_ line: Substring) -> Substring {
        var out = ""
        var i = line.unicodeScalars.startIndex
        let scalars = line.unicodeScalars
        while i < scalars.endIndex {
            let c = scalars[i]
            if c == "\u{1B}", scalars.index(after: i) < scalars.endIndex, scalars[scalars.index(after: i)] == "[" {
                i = scalars.index(i, offsetBy: 2)
                while i < scalars.endIndex, !(0x40...0x7E).contains(scalars[i].value) { i = scalars.index(after: i) }
                if i < scalars.endIndex { i = scalars.index(after: i) }
                continue
            }
            out.unicodeScalars.append(c)
            i = scalars.index(after: i)
        }
        return Substring(out)
    }

    /// Where `needle` occurs in `text` (its first or last occurrence), by UTF-8 bytes. Every needle here
    /// starts with an ASCII byte, so a match starts on a scalar boundary.
    static func find(_ needle: String, in text: Substring, last: Bool = false) -> Range<String.Index>? {
        last ? ranges(of: needle, in: text).last : ranges(of: needle, in: text, first: true).first
    }

    /// The non-overlapping occurrences of `needle` in `text`, left to right (only the first with `first`).
    static func ranges(of needle: String, in text: Substring, first: Bool = false) -> [Range<String.Index>] {
        let n = Array(needle.utf8)
        let h = text.utf8
        guard let lead = n.first else { return [] }
        var out: [Range<String.Index>] = []
        var i = h.startIndex
        while let start = h[i...].firstIndex(of: lead) {
            var j = start
            var k = 0
            while k < n.count, j < h.endIndex, h[j] == n[k] {
                j = h.index(after: j)
                k += 1
            }
            if k == n.count {
                out.append(start..<j)
                if first { return out }
                i = j
            } else {
                i = h.index(after: start)
            }
            if i >= h.endIndex { break }
        }
        return out
    }

    /// ASCII letters, digits and "_" (and "." when `dots`), non-empty: a Python dotted name.
    static func isIdentifier(_ s: Substring, dots: Bool) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || (dots && b == 0x2E)
        }
    }

    /// First-seen order, each once.
    private struct Names {
        var list: [String] = []
        var seen: Set<String> = []

        mutating func add(_ name: String) {
            guard !name.isEmpty, seen.insert(name).inserted else { return }
            list.append(name)
        }
    }
}

extension Substring {
    /// Byte-wise (no Unicode normalisation, unlike `hasPrefix`): runner output is matched as printed.
    func starts(_ prefix: String) -> Bool { utf8.starts(with: prefix.utf8) }

    func ends(_ suffix: String) -> Bool {
        let n = suffix.utf8.count
        guard utf8.count >= n else { return false }
        return utf8[utf8.index(utf8.endIndex, offsetBy: -n)...].elementsEqual(suffix.utf8)
    }

    /// The rest after `prefix`, or nil when the text does not start with it.
    func after(_ prefix: String) -> Substring? {
        guard starts(prefix) else { return nil }
        return self[utf8.index(startIndex, offsetBy: prefix.utf8.count)...]
    }

    /// Without leading spaces and tabs.
    func droppingBlanks() -> Substring {
        guard let i = utf8.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }) else { return self[endIndex...] }
        return self[i...]
    }
}
