// CodeIndexer: builds and refreshes a repository's code index — walk the tree, hash each file, and for the
// files whose hash changed run Universal Ctags, read docs and imports, and store their rows and search
// documents; files that disappeared leave the index. Runs on its own thread (the loop never waits for a
// walk, a ctags run or a store batch); progress and the result come back through the loop's handle.
import Dispatch
public import EventLoop
import Foundation
public import Navigator
public import Sandbox
public import Store

/// Progress of one indexing run.
public struct IndexProgress: Sendable, Equatable {
    public var repo: String
    /// "scanning", "indexing", "done".
    public var phase: String
    public var done: Int
    public var total: Int
}

/// What one run did.
public struct IndexOutcome: Sendable, Equatable {
    public var state: CodeIndexState
    public var changed: Int
    public var removed: Int
    public var unchanged: Int
    public var skipped: Int
    public var milliseconds: Int
}

public struct IndexerError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
}

/// Indexes repositories one run at a time per repository, each on a background queue.
public final class CodeIndexer {
    private let store: Store
    private let loop: EventLoop
    private let rules: IndexRules
    private let ctags: String?
    private let queue = DispatchQueue(label: "medic.code-indexer")
    /// Repositories with a run in flight, and whether another was asked for meanwhile.
    private var running: [String: Bool] = [:]

    /// The message when Universal Ctags is missing (also a startup error when repositories are configured).
    public static let ctagsMissing = "Universal Ctags is not installed: the code index needs it (Debian package universal-ctags; scripts/deps.sh installs it)"

    public init(store: Store, loop: EventLoop, rules: IndexRules = IndexRules(), ctagsExecutable: String? = ExecutableLocator.find("ctags")) {
        self.store = store
        self.loop = loop
        self.rules = rules
        self.ctags = ctagsExecutable
    }

    public var hasCtags: Bool { ctags != nil }

    /// Brings `repo`'s index up to date with its working tree. A run asked for while one is in flight is done
    /// once more after it (the tree may have moved again). Callbacks run on the loop thread.
    public func index(
        repo: RepositoryConfig, progress: @escaping (IndexProgress) -> Void = { _ in },
        completion: @escaping (Result<IndexOutcome, IndexerError>) -> Void
    ) {
        if running[repo.name] != nil {
            running[repo.name] = true
            return
        }
        running[repo.name] = false
        let boundProgress = LoopBound(progress, loop: loop)
        // What happens on the loop when the run ends; the queue's closure holds it only through LoopBound.
        let finish = LoopBound<(Result<IndexOutcome, IndexerError>) -> Void>({ [weak self] result in
            completion(result)
            guard let self else { return }
            let again = self.running.removeValue(forKey: repo.name) ?? false
            if again { self.index(repo: repo, progress: progress, completion: { _ in }) }
        }, loop: loop)
        let work = IndexRun(repo: repo.name, root: repo.path, store: store, rules: rules, ctags: ctags)
        queue.async {
            let result = work.run { report in boundProgress.hop { $0(report) } }
            finish.hop { $0(result) }
        }
    }
}

/// One run's blocking work (on the indexer's queue). `Sendable`: only immutable values and the thread-safe
/// `Store` (its worker serialises access; `sync` waits for it from this thread).
struct IndexRun: Sendable {
    var repo: String
    var root: String
    var store: Store
    var rules: IndexRules
    var ctags: String?
    var batchSize = 400

    func run(progress: @Sendable (IndexProgress) -> Void) -> Result<IndexOutcome, IndexerError> {
        let started = monotonicNanoseconds()
        guard let ctags else { return .failure(IndexerError(description: CodeIndexer.ctagsMissing)) }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            return .failure(IndexerError(description: "repository \(repo): \(root) is not a directory"))
        }
        progress(IndexProgress(repo: repo, phase: "scanning", done: 0, total: 0))
        let previous: [String: CodeFileRow]
        do {
            previous = Dictionary(try store.sync { store.codeFiles(repo: repo, completion: $0) }.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        } catch {
            return .failure(IndexerError(description: "reading the index of \(repo) failed: \(error)"))
        }
        // Pass 1: which files are indexable, and which changed. Same size and mtime as indexed: unchanged,
        // not read. Otherwise read and hashed, then dropped (pass 2 reads a batch at a time: memory stays
        // bounded by a batch, not the tree).
        let walk = listRepositoryFiles(root: root, skip: rules.skippedDirectories)
        var listed: [String: ListedFile] = [:]
        var changed: [String] = []
        var skipped = 0
        for file in walk.files {
            if let old = previous[file.path], old.size == file.size, old.mtime == file.mtime, old.mtime != 0 {
                listed[file.path] = file
                continue
            }
            guard let bytes = indexableBytes(file) else { skipped += 1; continue }
            listed[file.path] = file
            if previous[file.path]?.hash != sha256Hex(bytes: bytes) { changed.append(file.path) }
        }
        let allFiles = Set(listed.keys)
        let removed = previous.keys.filter { !allFiles.contains($0) }.sorted()
        let goModule = allFiles.contains("go.mod")
            ? readWorkspaceFile("go.mod", in: root, maxBytes: 65536).bytes.flatMap { Imports.goModule(String(decoding: $0, as: UTF8.self)) } : nil
        let commit = headCommit()
        var done = 0
        var state: CodeIndexState?
        var batches = stride(from: 0, to: changed.count, by: batchSize).map { Array(changed[$0..<min($0 + batchSize, changed.count)]) }
        if batches.isEmpty { batches = [[]] }
        for (index, batch) in batches.enumerated() {
            progress(IndexProgress(repo: repo, phase: "indexing", done: done, total: changed.count))
            // Read again (it may have changed since pass 1: what is stored is what was indexed).
            var contents: [String: [UInt8]] = [:]
            for path in batch { contents[path] = listed[path].flatMap(indexableBytes) ?? [] }
            let symbols = runCtags(ctags, paths: batch)
            let files = batch.map { path in
                indexedFile(
                    path: path, bytes: contents[path]!, mtime: listed[path]?.mtime ?? 0, ctagsSymbols: symbols[path] ?? [], files: allFiles,
                    goModule: goModule)
            }
            let last = index == batches.count - 1
            do {
                state = try store.sync {
                    store.updateCodeIndex(
                        repo: repo, files: files, removed: last ? removed : [], commit: last ? .some(commit) : nil,
                        now: wallClockMilliseconds(), completion: $0)
                }
            } catch {
                return .failure(IndexerError(description: "storing the index of \(repo) failed: \(error)"))
            }
            done += batch.count
        }
        progress(IndexProgress(repo: repo, phase: "done", done: changed.count, total: changed.count))
        let elapsed = Int((monotonicNanoseconds() - started) / 1_000_000)
        return .success(IndexOutcome(
            state: state!, changed: changed.count, removed: removed.count, unchanged: allFiles.count - changed.count, skipped: skipped,
            milliseconds: elapsed))
    }

    /// The rows and search documents of one file.
    /// A file's bytes if the index takes it: within the size limit, not generated, binary or minified.
    func indexableBytes(_ file: ListedFile) -> [UInt8]? {
        let name = file.path.split(separator: "/").last.map(String.init) ?? file.path
        guard file.size <= rules.maxFileBytes, !IndexRules.isGenerated(name) else { return nil }
        guard case .file(let bytes, let size) = readWorkspaceFile(file.path, in: root, maxBytes: rules.maxFileBytes), size <= rules.maxFileBytes else {
            return nil
        }
        return IndexRules.looksBinary(bytes) || IndexRules.looksMinified(bytes) ? nil : bytes
    }

    func indexedFile(path: String, bytes: [UInt8], mtime: Int64, ctagsSymbols: [CodeSymbol], files: Set<String>, goModule: String?) -> IndexedFile {
        // Invalid UTF-8 is replaced (U+FFFD), never refused: the file is still found by its path and symbols.
        let text = String(decoding: bytes, as: UTF8.self)
        let language = Language.of(path: path)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var symbols = ctagsSymbols
        if language == .swift && symbols.isEmpty { symbols = SwiftSymbols.parse(text) }
        symbols = Array(symbols.prefix(5000))
        for i in symbols.indices { symbols[i].doc = SymbolDocs.doc(for: symbols[i], lines: lines, language: language) }
        let imports = Imports.parse(text, language: language).map {
            CodeImportRow(path: path, module: $0.module, resolved: Imports.resolve($0, from: path, language: language, files: files, goModule: goModule), line: $0.line)
        }
        let pathTerms = Terms.split(path).joined(separator: " ")
        let fileName = path.split(separator: "/").last.map(String.init) ?? path
        // A file's own document: its name, the names it defines, and its leading comment or docstring.
        let header = SymbolDocs.doc(for: CodeSymbol(name: fileName, kind: "file", line: 1), lines: [""] + lines, language: language) ?? ""
        let defined = symbols.prefix(200).map { Terms.document(identifier: $0.name) }.joined(separator: " ")
        var docs = [CodeDocRow(
            kind: "file", name: fileName, line: 1, nameTerms: Terms.split(fileName).joined(separator: " "), pathTerms: pathTerms,
            docTerms: String((header + " " + defined).prefix(4000)))]
        docs += symbols.map { symbol in
            let scope = symbol.scope.map { Terms.document(identifier: $0) } ?? ""
            return CodeDocRow(
                kind: symbol.kind, name: symbol.name, line: symbol.line, nameTerms: Terms.document(identifier: symbol.name), pathTerms: pathTerms,
                docTerms: String([scope, symbol.signature ?? "", symbol.doc ?? ""].filter { !$0.isEmpty }.joined(separator: " ").prefix(1000)))
        }
        return IndexedFile(
            file: CodeFileRow(path: path, language: language.rawValue, size: bytes.count, hash: sha256Hex(bytes: bytes), lines: lines.count, mtime: mtime),
            symbols: symbols.map {
                CodeSymbolRow(path: path, name: $0.name, kind: $0.kind, scope: $0.scope, signature: $0.signature, line: $0.line, endLine: $0.endLine, doc: $0.doc)
            },
            imports: imports, docs: docs)
    }

    /// ctags over `paths` (run in the root, the list and output in temporary files: no pipe to fill).
    func runCtags(_ executable: String, paths: [String]) -> [String: [CodeSymbol]] {
        guard !paths.isEmpty else { return [:] }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-ctags-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let list = directory.appendingPathComponent("files")
            let output = directory.appendingPathComponent("tags.json")
            try paths.joined(separator: "\n").appending("\n").write(to: list, atomically: false, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.currentDirectoryURL = URL(fileURLWithPath: root)
            process.arguments = ["--output-format=json", "--fields=+nKSel", "--fields=-P", "-f", output.path, "-L", list.path]
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            let json = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            return Ctags.parse(json, paths: Set(paths))
        } catch {
            return [:]
        }
    }

    /// The commit the tree is at (nil: not a git repository).
    func headCommit() -> String? {
        guard let git = ExecutableLocator.find("git") else { return nil }
        let process = Process()
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: git)
        process.arguments = ["-C", root, "rev-parse", "--verify", "-q", "HEAD"]
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return process.terminationStatus == 0 && text.count == 40 ? text : nil
    }
}

extension WorkspaceFileRead {
    var bytes: [UInt8]? { if case .file(let bytes, _) = self { bytes } else { nil } }
}
