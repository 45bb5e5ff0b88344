// TestSummaryParser: reads pass/fail counts from the closing lines of common test runners.

import Foundation

/// Extracts `(passed, failed)` from test output. Recognises pytest, unittest, XCTest, Swift Testing, go test, jest
/// and `node --test`. Unknown output yields `(nil, nil)`; the exit code remains the authority on success.
public enum TestSummaryParser {
    /// Parses the whole output; later summaries win over earlier ones (a runner may print progress first).
    /// `failed` counts failures plus errors, since both mean the run did not pass.
    public static func parse(_ output: String) -> (passed: Int?, failed: Int?) {
        var passed: Int?
        var failed: Int?
        var goPass = 0
        var goFail = 0
        var unittestRan: Int?
        var unittestFailed: Int?
        var nodePass: Int?
        var nodeFail: Int?

        for rawLine in output.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = rawLine.trimmed(" \t")
            // go test -v: one line per test (subtests are indented and counted too, as go itself prints them).
            if line.hasPrefix("--- PASS:") { goPass += 1; continue }
            if line.hasPrefix("--- FAIL:") { goFail += 1; continue }
            // node --test (TAP): "# pass 4", "# fail 1".
            if line.hasPrefix("# pass ") || line.hasPrefix("ℹ pass ") { nodePass = count(line.dropFirst(7)); continue }
            if line.hasPrefix("# fail ") || line.hasPrefix("ℹ fail ") { nodeFail = count(line.dropFirst(7)); continue }
            // unittest: "Ran 5 tests in 0.001s", then "OK" or "FAILED (failures=1, errors=2)".
            if line.hasPrefix("Ran "), line.contains(" test") {
                unittestRan = firstInt(in: line)
                unittestFailed = nil
                continue
            }
            if unittestRan != nil, line == "OK" || line.hasPrefix("OK (") {
                unittestFailed = 0
                continue
            }
            if unittestRan != nil, line.hasPrefix("FAILED (") {
                unittestFailed = (namedCount("failures", in: line) ?? 0) + (namedCount("errors", in: line) ?? 0)
                continue
            }
            // jest: "Tests:       1 failed, 4 passed, 5 total".
            if line.hasPrefix("Tests:") {
                let counts = countsByWord(line.dropFirst(6))
                passed = counts["passed"] ?? 0
                failed = counts["failed"] ?? 0
                continue
            }
            // XCTest: "Executed 5 tests, with 1 failure (0 unexpected) in 0.1 (0.1) seconds".
            if line.hasPrefix("Executed "), line.contains(" test"), line.contains(" with ") {
                if let total = firstInt(in: line), let f = intBefore(word: "failure", in: line) {
                    passed = max(0, total - f)
                    failed = f
                }
                continue
            }
            // Swift Testing: "✔ Test run with 5 tests in 2 suites passed after 0.1 seconds." /
            // "✘ Test run with 5 tests in 2 suites failed after 0.1 seconds with 2 issues."
            if let r = line.range(of: "Test run with ") {
                let rest = line[r.upperBound...]
                if let total = count(rest.prefix(while: \.isNumber)) {
                    if rest.contains(" passed after ") {
                        passed = total
                        failed = 0
                    } else if rest.contains(" failed after ") {
                        // Swift Testing reports issues, not failed tests; count at least one failed test.
                        let issues = intBefore(word: "issue", in: line) ?? 1
                        failed = min(max(1, issues), total)
                        passed = total - failed!
                    }
                }
                continue
            }
            // pytest: "==== 3 passed, 1 failed, 2 errors in 0.12s ====" (also "1 failed in 0.1s", "no tests ran").
            if isPytestSummary(line) {
                let counts = countsByWord(line)
                passed = counts["passed"] ?? 0
                failed = (counts["failed"] ?? 0) + (counts["error"] ?? 0) + (counts["errors"] ?? 0)
                continue
            }
            // The plain "N passed, N failed" line.
            if line.range(of: #"^([A-Za-z]+: )?\d+ passed, \d+ failed(, \d+ skipped)?$"#, options: .regularExpression) != nil {
                let counts = countsByWord(line)
                passed = counts["passed"]
                failed = counts["failed"]
            }
        }
        if let ran = unittestRan, let f = unittestFailed {
            passed = max(0, ran - f)
            failed = f
        }
        if let p = nodePass ?? nodeFail.map({ _ in 0 }) {
            passed = p
            failed = nodeFail ?? 0
        }
        if passed == nil, failed == nil, goPass + goFail > 0 {
            passed = goPass
            failed = goFail
        }
        return (passed, failed)
    }

    /// A pytest summary line contains "N passed|failed|error(s)" and " in <seconds>s".
    private static func isPytestSummary(_ line: String) -> Bool {
        guard line.contains(" in "), line.hasSuffix("s") || line.hasSuffix("=") else { return false }
        let counts = countsByWord(line)
        return counts["passed"] != nil || counts["failed"] != nil || counts["error"] != nil || counts["errors"] != nil
    }

    /// Maps each word to the integer right before it: "3 passed, 1 failed" → [passed: 3, failed: 1].
    private static func countsByWord(_ text: some StringProtocol) -> [String: Int] {
        let tokens = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "=" || $0 == "(" || $0 == ")" })
        var out: [String: Int] = [:]
        for (a, b) in zip(tokens, tokens.dropFirst()) {
            if let n = count(a) { out[String(b)] = n }
        }
        return out
    }

    /// A count as runners print it: ASCII digits only — no sign ("-1 failed" is not a count; found by Fuzz/,
    /// target `summary`) — and at most 9 of them, so adding failures and errors can never overflow.
    private static func count(_ token: some StringProtocol) -> Int? {
        guard !token.isEmpty, token.utf8.count <= 9, token.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(token)
    }

    /// "failures=1" → 1.
    private static func namedCount(_ name: String, in line: String) -> Int? {
        guard let r = line.range(of: name + "=") else { return nil }
        return count(line[r.upperBound...].prefix(while: \.isNumber))
    }

    /// The integer before "failure"/"failures" etc.
    private static func intBefore(word: String, in line: String) -> Int? {
        let tokens = line.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "(" || $0 == ")" })
        for (a, b) in zip(tokens, tokens.dropFirst()) where b.hasPrefix(word) {
            if let n = count(a) { return n }
        }
        return nil
    }

    private static func firstInt(in line: String) -> Int? {
        var digits = ""
        for ch in line {
            if ch.isASCII, ch.isNumber { digits.append(ch) } else if !digits.isEmpty { break }
        }
        return count(digits)
    }
}

extension StringProtocol {
    /// Trims the given ASCII characters from both ends without Foundation.
    func trimmed(_ set: String = " \t\r\n") -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
