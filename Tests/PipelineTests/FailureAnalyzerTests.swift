// FailureAnalyzerTests: the analyzer against real output of failing Python, Node and Swift programs, plus Go samples.

import Foundation
import TestSupport
import Glibc
import Protocol
import Testing

@testable import Pipeline

/// Runs a tiny program in a fresh temporary directory and captures its combined output, bounded to 60 s.
struct RealRun {
    let dir: String
    var output = ""
    var exitCode: Int32 = 0

    init(files: [String: String], command: [String]) throws {
        dir = "/tmp/pipe-analyzer-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, text) in files {
            let path = dir + "/" + name
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command.map { $0.replacingOccurrences(of: "$DIR", with: dir) }
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = (env["PATH"] ?? "") + ":/usr/bin:/usr/local/bin:/root/.pyenv/shims:/opt/swift/usr/bin"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let deadline = DispatchWorkItem { if process.isRunning { _ = Glibc.kill(process.processIdentifier, SIGKILL) } }  // SIGTERM may be blocked (inherited mask)
        DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: deadline)
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        let status = waitForExit(process)
        deadline.cancel()
        output = String(decoding: data, as: UTF8.self)
        exitCode = status
        try? FileManager.default.removeItem(atPath: dir)
    }

    func analyze(repositoryFiles: Set<String>? = nil) -> FailureAnalysis {
        FailureAnalyzer.analyze(
            output: output, exitCode: exitCode, timedOut: false, signal: nil, repositoryFiles: repositoryFiles,
            workspaceRoot: dir)
    }

    static func python(_ files: [String: String], run script: String) throws -> RealRun {
        try RealRun(files: files, command: ["python3", "$DIR/" + script])
    }

    static func node(_ files: [String: String], run script: String) throws -> RealRun {
        try RealRun(files: files, command: ["node", "$DIR/" + script])
    }
}

@Suite struct PythonFailureTests {
    @Test func moduleNotFound() throws {
        let run = try RealRun.python(["app.py": "import redis_not_installed_xyz\n"], run: "app.py")
        #expect(run.exitCode != 0)
        let a = run.analyze()
        #expect(a.category == .import)
        #expect(a.locations.first == SourceLocation(file: "app.py", line: 1))
        #expect(a.rootCause.contains("Python cannot import module 'redis_not_installed_xyz'"))
        #expect(a.rootCause.contains("ModuleNotFoundError: No module named 'redis_not_installed_xyz'"))
        #expect(a.messages == ["ModuleNotFoundError: No module named 'redis_not_installed_xyz'"])
    }

    @Test func syntaxErrorInImportedModule() throws {
        let run = try RealRun.python(["main.py": "import lib\n", "lib.py": "x = 1\ndef f(:\n    pass\n"], run: "main.py")
        let a = run.analyze()
        #expect(a.category == .syntax)
        #expect(a.locations.first == SourceLocation(file: "lib.py", line: 2))
        #expect(a.rootCause.hasPrefix("Python rejected invalid syntax at lib.py:2"))
    }

    @Test func indentationError() throws {
        let run = try RealRun.python(["app.py": "def f():\n    x = 1\n      y = 2\n"], run: "app.py")
        let a = run.analyze()
        #expect(a.category == .indentation)
        #expect(a.locations == [SourceLocation(file: "app.py", line: 3)])
        #expect(a.messages.first?.hasPrefix("IndentationError: unexpected indent") == true)
    }

    @Test func nameErrorPointsAtInnermostFrame() throws {
        let run = try RealRun.python(["app.py": "def g():\n    return undefined_thing + 1\n\ng()\n"], run: "app.py")
        let a = run.analyze()
        #expect(a.category == .undefinedName)
        #expect(a.locations == [SourceLocation(file: "app.py", line: 2), SourceLocation(file: "app.py", line: 4)])
        #expect(a.rootCause.contains("'undefined_thing'"))
    }

    @Test func typeErrorAndAttributeError() throws {
        let t = try RealRun.python(["app.py": "x = 'a' + 1\n"], run: "app.py").analyze()
        #expect(t.category == .type)
        let attr = try RealRun.python(["app.py": "None.upper()\n"], run: "app.py").analyze()
        #expect(attr.category == .type)
        #expect(attr.messages.first?.hasPrefix("AttributeError:") == true)
    }

    @Test func fileNotFound() throws {
        let a = try RealRun.python(["app.py": "open('config/missing.yaml')\n"], run: "app.py").analyze()
        #expect(a.category == .fileNotFound)
        #expect(a.rootCause.contains("'config/missing.yaml'"))
    }

    @Test func plainAssert() throws {
        let a = try RealRun.python(["t.py": "def test():\n    assert 1 + 1 == 3\n\ntest()\n"], run: "t.py").analyze()
        #expect(a.category == .assertion)
        #expect(a.locations.first == SourceLocation(file: "t.py", line: 2))
    }

    @Test func unittestFailureAndError() throws {
        let source = """
            import unittest
            class T(unittest.TestCase):
                def test_a(self):
                    self.assertEqual(1, 2)
                def test_b(self):
                    pass
                def test_c(self):
                    raise ValueError("boom")
            unittest.main()

            """
        let run = try RealRun.python(["test_t.py": source], run: "test_t.py")
        let a = run.analyze()
        #expect(a.category == .assertion)
        #expect(a.categories == [.assertion, .other])
        #expect(a.messages.contains("AssertionError: 1 != 2"))
        #expect(a.messages.contains("ValueError: boom"))
        #expect(a.locations.contains(SourceLocation(file: "test_t.py", line: 4)))
        let counts = TestSummaryParser.parse(run.output)
        #expect(counts.passed == 1 && counts.failed == 2)
    }

    @Test func repositoryFilesFilterAndMapAbsolutePaths() throws {
        let run = try RealRun.python(["src/app.py": "import helper\nhelper.go()\n", "src/helper.py": "def go():\n    return nope\n"], run: "src/app.py")
        // Without workspaceRoot, absolute paths map through repositoryFiles by longest suffix.
        let a = FailureAnalyzer.analyze(
            output: run.output, exitCode: run.exitCode, timedOut: false, signal: nil, repositoryFiles: ["src/helper.py"])
        #expect(a.locations == [SourceLocation(file: "src/helper.py", line: 2)])
        let none = FailureAnalyzer.analyze(output: run.output, exitCode: run.exitCode, timedOut: false, signal: nil, repositoryFiles: nil)
        #expect(none.locations.isEmpty)
    }
}

@Suite struct NodeFailureTests {
    @Test func referenceError() throws {
        let a = try RealRun.node(["index.js": "function f() { return notDefined + 1 }\nf()\n"], run: "index.js").analyze()
        #expect(a.category == .undefinedName)
        #expect(a.locations.first == SourceLocation(file: "index.js", line: 1))
        #expect(a.locations.contains(SourceLocation(file: "index.js", line: 2)))
        #expect(a.rootCause.contains("Node.js uses the undefined name 'notDefined'"))
    }

    @Test func cannotFindModule() throws {
        let a = try RealRun.node(["index.js": "require('left-pad-not-installed')\n"], run: "index.js").analyze()
        #expect(a.category == .import)
        #expect(a.rootCause.contains("'left-pad-not-installed'"))
        #expect(a.locations == [SourceLocation(file: "index.js", line: 1)])
    }

    @Test func assertionSyntaxTypeAndENOENT() throws {
        let asserted = try RealRun.node(["t.js": "require('assert').strictEqual(1, 2)\n"], run: "t.js").analyze()
        #expect(asserted.category == .assertion)
        let syntax = try RealRun.node(["t.js": "let x = ;\n"], run: "t.js").analyze()
        #expect(syntax.category == .syntax)
        #expect(syntax.locations.first == SourceLocation(file: "t.js", line: 1))
        let type = try RealRun.node(["t.js": "null.foo\n"], run: "t.js").analyze()
        #expect(type.category == .type)
        let missing = try RealRun.node(["t.js": "require('fs').readFileSync('nope.txt')\n"], run: "t.js").analyze()
        #expect(missing.category == .fileNotFound)
        #expect(missing.rootCause.contains("'nope.txt'"))
    }
}

@Suite struct CompiledLanguageFailureTests {
    @Test func realSwiftCompilerError() throws {
        let run = try RealRun(
            files: ["Sources/main.swift": "let a = 1\nlet b: Int = undefinedThing + a\n"],
            command: ["/opt/swift/usr/bin/swiftc", "-typecheck", "$DIR/Sources/main.swift"])
        #expect(run.exitCode != 0)
        let a = run.analyze()
        #expect(a.category == .undefinedName)
        #expect(a.locations.first == SourceLocation(file: "Sources/main.swift", line: 2))
        #expect(a.rootCause.contains("Swift uses the undefined name 'undefinedThing'"))
    }

    @Test func swiftCompilerSamples() {
        let output = """
            /w/Sources/App/Server.swift:1:8: error: no such module 'NIOCore'
            /w/Sources/App/Main.swift:10:20: error: cannot convert value of type 'String' to specified type 'Int'
            /w/Sources/App/Main.swift:14:5: error: expected expression after operator
            """
        let a = FailureAnalyzer.analyze(
            output: output, exitCode: 1, timedOut: false, signal: nil, repositoryFiles: nil, workspaceRoot: "/w")
        #expect(a.category == .syntax)
        #expect(a.categories == [.syntax, .import, .type])
        #expect(a.locations.first == SourceLocation(file: "Sources/App/Main.swift", line: 14))
        #expect(a.locations.count == 3)
        let imp = FailureAnalyzer.analyze(
            output: "/w/a.swift:1:8: error: no such module 'NIOCore'", exitCode: 1, timedOut: false, signal: nil, repositoryFiles: nil)
        #expect(imp.rootCause.hasPrefix("Swift cannot import module 'NIOCore'"))
    }

    @Test func swiftRuntimeTrapAndXCTest() {
        let trap = FailureAnalyzer.analyze(
            output: "Swift/ContiguousArrayBuffer.swift:600: Fatal error: Index out of range\n", exitCode: 0, timedOut: false,
            signal: 4, repositoryFiles: nil)
        #expect(trap.category == .crash)
        #expect(trap.locations.isEmpty)
        #expect(trap.rootCause.contains("SIGILL"))
        let xc = FailureAnalyzer.analyze(
            output: "Tests/AppTests/AppTests.swift:12: error: -[AppTests.AppTests testAdd] : XCTAssertEqual failed: (\"1\") is not equal to (\"2\")\nExecuted 3 tests, with 1 failure (0 unexpected) in 0.01 (0.01) seconds",
            exitCode: 1, timedOut: false, signal: nil, repositoryFiles: ["Tests/AppTests/AppTests.swift"])
        #expect(xc.category == .assertion)
        #expect(xc.locations == [SourceLocation(file: "Tests/AppTests/AppTests.swift", line: 12)])
    }

    @Test func goSamples() {
        let compile = """
            # example.com/app
            ./main.go:5:2: undefined: helper
            ./main.go:9:14: cannot use "x" (untyped string constant) as int value in assignment
            """
        let a = FailureAnalyzer.analyze(output: compile, exitCode: 1, timedOut: false, signal: nil, repositoryFiles: nil)
        #expect(a.category == .undefinedName)
        #expect(a.categories == [.undefinedName, .type])
        #expect(a.locations == [SourceLocation(file: "main.go", line: 5), SourceLocation(file: "main.go", line: 9)])
        #expect(a.rootCause.contains("Go uses the undefined name 'helper'"))

        let module = "main.go:3:8: no required module provides package github.com/redis/go-redis/v9; to add it:\n\tgo get github.com/redis/go-redis/v9"
        let m = FailureAnalyzer.analyze(output: module, exitCode: 1, timedOut: false, signal: nil, repositoryFiles: nil)
        #expect(m.category == .import)
        #expect(m.rootCause.contains("'github.com/redis/go-redis/v9'"))

        let syntax = FailureAnalyzer.analyze(
            output: "./main.go:7:1: syntax error: unexpected }", exitCode: 1, timedOut: false, signal: nil, repositoryFiles: nil)
        #expect(syntax.category == .syntax)

        let test = """
            === RUN   TestAdd
                math_test.go:12: Add(1, 2) = 4; want 3
            --- FAIL: TestAdd (0.00s)
            FAIL
            FAIL\texample.com/app\t0.002s
            """
        let t = FailureAnalyzer.analyze(output: test, exitCode: 1, timedOut: false, signal: nil, repositoryFiles: nil)
        #expect(t.category == .assertion)
        #expect(t.locations == [SourceLocation(file: "math_test.go", line: 12)])

        let panic = "panic: runtime error: index out of range [3] with length 3\n\ngoroutine 1 [running]:\nmain.main()\n\t/w/main.go:8 +0x1d\nexit status 2"
        let p = FailureAnalyzer.analyze(output: panic, exitCode: 2, timedOut: false, signal: nil, repositoryFiles: nil, workspaceRoot: "/w")
        #expect(p.category == .crash)
        #expect(p.locations == [SourceLocation(file: "main.go", line: 8)])
    }
}

@Suite struct AnalyzerEdgeTests {
    @Test func timeoutWinsOverEverything() {
        let a = FailureAnalyzer.analyze(
            output: "AssertionError: x\n", exitCode: 137, timedOut: true, signal: 9, repositoryFiles: nil)
        #expect(a.category == .timeout)
        #expect(a.categories == [.timeout, .assertion])
        #expect(a.rootCause == "The test run exceeded its time limit and was killed")
    }

    @Test func diskQuotaWinsOverTheKillItCaused() {
        let killed = FailureAnalyzer.analyze(
            output: "AssertionError: x\n[medic] disk quota exceeded: the workspace holds 3 bytes, the quota is 2: process tree killed\n",
            exitCode: 137, timedOut: false, signal: 9, repositoryFiles: nil, diskQuotaExceeded: true)
        #expect(killed.category == .diskQuota)
        #expect(killed.categories.first == .diskQuota && killed.categories.contains(.assertion))
        #expect(killed.rootCause == "The test run wrote more than its disk quota")
        let full = FailureAnalyzer.analyze(
            output: "OSError: [Errno 28] No space left on device: '/tmp/big'\n", exitCode: 1, timedOut: false, signal: nil, repositoryFiles: nil)
        #expect(full.category == .diskQuota)
        #expect(full.rootCause.contains("No space left on device"))
    }

    @Test func signalIsCrash() {
        let a = FailureAnalyzer.analyze(output: "", exitCode: 0, timedOut: false, signal: 11, repositoryFiles: nil)
        #expect(a.category == .crash)
        #expect(a.rootCause.contains("SIGSEGV"))
    }

    @Test func unknownOutputIsOther() {
        let a = FailureAnalyzer.analyze(output: "something went sideways\n", exitCode: 3, timedOut: false, signal: nil, repositoryFiles: nil)
        #expect(a.category == .other)
        #expect(a.rootCause.contains("exit code 3"))
        #expect(a.messages.isEmpty)
    }

    @Test func resultsAreBounded() {
        let output = (1...200).map { "./f\($0).go:\($0):1: undefined: v\($0)" }.joined(separator: "\n")
        let limits = AnalyzerLimits(maxLocations: 20, maxMessages: 5, maxMessageLength: 10)
        let a = FailureAnalyzer.analyze(output: output, exitCode: 1, timedOut: false, signal: nil, repositoryFiles: nil, limits: limits)
        #expect(a.locations.count == 20)
        #expect(a.messages.count == 5)
        #expect(a.messages.allSatisfy { $0.count == 11 })
    }

    /// Found by the `summary` fuzz target (Fuzz/corpus/summary/regress-max-messages-0): with `maxMessages: 0` the
    /// bound was checked after appending, so the signal's message was kept anyway.
    @Test func zeroLimitsKeepNothing() {
        let limits = AnalyzerLimits(maxLocations: 0, maxMessages: 0, maxMessageLength: 10)
        let crashed = FailureAnalyzer.analyze(output: "", exitCode: 1, timedOut: false, signal: 0, repositoryFiles: nil, limits: limits)
        #expect(crashed.category == .crash)
        #expect(crashed.messages.isEmpty)
        let output = "./a.go:3:1: undefined: v\n./b.go:4:1: undefined: w"
        let failed = FailureAnalyzer.analyze(output: output, exitCode: 1, timedOut: false, signal: nil, repositoryFiles: nil, limits: limits)
        #expect(failed.messages.isEmpty)
        #expect(failed.locations.isEmpty)
        #expect(failed.rootCause.contains("undefined"))
    }

    @Test func pathsOutsideRepositoryAreDropped() {
        let output = """
            Traceback (most recent call last):
              File "../outside.py", line 3, in <module>
              File "/usr/lib/python3.11/site-packages/x/y.py", line 9, in f
              File "<frozen importlib._bootstrap>", line 1, in g
            KeyError: 'k'
            """
        let a = FailureAnalyzer.analyze(output: output, exitCode: 1, timedOut: false, signal: nil, repositoryFiles: nil)
        #expect(a.locations.isEmpty)
        #expect(a.category == .other)
        #expect(a.messages == ["KeyError: 'k'"])
    }
}

@Suite struct TestRunnerOutputTests {
    @Test func pytestAssertion() {
        let output = """
            ============================= test session starts ==============================
            collected 2 items

            tests/test_math.py .F                                                    [100%]

            =================================== FAILURES ===================================
            ___________________________________ test_add ___________________________________

                def test_add():
            >       assert add(1, 2) == 4
            E       assert 3 == 4
            E        +  where 3 = add(1, 2)

            tests/test_math.py:5: AssertionError
            =========================== short test summary info ============================
            FAILED tests/test_math.py::test_add - assert 3 == 4
            ========================= 1 failed, 1 passed in 0.02s ==========================
            """
        let a = FailureAnalyzer.analyze(output: output, exitCode: 1, timedOut: false, signal: nil, repositoryFiles: nil)
        #expect(a.category == .assertion)
        #expect(a.messages == ["assert 3 == 4"])
        #expect(a.locations == [SourceLocation(file: "tests/test_math.py", line: 5)])
        #expect(a.rootCause == "A test assertion failed at tests/test_math.py:5 (assert 3 == 4)")
        let counts = TestSummaryParser.parse(output)
        #expect(counts.passed == 1 && counts.failed == 1)
    }

    @Test func pytestCollectionError() {
        let output = """
            ==================================== ERRORS ====================================
            _____________________ ERROR collecting tests/test_app.py ______________________
            ImportError while importing test module '/w/tests/test_app.py'.
            Hint: make sure your test modules/packages have valid Python names.
            Traceback:
            /usr/lib/python3.11/importlib/__init__.py:126: in import_module
                return _bootstrap._gcd_import(name[level:], package)
            tests/test_app.py:1: in <module>
                import redis
            E   ModuleNotFoundError: No module named 'redis'
            =========================== short test summary info ============================
            ERROR tests/test_app.py
            !!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
            =============================== 1 error in 0.05s ===============================
            """
        let a = FailureAnalyzer.analyze(output: output, exitCode: 2, timedOut: false, signal: nil, repositoryFiles: nil)
        #expect(a.category == .import)
        #expect(a.rootCause.hasPrefix("Python cannot import module 'redis'"))
        #expect(a.locations == [SourceLocation(file: "tests/test_app.py", line: 1)])
        #expect(TestSummaryParser.parse(output).failed == 1)
    }

    @Test func nodeTestRunnerRealFailure() throws {
        let source = """
            const test = require('node:test'); const assert = require('assert');
            test('a', () => assert.strictEqual(1, 1));
            test('b', () => assert.strictEqual(1, 2));

            """
        let run = try RealRun(files: ["a.test.js": source], command: ["node", "--test", "$DIR/a.test.js"])
        let a = run.analyze()
        #expect(a.category == .assertion)
        #expect(a.categories == [.assertion])
        #expect(a.locations.first == SourceLocation(file: "a.test.js", line: 3))
    }

    @Test func swiftTestingIssue() {
        let output = "✘ Test add() recorded an issue at MathTests.swift:5:5: Expectation failed: 1 + 1 == 3\n✘ Test run with 1 test in 0 suites failed after 0.001 seconds with 1 issue."
        let a = FailureAnalyzer.analyze(output: output, exitCode: 1, timedOut: false, signal: nil, repositoryFiles: nil)
        #expect(a.category == .assertion)
        #expect(a.locations == [SourceLocation(file: "MathTests.swift", line: 5)])
    }
}

@Suite struct JavaScriptSampleTests {
    @Test func jestExpectation() {
        let output = """
            FAIL src/math.test.js
              ● math › adds

                expect(received).toBe(expected) // Object.is equality

                Expected: 4
                Received: 3

                  at Object.<anonymous> (src/math.test.js:5:20)

            Tests:       1 failed, 2 passed, 3 total
            """
        let a = FailureAnalyzer.analyze(output: output, exitCode: 1, timedOut: false, signal: nil, repositoryFiles: ["src/math.test.js"])
        #expect(a.category == .assertion)
        #expect(a.locations == [SourceLocation(file: "src/math.test.js", line: 5)])
    }

    @Test func esmPackageNotFound() throws {
        let run = try RealRun.node(["main.mjs": "import x from 'no-such-package-xyz';\nconsole.log(x);\n"], run: "main.mjs")
        let a = run.analyze()
        #expect(a.category == .import)
        #expect(a.rootCause.contains("'no-such-package-xyz'"))
    }
}
