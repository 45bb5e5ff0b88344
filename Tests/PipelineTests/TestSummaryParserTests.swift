// TestSummaryParserTests: pass/fail counts from each runner's closing lines, real where a runner is installed.

import Protocol
import Testing

@testable import Pipeline

@Suite struct TestSummaryParserTests {
    @Test func pytest() {
        #expect(TestSummaryParser.parse("==== 3 passed, 1 failed in 0.12s ====").passed == 3)
        #expect(TestSummaryParser.parse("==== 3 passed, 1 failed in 0.12s ====").failed == 1)
        let withErrors = TestSummaryParser.parse("=== 1 failed, 2 passed, 1 error in 0.50s ===")
        #expect(withErrors.passed == 2 && withErrors.failed == 2)
        let allPass = TestSummaryParser.parse("collected 4 items\n\ntest_a.py ....\n\n==== 4 passed in 0.01s ====\n")
        #expect(allPass.passed == 4 && allPass.failed == 0)
    }

    @Test func unittestRealOutput() throws {
        let ok = try RealRun.python(
            ["t.py": "import unittest\nclass T(unittest.TestCase):\n    def test_a(self): pass\n    def test_b(self): pass\nunittest.main()\n"],
            run: "t.py")
        #expect(ok.exitCode == 0)
        let counts = TestSummaryParser.parse(ok.output)
        #expect(counts.passed == 2 && counts.failed == 0)
        let failed = TestSummaryParser.parse("Ran 5 tests in 0.010s\n\nFAILED (failures=1, errors=2)\n")
        #expect(failed.passed == 2 && failed.failed == 3)
    }

    @Test func nodeTestRealOutput() throws {
        let source = """
            const test = require('node:test'); const assert = require('assert');
            test('a', () => assert.strictEqual(1, 1));
            test('b', () => assert.strictEqual(1, 2));
            test('c', () => {});

            """
        let run = try RealRun(files: ["a.test.js": source], command: ["node", "--test", "$DIR/a.test.js"])
        #expect(run.exitCode != 0)
        let counts = TestSummaryParser.parse(run.output)
        #expect(counts.passed == 2 && counts.failed == 1)
    }

    @Test func xctestAndSwiftTesting() {
        let xc = TestSummaryParser.parse("Executed 5 tests, with 1 failure (0 unexpected) in 0.102 (0.103) seconds")
        #expect(xc.passed == 4 && xc.failed == 1)
        let ok = TestSummaryParser.parse("✔ Test run with 7 tests in 2 suites passed after 0.011 seconds.")
        #expect(ok.passed == 7 && ok.failed == 0)
        let bad = TestSummaryParser.parse("✘ Test run with 7 tests in 2 suites failed after 0.011 seconds with 2 issues.")
        #expect(bad.passed == 5 && bad.failed == 2)
    }

    @Test func goTest() {
        let out = "=== RUN   TestA\n--- PASS: TestA (0.00s)\n=== RUN   TestB\n--- FAIL: TestB (0.00s)\n--- PASS: TestC (0.00s)\nFAIL\nFAIL\tx\t0.01s\n"
        let counts = TestSummaryParser.parse(out)
        #expect(counts.passed == 2 && counts.failed == 1)
    }

    @Test func jest() {
        let counts = TestSummaryParser.parse("Test Suites: 1 failed, 1 total\nTests:       1 failed, 4 passed, 5 total\nTime: 1 s")
        #expect(counts.passed == 4 && counts.failed == 1)
    }

    @Test func plainLineAndUnknown() {
        let plain = TestSummaryParser.parse("summary: 10 passed, 0 failed")
        #expect(plain.passed == 10 && plain.failed == 0)
        let none = TestSummaryParser.parse("hello\nworld\n")
        #expect(none.passed == nil && none.failed == nil)
    }

    /// Found by the `summary` fuzz target (Fuzz/corpus/summary/regress-negative-count): a signed number before
    /// "failed" was read as a count, so a line of output could make `failed` negative. Counts are digits only,
    /// and at most 9 of them, so failures plus errors cannot overflow either.
    @Test func signedOrHugeNumbersAreNotCounts() {
        let signed = TestSummaryParser.parse("==== -1 failed, 3 passed in 0.12s ====")
        #expect(signed.passed == 3 && signed.failed == 0)
        #expect(TestSummaryParser.parse("# pass -3\n# fail +2\n").passed == nil)
        let huge = "==== 9223372036854775807 failed, 9223372036854775807 errors, 1 passed in 1s ===="
        #expect(TestSummaryParser.parse(huge).failed == 0)
        #expect(TestSummaryParser.parse("Ran 99999999999999999999 tests in 1s\nFAILED (failures=9223372036854775807, errors=9223372036854775807)").failed == nil)
        #expect(TestSummaryParser.parse("==== 123456789 passed in 1s ====").passed == 123_456_789)
    }
}
