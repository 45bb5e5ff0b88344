// FailingTestsTests: failed and passed test names from real runner output (captured from throwaway test files
// in /tmp: the commands are above each sample), plus hostile input.

import Foundation
import Testing

@testable import Pipeline

@Suite struct FailingTestsTests {
    /// `python3 -m pytest -v -rA tests (pytest 9.0.3, Python 3.11.7)`
    static let pytestVerbose = #"""
        ============================= test session starts ==============================
        platform linux -- Python 3.11.7, pytest-9.0.3, pluggy-1.6.0 -- /root/.pyenv/versions/3.11.7/bin/python3
        cachedir: .pytest_cache
        hypothesis profile 'default'
        benchmark: 5.2.3 (defaults: timer=time.perf_counter disable_gc=False min_rounds=5 min_time=0.000005 max_time=1.0 calibration_precision=10 warmup=False warmup_iterations=100000)
        rootdir: /tmp/ft-sample
        plugins: hypothesis-6.155.2, benchmark-5.2.3
        collecting ... collected 10 items

        tests/test_x.py::test_ok PASSED                                          [ 10%]
        tests/test_x.py::test_bad FAILED                                         [ 20%]
        tests/test_x.py::test_errors ERROR                                       [ 30%]
        tests/test_x.py::test_param[1] PASSED                                    [ 40%]
        tests/test_x.py::test_param[2] FAILED                                    [ 50%]
        tests/test_x.py::TestC::test_y FAILED                                    [ 60%]
        tests/test_x.py::TestC::test_z PASSED                                    [ 70%]
        tests/test_x.py::TestU::test_error FAILED                                [ 80%]
        tests/test_x.py::TestU::test_fail FAILED                                 [ 90%]
        tests/test_x.py::TestU::test_pass PASSED                                 [100%]

        ==================================== ERRORS ====================================
        ________________________ ERROR at setup of test_errors _________________________

            @pytest.fixture
            def broken():
        >       raise RuntimeError("fixture broke")
        E       RuntimeError: fixture broke

        tests/test_x.py:12: RuntimeError
        =================================== FAILURES ===================================
        ___________________________________ test_bad ___________________________________

            def test_bad():
        >       assert 1 == 2, "one is not two"
        E       AssertionError: one is not two
        E       assert 1 == 2

        tests/test_x.py:8: AssertionError
        ________________________________ test_param[2] _________________________________

        n = 2

            @pytest.mark.parametrize("n", [1, 2])
            def test_param(n):
        >       assert n == 1
        E       assert 2 == 1

        tests/test_x.py:19: AssertionError
        _________________________________ TestC.test_y _________________________________

        self = <tests.test_x.TestC object at 0x7fbad7b9e790>

            def test_y(self):
        >       assert "a" == "b"
        E       AssertionError: assert 'a' == 'b'
        E         
        E         - b
        E         + a

        tests/test_x.py:23: AssertionError
        _______________________________ TestU.test_error _______________________________

        self = <tests.test_x.TestU testMethod=test_error>

            def test_error(self):
        >       raise ValueError("boom")
        E       ValueError: boom

        tests/test_x.py:31: ValueError
        _______________________________ TestU.test_fail ________________________________

        self = <tests.test_x.TestU testMethod=test_fail>

            def test_fail(self):
        >       self.assertEqual(1, 2)
        E       AssertionError: 1 != 2

        tests/test_x.py:29: AssertionError
        ==================================== PASSES ====================================
        =========================== short test summary info ============================
        PASSED tests/test_x.py::test_ok
        PASSED tests/test_x.py::test_param[1]
        PASSED tests/test_x.py::TestC::test_z
        PASSED tests/test_x.py::TestU::test_pass
        ERROR tests/test_x.py::test_errors - RuntimeError: fixture broke
        FAILED tests/test_x.py::test_bad - AssertionError: one is not two
        FAILED tests/test_x.py::test_param[2] - assert 2 == 1
        FAILED tests/test_x.py::TestC::test_y - AssertionError: assert 'a' == 'b'
        FAILED tests/test_x.py::TestU::test_error - ValueError: boom
        FAILED tests/test_x.py::TestU::test_fail - AssertionError: 1 != 2
        ===================== 5 failed, 4 passed, 1 error in 0.51s =====================
        """#

    /// `python3 -m pytest -rA tests (the same file, not verbose)`
    static let pytestSummary = #"""
        ============================= test session starts ==============================
        platform linux -- Python 3.11.7, pytest-9.0.3, pluggy-1.6.0
        benchmark: 5.2.3 (defaults: timer=time.perf_counter disable_gc=False min_rounds=5 min_time=0.000005 max_time=1.0 calibration_precision=10 warmup=False warmup_iterations=100000)
        rootdir: /tmp/ft-sample
        plugins: hypothesis-6.155.2, benchmark-5.2.3
        collected 10 items

        tests/test_x.py .FE.FF.FF.                                               [100%]

        ==================================== ERRORS ====================================
        ________________________ ERROR at setup of test_errors _________________________

            @pytest.fixture
            def broken():
        >       raise RuntimeError("fixture broke")
        E       RuntimeError: fixture broke

        tests/test_x.py:12: RuntimeError
        =================================== FAILURES ===================================
        ___________________________________ test_bad ___________________________________

            def test_bad():
        >       assert 1 == 2, "one is not two"
        E       AssertionError: one is not two
        E       assert 1 == 2

        tests/test_x.py:8: AssertionError
        ________________________________ test_param[2] _________________________________

        n = 2

            @pytest.mark.parametrize("n", [1, 2])
            def test_param(n):
        >       assert n == 1
        E       assert 2 == 1

        tests/test_x.py:19: AssertionError
        _________________________________ TestC.test_y _________________________________

        self = <tests.test_x.TestC object at 0x7f02a5d35f50>

            def test_y(self):
        >       assert "a" == "b"
        E       AssertionError: assert 'a' == 'b'
        E         
        E         - b
        E         + a

        tests/test_x.py:23: AssertionError
        _______________________________ TestU.test_error _______________________________

        self = <tests.test_x.TestU testMethod=test_error>

            def test_error(self):
        >       raise ValueError("boom")
        E       ValueError: boom

        tests/test_x.py:31: ValueError
        _______________________________ TestU.test_fail ________________________________

        self = <tests.test_x.TestU testMethod=test_fail>

            def test_fail(self):
        >       self.assertEqual(1, 2)
        E       AssertionError: 1 != 2

        tests/test_x.py:29: AssertionError
        ==================================== PASSES ====================================
        =========================== short test summary info ============================
        PASSED tests/test_x.py::test_ok
        PASSED tests/test_x.py::test_param[1]
        PASSED tests/test_x.py::TestC::test_z
        PASSED tests/test_x.py::TestU::test_pass
        ERROR tests/test_x.py::test_errors - RuntimeError: fixture broke
        FAILED tests/test_x.py::test_bad - AssertionError: one is not two
        FAILED tests/test_x.py::test_param[2] - assert 2 == 1
        FAILED tests/test_x.py::TestC::test_y - AssertionError: assert 'a' == 'b'
        FAILED tests/test_x.py::TestU::test_error - ValueError: boom
        FAILED tests/test_x.py::TestU::test_fail - AssertionError: 1 != 2
        ===================== 5 failed, 4 passed, 1 error in 0.69s =====================
        """#

    /// `python3 -m pytest -rA tests/test_x.py tests/test_broken.py (an import error while collecting)`
    static let pytestCollectionError = #"""
        ============================= test session starts ==============================
        platform linux -- Python 3.11.7, pytest-9.0.3, pluggy-1.6.0
        benchmark: 5.2.3 (defaults: timer=time.perf_counter disable_gc=False min_rounds=5 min_time=0.000005 max_time=1.0 calibration_precision=10 warmup=False warmup_iterations=100000)
        rootdir: /tmp/ft-sample
        plugins: hypothesis-6.155.2, benchmark-5.2.3
        collected 10 items / 1 error

        ==================================== ERRORS ====================================
        ____________________ ERROR collecting tests/test_broken.py _____________________
        ImportError while importing test module '/tmp/ft-sample/tests/test_broken.py'.
        Hint: make sure your test modules/packages have valid Python names.
        Traceback:
        /root/.pyenv/versions/3.11.7/lib/python3.11/importlib/__init__.py:126: in import_module
            return _bootstrap._gcd_import(name[level:], package, level)
                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
        tests/test_broken.py:1: in <module>
            import nope_not_a_module
        E   ModuleNotFoundError: No module named 'nope_not_a_module'
        =========================== short test summary info ============================
        ERROR tests/test_broken.py
        !!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
        =============================== 1 error in 0.62s ===============================
        """#

    /// `python3.11 -m unittest -v tests.test_u2 tests.test_broken (docstrings, subtests, skip, expected failure, a module that does not import)`
    static let unittest311 = #"""
        test_doc (tests.test_u2.TestD.test_doc)
        Checks the thing. ... ok
        test_docfail (tests.test_u2.TestD.test_docfail)
        Fails with a doc. ... FAIL
        test_skip (tests.test_u2.TestD.test_skip) ... skipped 'later'
        test_sub (tests.test_u2.TestD.test_sub) ... 
          test_sub (tests.test_u2.TestD.test_sub) (i=1) ... FAIL
          test_sub (tests.test_u2.TestD.test_sub) (i=2) ... FAIL
        test_xfail (tests.test_u2.TestD.test_xfail) ... expected failure
        test_broken (unittest.loader._FailedTest.test_broken) ... ERROR

        ======================================================================
        ERROR: test_broken (unittest.loader._FailedTest.test_broken)
        ----------------------------------------------------------------------
        ImportError: Failed to import test module: test_broken
        Traceback (most recent call last):
          File "/root/.pyenv/versions/3.11.7/lib/python3.11/unittest/loader.py", line 162, in loadTestsFromName
            module = __import__(module_name)
                     ^^^^^^^^^^^^^^^^^^^^^^^
          File "/tmp/ft-sample/tests/test_broken.py", line 1, in <module>
            import nope_not_a_module
        ModuleNotFoundError: No module named 'nope_not_a_module'


        ======================================================================
        FAIL: test_docfail (tests.test_u2.TestD.test_docfail)
        Fails with a doc.
        ----------------------------------------------------------------------
        Traceback (most recent call last):
          File "/tmp/ft-sample/tests/test_u2.py", line 9, in test_docfail
            self.fail("nope")
        AssertionError: nope

        ======================================================================
        FAIL: test_sub (tests.test_u2.TestD.test_sub) (i=1)
        ----------------------------------------------------------------------
        Traceback (most recent call last):
          File "/tmp/ft-sample/tests/test_u2.py", line 13, in test_sub
            self.assertLess(i, 1)
        AssertionError: 1 not less than 1

        ======================================================================
        FAIL: test_sub (tests.test_u2.TestD.test_sub) (i=2)
        ----------------------------------------------------------------------
        Traceback (most recent call last):
          File "/tmp/ft-sample/tests/test_u2.py", line 13, in test_sub
            self.assertLess(i, 1)
        AssertionError: 2 not less than 1

        ----------------------------------------------------------------------
        Ran 6 tests in 0.001s

        FAILED (failures=3, errors=1, skipped=1, expected failures=1)
        """#

    /// `python3.10 -m unittest -v tests.test_u2 tests.test_broken (the same tests: the older "(module.Class)" form)`
    static let unittest310 = #"""
        test_doc (tests.test_u2.TestD)
        Checks the thing. ... ok
        test_docfail (tests.test_u2.TestD)
        Fails with a doc. ... FAIL
        test_skip (tests.test_u2.TestD) ... skipped 'later'
        test_sub (tests.test_u2.TestD) ... test_xfail (tests.test_u2.TestD) ... expected failure
        test_broken (unittest.loader._FailedTest) ... ERROR

        ======================================================================
        ERROR: test_broken (unittest.loader._FailedTest)
        ----------------------------------------------------------------------
        ImportError: Failed to import test module: test_broken
        Traceback (most recent call last):
          File "/root/.pyenv/versions/3.10.13/lib/python3.10/unittest/loader.py", line 154, in loadTestsFromName
            module = __import__(module_name)
          File "/tmp/ft-sample/tests/test_broken.py", line 1, in <module>
            import nope_not_a_module
        ModuleNotFoundError: No module named 'nope_not_a_module'


        ======================================================================
        FAIL: test_docfail (tests.test_u2.TestD)
        Fails with a doc.
        ----------------------------------------------------------------------
        Traceback (most recent call last):
          File "/tmp/ft-sample/tests/test_u2.py", line 9, in test_docfail
            self.fail("nope")
        AssertionError: nope

        ======================================================================
        FAIL: test_sub (tests.test_u2.TestD) (i=1)
        ----------------------------------------------------------------------
        Traceback (most recent call last):
          File "/tmp/ft-sample/tests/test_u2.py", line 13, in test_sub
            self.assertLess(i, 1)
        AssertionError: 1 not less than 1

        ======================================================================
        FAIL: test_sub (tests.test_u2.TestD) (i=2)
        ----------------------------------------------------------------------
        Traceback (most recent call last):
          File "/tmp/ft-sample/tests/test_u2.py", line 13, in test_sub
            self.assertLess(i, 1)
        AssertionError: 2 not less than 1

        ----------------------------------------------------------------------
        Ran 6 tests in 0.000s

        FAILED (failures=3, errors=1, skipped=1, expected failures=1)
        """#

    /// `python3.11 -m unittest -v tests.test_x (the unittest.TestCase class of the pytest sample)`
    static let unittestCases = #"""
        test_error (tests.test_x.TestU.test_error) ... ERROR
        test_fail (tests.test_x.TestU.test_fail) ... FAIL
        test_pass (tests.test_x.TestU.test_pass) ... ok

        ======================================================================
        ERROR: test_error (tests.test_x.TestU.test_error)
        ----------------------------------------------------------------------
        Traceback (most recent call last):
          File "/tmp/ft-sample/tests/test_x.py", line 31, in test_error
            raise ValueError("boom")
        ValueError: boom

        ======================================================================
        FAIL: test_fail (tests.test_x.TestU.test_fail)
        ----------------------------------------------------------------------
        Traceback (most recent call last):
          File "/tmp/ft-sample/tests/test_x.py", line 29, in test_fail
            self.assertEqual(1, 2)
        AssertionError: 1 != 2

        ----------------------------------------------------------------------
        Ran 3 tests in 0.001s

        FAILED (failures=1, errors=1)
        """#

    /// `swift test (Swift 6.3, Linux): XCTest, then swift-testing, in one package`
    static let swift = #"""
        [0/1] Planning build
        Test Suite 'All tests' started at 2026-12-04 21:55:11.595
        Test Suite 'debug.xctest' started at 2026-12-04 21:55:11.597
        Test Suite 'CalcTests' started at 2026-12-04 21:55:11.597
        Test Case 'CalcTests.testBad' started at 2026-12-04 21:55:11.597
        /tmp/ft-swift/Tests/LibTests/T.swift:7: error: CalcTests.testBad : XCTAssertEqual failed: ("2") is not equal to ("3") - 
        Test Case 'CalcTests.testBad' failed (0.001 seconds)
        Test Case 'CalcTests.testGood' started at 2026-12-04 21:55:11.597
        Test Case 'CalcTests.testGood' passed (0.101 seconds)
        Test Suite 'CalcTests' failed at 2026-12-04 21:55:11.698
        	 Executed 2 tests, with 1 failure (0 unexpected) in 0.101 (0.101) seconds
        Test Suite 'debug.xctest' failed at 2026-12-04 21:55:11.698
        	 Executed 2 tests, with 1 failure (0 unexpected) in 0.101 (0.101) seconds
        Test Suite 'All tests' failed at 2026-12-04 21:55:11.698
        	 Executed 2 tests, with 1 failure (0 unexpected) in 0.101 (0.101) seconds
        ◇ Test run started.
        ↳ Testing Library Version: 6.3.1 (937120cbc281cf2)
        ↳ Target Platform: x86_64-unknown-linux-gnu
        ◇ Test plainBad() started.
        ◇ Test "a display name passes" started.
        ◇ Test "a "quoted" display name fails" started.
        ◇ Test param(_:) started.
        ◇ Test plainGood() started.
        ✘ Test plainBad() recorded an issue at T.swift:11:25: Expectation failed: (two() → 2) == 3
        ✘ Test "a "quoted" display name fails" recorded an issue at T.swift:12:57: Expectation failed: (two() → 2) == 4
        ◇ Test case passing 1 argument n → 1 to param(_:) started.
        ◇ Test case passing 1 argument n → 2 to param(_:) started.
        ✘ Test param(_:) recorded an issue with 1 argument n → 2 at T.swift:14:49: Expectation failed: (n → 2) == 1
        ✘ Test plainBad() failed after 0.001 seconds with 1 issue.
        ✔ Test "a display name passes" passed after 0.001 seconds.
        ✘ Test "a "quoted" display name fails" failed after 0.001 seconds with 1 issue.
        ✘ Test param(_:) with 2 test cases failed after 0.001 seconds with 1 issue.
        ✔ Test plainGood() passed after 0.001 seconds.
        ✘ Test run with 5 tests in 0 suites failed after 0.001 seconds with 3 issues.
        """#

    // The pytest samples ran tests/test_x.py: test_ok (passes), test_bad (fails), test_errors (its fixture
    // raises: an error), test_param[1|2] (2 fails), TestC.test_y (fails) / test_z, and a unittest.TestCase
    // TestU with test_fail, test_error (raises) and test_pass.
    static let pytestFailed = [
        "tests/test_x.py::test_bad", "tests/test_x.py::test_errors", "tests/test_x.py::test_param[2]",
        "tests/test_x.py::TestC::test_y", "tests/test_x.py::TestU::test_error", "tests/test_x.py::TestU::test_fail",
    ]
    static let pytestPassed = [
        "tests/test_x.py::test_ok", "tests/test_x.py::test_param[1]", "tests/test_x.py::TestC::test_z",
        "tests/test_x.py::TestU::test_pass",
    ]

    @Test func pytestVerboseLinesInRunOrder() {
        #expect(FailingTests.parse(Self.pytestVerbose) == Self.pytestFailed)
        #expect(FailingTests.passed(Self.pytestVerbose) == Self.pytestPassed)
    }

    @Test func pytestShortSummaryOnly() {
        // Without -v only the short summary names tests: errors are listed before failures there.
        let failed = ["tests/test_x.py::test_errors"] + Self.pytestFailed.filter { $0 != "tests/test_x.py::test_errors" }
        #expect(FailingTests.parse(Self.pytestSummary) == failed)
        #expect(FailingTests.passed(Self.pytestSummary) == Self.pytestPassed)
        // Only the short summary lines, as a caller keeping the end of the output would have them.
        let summary = Self.pytestSummary.split(separator: "\n").filter { $0.hasPrefix("FAILED ") || $0.hasPrefix("ERROR ") }
        #expect(FailingTests.parse(summary.joined(separator: "\n")) == failed)
        #expect(FailingTests.parse("FAILED tests/test_x.py::TestC::test_y - AssertionError: assert 'a' == 'b'") == ["tests/test_x.py::TestC::test_y"])
        #expect(FailingTests.parse("ERROR tests/test_x.py::test_z") == ["tests/test_x.py::test_z"])
        #expect(FailingTests.parse("tests/test_x.py::test_y FAILED") == ["tests/test_x.py::test_y"])
    }

    @Test func pytestCollectionErrorNamesTheModule() {
        #expect(FailingTests.parse(Self.pytestCollectionError) == ["tests/test_broken.py"])
        #expect(FailingTests.passed(Self.pytestCollectionError) == [])
    }

    @Test func pytestParametrizedIdsWithSpacesAndXdist() {
        let output = """
            FAILED tests/test_p.py::test_p[hello world-2] - assert False
            [gw1] [ 50%] FAILED tests/test_q.py::test_q
            [gw0] [100%] PASSED tests/test_q.py::test_r
            tests/test_p.py::test_p[a b] PASSED                                       [ 10%]
            """
        #expect(FailingTests.parse(output) == ["tests/test_p.py::test_p[hello world-2]", "tests/test_q.py::test_q"])
        #expect(FailingTests.passed(output) == ["tests/test_q.py::test_r", "tests/test_p.py::test_p[a b]"])
    }

    // The unittest samples ran tests/test_u2.py: TestD.test_doc (passes, has a docstring), test_docfail (fails,
    // docstring), test_sub (subtests i=1 and i=2 fail), test_skip, test_xfail (expected failure); and
    // tests/test_broken.py, which imports a module that does not exist.
    static let unittestFailed = ["test_broken", "tests.test_u2.TestD.test_docfail", "tests.test_u2.TestD.test_sub"]

    @Test func unittestPython311() {
        #expect(FailingTests.parse(Self.unittest311) == Self.unittestFailed)
        #expect(FailingTests.passed(Self.unittest311) == ["tests.test_u2.TestD.test_doc"])
    }

    @Test func unittestPython310NamesTheSame() {
        // "(tests.test_u2.TestD)" without the method: normalised to the same names as 3.11's.
        #expect(FailingTests.parse(Self.unittest310) == Self.unittestFailed)
        #expect(FailingTests.passed(Self.unittest310) == ["tests.test_u2.TestD.test_doc"])
        #expect(FailingTests.parse("FAIL: test_y (tests.test_x.TestC)") == FailingTests.parse("FAIL: test_y (tests.test_x.TestC.test_y)"))
        #expect(FailingTests.parse("ERROR: test_y (tests.test_x.TestC)") == ["tests.test_x.TestC.test_y"])
    }

    @Test func unittestVerboseCases() {
        #expect(FailingTests.parse(Self.unittestCases) == ["tests.test_x.TestU.test_error", "tests.test_x.TestU.test_fail"])
        #expect(FailingTests.passed(Self.unittestCases) == ["tests.test_x.TestU.test_pass"])
        // Python < 3.11 leaves a test with subtests open on its line: the status belongs to the last description.
        let joined = "test_sub (tests.t.C) ... test_pass (tests.t.C) ... ok\ntest_sub2 (tests.t.C) ... test_x (tests.t.C) ... expected failure"
        #expect(FailingTests.passed(joined) == ["tests.t.C.test_pass"])
        // A docstring line only counts right after its description line.
        #expect(FailingTests.passed("test_a (tests.t.C.test_a)\nsomething else\nDoc line. ... ok") == [])
    }

    @Test func unittestRealRun() throws {
        let source = """
            import unittest
            class T(unittest.TestCase):
                def test_a(self): pass
                def test_b(self): self.assertEqual(1, 2)
                def test_c(self): raise KeyError("k")

            """
        let run = try RealRun(files: ["tests/__init__.py": "", "tests/test_m.py": source],
                              command: ["python3", "-m", "unittest", "-v", "tests.test_m"])
        #expect(run.exitCode != 0)
        #expect(FailingTests.parse(run.output) == ["tests.test_m.T.test_c", "tests.test_m.T.test_b"])
        #expect(FailingTests.passed(run.output) == ["tests.test_m.T.test_a"])
    }

    @Test func goTest() {
        // The format of `go test -v` (go is not installed here: written from its documented output).
        let output = """
            === RUN   TestAdd
            --- PASS: TestAdd (0.00s)
            === RUN   TestDiv
                div_test.go:12: got 1, want 2
            --- FAIL: TestDiv (0.00s)
            === RUN   TestTable
            === RUN   TestTable/zero_case
            === RUN   TestTable/big
                table_test.go:20: overflow
            --- FAIL: TestTable (0.01s)
                --- PASS: TestTable/zero_case (0.00s)
                --- FAIL: TestTable/big (0.00s)
            FAIL
            FAIL\texample.com/calc\t0.012s
            FAIL
            """
        #expect(FailingTests.parse(output) == ["TestDiv", "TestTable", "TestTable/big"])
        #expect(FailingTests.passed(output) == ["TestAdd", "TestTable/zero_case"])
    }

    @Test func swiftXCTestAndSwiftTesting() {
        // XCTest on Linux names "Class.method"; swift-testing names the function or its display name.
        #expect(FailingTests.parse(Self.swift) == [
            "CalcTests.testBad", "plainBad()", #"a "quoted" display name fails"#, "param(_:)",
        ])
        #expect(FailingTests.passed(Self.swift) == ["CalcTests.testGood", "a display name passes", "plainGood()"])
        // XCTest on Darwin.
        let darwin = """
            Test Case '-[CalcTests.CalcTests testBad]' started.
            /tmp/T.swift:7: error: -[CalcTests.CalcTests testBad] : XCTAssertEqual failed: ("2") is not equal to ("3")
            Test Case '-[CalcTests.CalcTests testBad]' failed (0.001 seconds).
            Test Case '-[CalcTests.CalcTests testGood]' passed (0.000 seconds).
            """
        #expect(FailingTests.parse(darwin) == ["CalcTests.CalcTests.testBad"])
        #expect(FailingTests.passed(darwin) == ["CalcTests.CalcTests.testGood"])
        #expect(FailingTests.parse(#"✘ Test "name" failed"#) == ["name"])
        #expect(FailingTests.parse("✘ Test testY() recorded an issue at T.swift:3:5: Expectation failed") == ["testY()"])
    }

    @Test func linesThatNameNoTest() {
        let output = """
            FAILED (failures=1, errors=2)
            FAILED
            ERROR: Could not find a version that satisfies the requirement nope
            ERROR: test_a
            FAIL: test_a (not a dotted name)
            ERROR collecting tests/test_broken.py
            ERROR tests/notes.txt - not a test file
            --- FAIL: TestX
            --- FAIL: (0.00s)
            Test Case 'CalcTests.testBad' started at 2026-12-04 21:55:11.597
            Test Suite 'CalcTests' failed at 2026-12-04 21:55:11.698
            ✘ Test run with 5 tests in 0 suites failed after 0.001 seconds with 3 issues.
            ✘ Suite "Store contract" failed after 0.3 seconds with 2 issues.
            ✘ Test
            tests/test_x.py::test_y FAILED to start the server
            E       AssertionError: tests/test_x.py::test_y FAILED
            ==== 1 failed, 2 passed in 0.10s ====
            """
        #expect(FailingTests.parse(output) == [])
        #expect(FailingTests.passed(output + "\n✔ Test run with 5 tests in 2 suites passed after 0.1 seconds.\nOK") == [])
    }

    @Test func firstSeenOrderEachOnceAtMost200() {
        let output = "FAILED t.py::b\nFAILED t.py::a\nt.py::b FAILED\nFAIL: test_c (m.C.test_c)\nFAIL: test_c (m.C)\n--- FAIL: TestD (0.00s)\n"
        #expect(FailingTests.parse(output) == ["t.py::b", "t.py::a", "m.C.test_c", "TestD"])
        let many = (0..<500).map { "FAILED t.py::test_\($0) - x" }.joined(separator: "\n")
        let names = FailingTests.parse(many)
        #expect(names.count == 200)
        #expect(names == (0..<200).map { "t.py::test_\($0)" })
        let passes = (0..<500).map { "t.py::test_\($0) PASSED" }.joined(separator: "\n")
        #expect(FailingTests.passed(passes) == (0..<200).map { "t.py::test_\($0)" })
    }

    @Test func coloredAndCRLFOutput() {
        let colored = "\u{1B}[31mFAILED\u{1B}[0m tests/t.py::test_a - \u{1B}[31massert 1 == 2\u{1B}[0m\r\n"
            + "tests/t.py::test_b \u{1B}[32mPASSED\u{1B}[0m\u{1B}[32m                [ 50%]\u{1B}[0m\r\n"
        #expect(FailingTests.parse(colored) == ["tests/t.py::test_a"])
        #expect(FailingTests.passed(colored) == ["tests/t.py::test_b"])
    }

    @Test func longLinesAreSkipped() {
        let prefix = "FAILED tests/t.py::test_long - "
        let fits = prefix + String(repeating: "x", count: FailingTests.maxLineBytes - prefix.utf8.count)
        let over = prefix + String(repeating: "x", count: FailingTests.maxLineBytes - prefix.utf8.count + 1)
        #expect(FailingTests.parse(fits) == ["tests/t.py::test_long"])
        #expect(FailingTests.parse(over) == [])
        #expect(FailingTests.parse(over + "\nFAILED tests/t.py::test_next") == ["tests/t.py::test_next"])
        // Multi-byte characters count as their bytes.
        let wide = prefix + String(repeating: "é", count: FailingTests.maxLineBytes / 2)
        #expect(FailingTests.parse(wide) == [])
    }

    @Test func invalidUTF8() {
        var bytes = Array("FAILED tests/t.py::test_".utf8) + [0xFF, 0xC3] + Array(" - msg \u{1}\n".utf8)
        bytes += [0xE2, 0x9C] + Array(" Test x() failed\n".utf8)  // a cut "✘"
        bytes += Array("FAIL: test_a (m.C.test_a)\n".utf8) + [0x80, 0x80, 0x0A]
        let output = String(decoding: bytes, as: UTF8.self)
        #expect(FailingTests.parse(output) == ["tests/t.py::test_\u{FFFD}\u{FFFD}", "m.C.test_a"])
        #expect(FailingTests.passed(output) == [])
    }

    @Test func sixteenMegabytesAreReadWithinBounds() {
        // Just under 16 MiB, every line a result (the worst case: each line is parsed): all read, each name once.
        var output = ""
        output.reserveCapacity(FailingTests.maxScanBytes)
        var n = 0
        while output.utf8.count < FailingTests.maxScanBytes - 64 {
            output += "FAILED tests/test_big.py::test_\(n % 100) - AssertionError\n"
            n += 1
        }
        #expect(FailingTests.parse(output) == (0..<100).map { "tests/test_big.py::test_\($0)" })
        #expect(FailingTests.passed(output) == [])
        // 16 MiB on one line: skipped as a whole.
        let oneLine = String(repeating: "FAILED t.py::x ", count: FailingTests.maxScanBytes / 15)
        #expect(FailingTests.parse(oneLine) == [])
        // Over 16 MiB: the first and last 8 MiB are read (runners print results at the end), not the middle.
        let filler = String(repeating: "collecting ... not a result line\n", count: (FailingTests.maxScanBytes / 33) + 1000)
        let big = "FAILED t.py::first\n" + filler + "FAILED t.py::middle\n" + filler + "FAILED t.py::last\n"
        #expect(big.utf8.count > FailingTests.maxScanBytes)
        #expect(FailingTests.parse(big) == ["t.py::first", "t.py::last"])
    }
}
