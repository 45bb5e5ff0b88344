// PatchValidatorTests: hostile paths and size limits at N-1, N, N+1.

import Protocol
import Testing

@testable import Pipeline

@Suite struct PatchValidatorTests {
    func error(_ changes: [FileChange], _ limits: PatchLimits = PatchLimits()) -> String? {
        switch PatchValidator.validate(changes, limits: limits) {
        case .success: nil
        case .failure(let e): e.description
        }
    }

    func modify(_ path: String, _ content: String = "x") -> FileChange { FileChange(path: path, action: .modify, content: content) }

    @Test(arguments: [
        ("../../etc/passwd", "'..'"), ("/etc/passwd", "absolute"), ("a/../../x", "'..'"), (".git/config", ".git"),
        ("sub/.GIT/hooks/pre-commit", ".git"), ("a//b", "empty segment"), ("a/", "empty segment"), ("./a", "'.' segment"),
        ("a\\b", "backslash"), ("a\u{0}b", "control"), ("a\nb", "control"), ("", "empty path"), ("~/x", "absolute"),
    ])
    func hostilePaths(path: String, expected: String) {
        let message = error([modify(path)])
        #expect(message?.contains(expected) == true, "\(path): \(message ?? "accepted")")
    }

    @Test func cleanPathsPass() {
        #expect(error([modify("src/app.py"), modify(".github/workflows/ci.yml"), modify("a..b/c.txt"), modify(".gitignore")]) == nil)
    }

    @Test func errorNamesThePath() {
        #expect(error([modify("ok.txt"), modify("../../etc/passwd")]) == "path \"../../etc/passwd\" contains a '..' segment that could leave the repository")
    }

    @Test func hundredMegabyteContentIsRefused() {
        let huge = String(repeating: "a", count: 100 << 20)
        #expect(error([modify("big.bin", huge)]) == "content of \"big.bin\" is \(100 << 20) bytes; the limit is \(1 << 20)")
    }

    @Test func fileSizeLimitBoundaries() {
        let limits = PatchLimits(maxFileBytes: 10)
        #expect(error([modify("a", String(repeating: "x", count: 9))], limits) == nil)
        #expect(error([modify("a", String(repeating: "x", count: 10))], limits) == nil)
        #expect(error([modify("a", String(repeating: "x", count: 11))], limits) != nil)
    }

    @Test func totalAndCountLimits() {
        let limits = PatchLimits(maxFiles: 3, maxFileBytes: 10, maxTotalBytes: 20)
        #expect(error([modify("a", "0123456789"), modify("b", "0123456789")], limits) == nil)
        #expect(error([modify("a", "0123456789"), modify("b", "0123456789"), modify("c", "x")], limits)?.contains("total 21 bytes") == true)
        #expect(error((1...3).map { modify("f\($0)") }, limits) == nil)
        #expect(error((1...4).map { modify("f\($0)") }, limits) == "the patch changes 4 files; at most 3 are allowed")
        #expect(error([]) == "the patch changes no files")
    }

    @Test func contentRules() {
        #expect(error([FileChange(path: "a", action: .create)]) == "create of \"a\" has no content")
        #expect(error([FileChange(path: "a", action: .delete, content: "x")]) == "delete of \"a\" must not carry content")
        #expect(error([FileChange(path: "a", action: .delete)]) == nil)
        #expect(error([modify("a"), modify("a")]) == "path \"a\" appears more than once in the patch")
    }

    @Test func mergeBuildsFullPatches() {
        let base = [
            FileChange(path: "new.py", action: .create, content: "1"), FileChange(path: "old.py", action: .modify, content: "2"),
            FileChange(path: "gone.py", action: .delete),
        ]
        let fix = [
            FileChange(path: "new.py", action: .delete), FileChange(path: "old.py", action: .modify, content: "3"),
            FileChange(path: "gone.py", action: .create, content: "4"), FileChange(path: "extra.py", action: .create, content: "5"),
        ]
        #expect(FileChange.merge(base: base, fix: fix) == [
            FileChange(path: "old.py", action: .modify, content: "3"), FileChange(path: "gone.py", action: .modify, content: "4"),
            FileChange(path: "extra.py", action: .create, content: "5"),
        ])
    }
}
