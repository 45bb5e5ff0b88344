// NavigatorTests: the navigator's pure parts — terms, ctags output, Swift symbols, docs, imports and their
// resolution, stack frames, ranking and the file checks — including hostile input.
import Navigator
import Testing

@Suite struct TermsTests {
    @Test func identifiersSplitAtCaseAndSeparators() {
        #expect(Terms.split("validatePassword") == ["validate", "password"])
        #expect(Terms.split("validate_password") == ["validate", "password"])
        #expect(Terms.split("HTTPServer.handleRequest") == ["http", "server", "handle", "request"])
        #expect(Terms.split("app/auth/login.py:45") == ["app", "auth", "login", "py", "45"])
        #expect(Terms.split("base64Encode utf8") == ["base64", "encode", "utf8"])
        #expect(Terms.document(identifier: "validate_password") == "validate password validatepassword")
        #expect(Terms.document(identifier: "login") == "login")
    }

    @Test func questionsLoseTheirNoise() {
        #expect(Terms.query("Where is the password validation logic?") == ["password", "validation"])
        #expect(Terms.query("") == [])
        #expect(Terms.query("HTTP/2 connection") == ["http", "http2", "connection"])
        #expect(Terms.query(String(repeating: "päss wörd ", count: 10_000)).count == 2)
        #expect(Terms.query((0..<100).map { "term\($0)x" }.joined(separator: " ")).count == 24)
        // Nothing that is not a letter or a digit survives (no FTS or tsquery syntax from a user).
        #expect(Terms.query("\"a\" OR b* NEAR(c) | !d & e:f").allSatisfy { $0.allSatisfy { $0.isLetter || $0.isNumber } })
    }
}

@Suite struct SymbolTests {
    @Test func ctagsJSONLinesBecomeSymbolsOfKnownPathsOnly() {
        let output = """
            {"_type": "ptag", "name": "JSON_OUTPUT_VERSION"}
            {"_type": "tag", "name": "Auth", "path": "auth.py", "language": "Python", "line": 4, "kind": "class", "end": 8}
            {"_type": "tag", "name": "validate_password", "path": "auth.py", "line": 6, "kind": "member", "signature": "(self, pw)", "scope": "Auth", "scopeKind": "class", "end": 8}
            {"_type": "tag", "name": "evil", "path": "/etc/passwd", "line": 1, "kind": "function"}
            {not json
            {"_type": "tag", "name": "x", "path": "auth.py", "line": -3, "kind": "function"}
            """
        let symbols = Ctags.parse(output, paths: ["auth.py"])
        #expect(symbols.keys.sorted() == ["auth.py"])
        #expect(symbols["auth.py"]?.map(\.name) == ["Auth", "validate_password"])
        #expect(symbols["auth.py"]?[1] == CodeSymbol(name: "validate_password", kind: "member", scope: "Auth", signature: "(self, pw)", line: 6, endLine: 8))
    }

    @Test func swiftDeclarationsWithScopes() {
        let text = """
            import Foundation
            /// Greets people.
            public struct Greeter {
                @discardableResult
                public static func greet(name: String) -> String {
                    return "hi"
                }
                init() {}
            }
            private final class Cache<Key: Hashable> {}
            func topLevel() {}
            // func commented() {}
            """
        let symbols = SwiftSymbols.parse(text)
        #expect(symbols.map(\.name) == ["Greeter", "greet", "init", "Cache", "topLevel"])
        #expect(symbols.map(\.scope) == [nil, "Greeter", "Greeter", nil, nil])
        #expect(symbols[1].signature == "(name: String) -> String")
        #expect(SymbolDocs.doc(for: symbols[0], lines: text.split(separator: "\n", omittingEmptySubsequences: false), language: .swift) == "Greets people.")
    }

    @Test func pythonDocstringsAndCommentsAbove() {
        let text = "class Auth:\n    \"\"\"Checks passwords\n    against the hash.\"\"\"\n    # compares in constant time\n    def check(self):\n        pass\n"
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(SymbolDocs.doc(for: CodeSymbol(name: "Auth", kind: "class", line: 1), lines: lines, language: .python) == "Checks passwords against the hash.")
        #expect(SymbolDocs.doc(for: CodeSymbol(name: "check", kind: "member", line: 5), lines: lines, language: .python) == "compares in constant time")
        #expect(SymbolDocs.doc(for: CodeSymbol(name: "nowhere", kind: "member", line: 99), lines: lines, language: .python) == nil)
    }
}

@Suite struct ImportTests {
    let files: Set<String> = [
        "app/__init__.py", "app/auth/__init__.py", "app/auth/login.py", "app/util.py", "web/src/api.ts", "web/src/lib/index.ts",
        "Sources/Store/Store.swift", "pkg/db/db.go", "main.go",
    ]

    @Test func pythonImportsResolveToModules() {
        let text = "import os, app.util\nfrom .util import helper as h\nfrom app.auth import login\nfrom . import *\n"
        let refs = Imports.parse(text, language: .python)
        #expect(refs.map(\.module) == ["os", "app.util", ".util.helper", ".util", "app.auth.login", "app.auth"])
        let resolved = refs.map { Imports.resolve($0, from: "app/auth/login.py", language: .python, files: files) }
        #expect(resolved == [nil, "app/util.py", nil, nil, "app/auth/login.py", "app/auth/__init__.py"])
        #expect(Imports.resolve(ImportRef(module: "..util", line: 1), from: "app/auth/login.py", language: .python, files: files) == "app/util.py")
    }

    @Test func javascriptSwiftAndGo() {
        let js = "import { get } from './lib'\nconst x = require(\"../secret\")\nimport 'react'\n// import './commented'\nexport * from './lib/index'\n"
        let refs = Imports.parse(js, language: .typescript)
        #expect(refs.map(\.module) == ["./lib", "../secret", "react", "./lib/index"])
        #expect(refs.map { Imports.resolve($0, from: "web/src/api.ts", language: .typescript, files: files) } == ["web/src/lib/index.ts", nil, nil, "web/src/lib/index.ts"])
        // Climbing out of the repository resolves to nothing.
        #expect(Imports.resolve(ImportRef(module: "../../../../etc/passwd", line: 1), from: "web/src/api.ts", language: .javascript, files: files) == nil)
        let swift = Imports.parse("@testable import Store\nimport struct Foundation.Date\npublic import Protocol\n", language: .swift)
        #expect(swift.map(\.module) == ["Store", "Foundation", "Protocol"])
        #expect(Imports.resolve(swift[0], from: "Tests/X.swift", language: .swift, files: files) == "Sources/Store/")
        let go = Imports.parse("import (\n  \"fmt\"\n  db \"example.com/m/pkg/db\"\n)\nimport \"example.com/m\"\n", language: .go)
        #expect(go.map(\.module) == ["fmt", "example.com/m/pkg/db", "example.com/m"])
        #expect(go.map { Imports.resolve($0, from: "main.go", language: .go, files: files, goModule: "example.com/m") } == [nil, "pkg/db/", ""])
        #expect(Imports.goModule("module example.com/m\n\ngo 1.22\n") == "example.com/m")
    }
}

@Suite struct StackFrameTests {
    let files: Set<String> = ["app/auth/login.py", "src/server.js", "Sources/App/main.swift", "cmd/api/main.go"]

    @Test func framesOfEveryFormatNameRepositoryFiles() {
        let trace = """
            Traceback (most recent call last):
              File "/srv/app/auth/login.py", line 45, in check_password
                return hmac.compare(a, b)
              File "/usr/lib/python3.11/hmac.py", line 12, in compare
            TypeError: bad
                at Server.handle (/opt/svc/src/server.js:120:17)
            Fatal error: Sources/App/main.swift:7: boom
            goroutine 1 [running]:
            main.main()
            \t/home/ci/cmd/api/main.go:33 +0x1d
            """
        let refs = StackFrames.references(in: trace, files: files)
        #expect(refs.map(\.path) == ["app/auth/login.py", "src/server.js", "Sources/App/main.swift", "cmd/api/main.go"])
        #expect(refs.map(\.line) == [45, 120, 7, 33])
        #expect(refs[0].function == "check_password")
    }

    @Test func hostileTextIsBounded() {
        let long = String(repeating: "a:1 ", count: 200_000)
        #expect(StackFrames.references(in: long, files: files).isEmpty)
        #expect(StackFrames.references(in: "\u{0}\u{FFFF}::::.:", files: files).isEmpty)
    }
}

@Suite struct RankingTests {
    @Test func textRankKindAndCentralityBlendWithReasons() {
        let candidates = [
            SearchCandidate(path: "auth/login.py", kind: "function", name: "validate_password", line: 10, textRank: 8,
                            nameTerms: "validate password validatepassword", pathTerms: "auth login py", docTerms: "checks the password hash"),
            SearchCandidate(path: "docs/notes.md", kind: "file", name: "notes.md", line: 1, textRank: 9,
                            nameTerms: "notes md", pathTerms: "docs notes md", docTerms: "password"),
            SearchCandidate(path: "auth/login.py", kind: "variable", name: "PASSWORD_MIN", line: 3, textRank: 7,
                            nameTerms: "password min", pathTerms: "auth login py", docTerms: ""),
        ]
        let hits = Ranking.rank(candidates, terms: ["password", "validation"], importers: ["auth/login.py": 12], limit: 10)
        #expect(hits.first?.symbol == "validate_password")
        #expect(hits.first?.why == ["password: name", "validation: name"])
        #expect(hits.map(\.path).contains("docs/notes.md"))
        #expect(Ranking.rank(candidates, terms: ["password"], importers: [:], limit: 10, perFile: 1).count == 2)
        #expect(Ranking.rank([], terms: ["x"], importers: [:], limit: 10).isEmpty)
    }
}

@Suite struct FileAnalysisTests {
    @Test func findingsWithLinesAndSeverities() {
        let text = """
            import subprocess
            API_KEY = "sk-ant-abcdefghijklmnop"
            def run(name):
                # TODO: validate name
                subprocess.call(f"ls {name}", shell=True)
                cursor.execute("SELECT * FROM users WHERE name = '" + name + "'")
                try:
                    pass
                except:
                    pass
            password = "hunter22hunter22"
            """
        let findings = FileAnalysis.analyze(text, language: .python, symbols: [CodeSymbol(name: "run", kind: "function", line: 3, endLine: 300)])
        let kinds = findings.map { "\($0.line):\($0.kind)" }
        #expect(kinds == ["2:secret_literal", "3:long_function", "4:todo", "5:shell_interpolation", "6:sql_string", "9:broad_except", "11:secret_literal"])
        #expect(findings.first { $0.kind == "sql_string" }?.severity == .high)
        #expect(!findings.contains { $0.message.contains("hunter22hunter22") })  // secrets are never echoed whole
    }
}

@Suite struct IndexRuleTests {
    @Test func binariesMinifiedAndGeneratedFilesAreRecognised() {
        #expect(IndexRules.looksBinary([0x7f, 0x45, 0x4c, 0x46, 0x00]))
        #expect(!IndexRules.looksBinary(Array("plain text\n".utf8)))
        #expect(IndexRules.looksMinified(Array(String(repeating: "a", count: 70_000).utf8)))
        #expect(!IndexRules.looksMinified(Array(String(repeating: "line of code\n", count: 6000).utf8)))
        #expect(IndexRules.isGenerated("bundle.min.js") && IndexRules.isGenerated("package-lock.json") && !IndexRules.isGenerated("app.js"))
        #expect(Language.of(path: "a/b/c.tsx") == .typescript && Language.of(path: "x.PY") == .python && Language.of(path: "Makefile") == .other)
    }
}
