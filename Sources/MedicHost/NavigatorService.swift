// NavigatorService: the codebase navigator's queries over the index — find (description → ranked symbols and
// files, with why), locate (bug text and stack traces → files), related (imports and importers, 2 hops),
// outline (a file's symbols) and analyze (a file's findings). Loop-bound; the store answers on its worker and
// file reads happen off the loop.
import Dispatch
public import EventLoop
import Foundation
public import Logging
public import Navigator
public import Protocol
import Sandbox
public import Store

/// What the navigator may be asked, and its bounds.
public enum NavigatorMode: String, Sendable, CaseIterable {
    case find, locate, related, outline, analyze
}

public final class NavigatorService {
    let store: Store
    let loop: EventLoop
    let indexer: CodeIndexer
    let logger: Logger
    private var repositories: [String: RepositoryConfig]
    /// Per repository: its files and import graph, rebuilt after each index run.
    private var graphs: [String: ImportGraph] = [:]
    private var graphLoads: [String: [(ImportGraph?) -> Void]] = [:]
    /// Called with every progress report (the host publishes `index_progress`).
    public var onProgress: (IndexProgress) -> Void = { _ in }
    /// Called after each completed run.
    public var onIndexed: (Result<IndexOutcome, IndexerError>, String) -> Void = { _, _ in }

    /// Longest question or trace accepted (a pasted log fits; 100 KB does not).
    public static let maxQueryBytes = 64 << 10
    public static let maxLimit = 100

    public init(store: Store, loop: EventLoop, repositories: [RepositoryConfig], indexer: CodeIndexer, logger: Logger) {
        self.store = store
        self.loop = loop
        self.indexer = indexer
        self.logger = logger
        self.repositories = Dictionary(repositories.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// (Re-)indexes a repository: incremental (only files whose hash changed).
    public func index(repo name: String, completion: @escaping (Result<IndexOutcome, IndexerError>) -> Void = { _ in }) {
        guard let repo = repositories[name] else { return completion(.failure(IndexerError(description: "unknown repository '\(name)'"))) }
        indexer.index(repo: repo, progress: { [weak self] in self?.onProgress($0) }) { [weak self] result in
            guard let self else { return }
            self.graphs[name] = nil
            switch result {
            case .success(let outcome):
                self.logger.info(
                    "indexed \(name) at \(outcome.state.commit?.prefix(12) ?? "-"): \(outcome.changed) changed, \(outcome.removed) removed, \(outcome.unchanged) unchanged, \(outcome.skipped) skipped in \(outcome.milliseconds) ms")
            case .failure(let error):
                self.logger.error("indexing \(name) failed: \(error)")
            }
            self.onIndexed(result, name)
            completion(result)
        }
    }

    /// The configured repositories' names.
    public var repositoryNames: [String] { repositories.keys.sorted() }

    public func indexAll() {
        for name in repositories.keys.sorted() { index(repo: name) }
    }

    /// One query. Answers `{repo, commit, mode, results: [...]}` or a refusal with a clear message.
    public func search(repo name: String, mode: NavigatorMode, query: String, limit: Int?, reply: @escaping (Result<JSONValue, ProtocolError>) -> Void) {
        guard let repo = repositories[name] else {
            let known = repositories.keys.sorted().joined(separator: ", ")
            return reply(.failure(ProtocolError(code: .notFound, message: "unknown repository '\(name)'; configured: \(known)")))
        }
        let trimmed = query.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return reply(.failure(ProtocolError(code: .invalidMessage, message: "query is empty"))) }
        guard query.utf8.count <= Self.maxQueryBytes else {
            return reply(.failure(ProtocolError(code: .tooLarge, message: "query is \(query.utf8.count) bytes; at most \(Self.maxQueryBytes)")))
        }
        let limit = max(1, min(limit ?? 10, Self.maxLimit))
        graph(name) { [weak self] graph in
            guard let self else { return }
            guard let graph else {
                return reply(.failure(ProtocolError(code: .storeUnavailable, message: "the index of \(name) could not be read")))
            }
            let answer: (Result<[JSONValue], ProtocolError>) -> Void = { result in
                reply(result.map { results in
                    .object([
                        "repo": .string(name), "commit": graph.commit.map { .string($0) } ?? .null, "indexed_files": .int(Int64(graph.files.count)),
                        "mode": .string(mode.rawValue), "results": .array(results),
                    ])
                })
            }
            switch mode {
            case .find: self.find(name, trimmed, limit, graph, answer)
            case .locate: self.locate(name, query, limit, graph, answer)
            case .related: self.related(trimmed, limit, graph, answer)
            case .outline: self.outline(name, trimmed, graph, answer)
            case .analyze: self.analyze(repo, trimmed, graph, answer)
            }
        }
    }

    /// An indexed file's text for the page's code view: only paths the index holds (nothing else in or out
    /// of the tree can be named), read without following links, at most 1 MiB, off the loop.
    public func file(repo name: String, path: String, reply: @escaping (Result<JSONValue, ProtocolError>) -> Void) {
        guard let repo = repositories[name] else { return reply(.failure(ProtocolError(code: .notFound, message: "unknown repository '\(name)'"))) }
        graph(name) { [loop] graph in
            guard let graph, graph.files.contains(path) else {
                return reply(.failure(ProtocolError(code: .notFound, message: "\(path.prefix(300)) is not an indexed file")))
            }
            let bound = LoopBound(reply, loop: loop)
            let root = repo.path
            DispatchQueue.global().async {
                let read = readWorkspaceFile(path, in: root, maxBytes: 1 << 20)
                let result: Result<JSONValue, ProtocolError>
                if case .file(let bytes, let size) = read {
                    result = .success(.object([
                        "repo": .string(name), "commit": graph.commit.map { .string($0) } ?? .null, "path": .string(path),
                        "size": .int(Int64(size)), "truncated": .bool(bytes.count < size), "text": .string(String(decoding: bytes, as: UTF8.self)),
                    ]))
                } else {
                    result = .failure(ProtocolError(code: .notFound, message: read.unreadableNote(path) ?? "\(path) is gone since it was indexed"))
                }
                bound.hop { $0(result) }
            }
        }
    }

    /// The paths `locate` ranks for `evidence` (failure text, stack traces), best first; empty on any error.
    public func locatePaths(repo: String, evidence: String, limit: Int, _ done: @escaping ([String]) -> Void) {
        guard !evidence.isEmpty else { return done([]) }
        search(repo: repo, mode: .locate, query: String(evidence.utf8.prefix(Self.maxQueryBytes - 4)) ?? "", limit: limit) { result in
            done(((try? result.get())?["results"]?.arrayValue ?? []).compactMap { $0["path"]?.stringValue })
        }
    }

    // MARK: modes

    private func find(_ repo: String, _ query: String, _ limit: Int, _ graph: ImportGraph, _ answer: @escaping (Result<[JSONValue], ProtocolError>) -> Void) {
        let terms = Terms.query(query)
        guard !terms.isEmpty else { return answer(.failure(ProtocolError(code: .invalidMessage, message: "the query has no searchable words"))) }
        candidates(repo, terms, limit * 5) { result in
            answer(result.map { candidates in
                Ranking.rank(candidates, terms: terms, importers: graph.importerCounts, limit: limit).map { hit in
                    let candidate = candidates.first { $0.path == hit.path && $0.line == hit.line && ($0.kind == "file") == (hit.symbol == nil) }
                    var object: JSONObject = [
                        "path": .string(hit.path), "line": .int(Int64(hit.line)), "kind": .string(hit.kind), "score": .number(hit.score),
                        "why": .array(hit.why.map { .string($0) }),
                        "snippet": .string(String((candidate.map { hit.symbol == nil ? $0.docTerms : "\($0.name) \($0.docTerms)" } ?? "").prefix(240))),
                    ]
                    if let symbol = hit.symbol { object["symbol"] = .string(symbol) }
                    return .object(object)
                }
            })
        }
    }

    /// Frames that name repository files first (innermost strongest), then text search, then the files those
    /// import or are imported by.
    private func locate(_ repo: String, _ text: String, _ limit: Int, _ graph: ImportGraph, _ answer: @escaping (Result<[JSONValue], ProtocolError>) -> Void) {
        let frames = StackFrames.references(in: text, files: graph.files)
        var scores: [String: (score: Double, line: Int?, why: [String])] = [:]
        for (index, frame) in frames.enumerated() {
            // Python prints the innermost frame last; weight later frames higher.
            let score = 10 + Double(index) / Double(max(1, frames.count))
            let why = "stack frame \(frame.path):\(frame.line.map(String.init) ?? "?")" + (frame.function.map { " in \($0)" } ?? "")
            if let existing = scores[frame.path] {
                scores[frame.path] = (max(existing.score, score), frame.line ?? existing.line, existing.why + [why])
            } else {
                scores[frame.path] = (score, frame.line, [why])
            }
        }
        let terms = Terms.query(text, limit: 16)
        let finish: ([SearchHit]) -> Void = { hits in
            for hit in hits where scores[hit.path] == nil || scores[hit.path]!.score < 10 {
                let existing = scores[hit.path]
                scores[hit.path] = (max(existing?.score ?? 0, 5 * hit.score), existing?.line ?? hit.line, (existing?.why ?? []) + hit.why.map { "text \($0)" })
            }
            // Neighbours of the strongest files.
            let top = scores.sorted { $0.value.score > $1.value.score }.prefix(3).map(\.key)
            for path in top {
                for neighbour in graph.imports(of: path) + graph.importers(of: path) where scores[neighbour.path] == nil {
                    scores[neighbour.path] = (0.5, nil, ["\(neighbour.edge) \(path)"])
                }
            }
            let ranked = scores.sorted { ($0.value.score, $1.key) > ($1.value.score, $0.key) }.prefix(limit)
            answer(.success(ranked.map { path, entry in
                var object: JSONObject = [
                    "path": .string(path), "score": .number((entry.score * 1000).rounded() / 1000), "why": .array(entry.why.prefix(8).map { .string($0) }),
                ]
                if let line = entry.line { object["line"] = .int(Int64(line)) }
                return .object(object)
            }))
        }
        guard !terms.isEmpty else { return finish([]) }
        candidates(repo, terms, limit * 5) { result in
            switch result {
            case .failure(let error): answer(.failure(error))
            case .success(let candidates): finish(Ranking.rank(candidates, terms: terms, importers: graph.importerCounts, limit: limit * 2, perFile: 1))
            }
        }
    }

    /// Imports and importers of a file (or of the files defining a symbol), 2 hops, with the edge kind.
    private func related(_ target: String, _ limit: Int, _ graph: ImportGraph, _ answer: @escaping (Result<[JSONValue], ProtocolError>) -> Void) {
        let starts = graph.files.contains(target) ? [target] : graph.definitions[target] ?? []
        guard !starts.isEmpty else {
            return answer(.failure(ProtocolError(code: .notFound, message: "'\(target.prefix(200))' is neither an indexed file nor a defined symbol")))
        }
        var seen = Set(starts)
        var out: [JSONValue] = []
        var frontier = starts.map { (path: $0, via: String?.none) }
        for hop in 1...2 {
            var next: [(path: String, via: String?)] = []
            for (path, _) in frontier {
                for neighbour in graph.imports(of: path) + graph.importers(of: path) where seen.insert(neighbour.path).inserted {
                    var object: JSONObject = [
                        "path": .string(neighbour.path), "edge": .string(neighbour.edge), "hops": .int(Int64(hop)), "line": .int(Int64(neighbour.line)),
                    ]
                    if hop > 1 { object["via"] = .string(path) }
                    out.append(.object(object))
                    next.append((neighbour.path, path))
                }
            }
            frontier = next
        }
        answer(.success(Array(out.prefix(limit * 5))))
    }

    private func outline(_ repo: String, _ path: String, _ graph: ImportGraph, _ answer: @escaping (Result<[JSONValue], ProtocolError>) -> Void) {
        guard graph.files.contains(path) else { return answer(.failure(ProtocolError(code: .notFound, message: "\(path.prefix(300)) is not an indexed file"))) }
        let bound = LoopBound(answer, loop: loop)
        store.codeSymbols(repo: repo, path: path) { result in
            let json = result.map { $0.map(Self.symbolJSON) }.mapError { ProtocolError(code: .storeUnavailable, message: $0.message) }
            bound.hop { $0(json) }
        }
    }

    private func analyze(_ repo: RepositoryConfig, _ path: String, _ graph: ImportGraph, _ answer: @escaping (Result<[JSONValue], ProtocolError>) -> Void) {
        guard graph.files.contains(path) else { return answer(.failure(ProtocolError(code: .notFound, message: "\(path.prefix(300)) is not an indexed file"))) }
        let bound = LoopBound(answer, loop: loop)
        let store = store
        let root = repo.path
        store.codeSymbols(repo: repo.name, path: path) { symbolsResult in
            // The file is read on the store's completion thread, never on the loop (and never through a symlink).
            let symbols = (try? symbolsResult.get()) ?? []
            let read = readWorkspaceFile(path, in: root, maxBytes: 1 << 20)
            guard case .file(let bytes, let size) = read else {
                return bound.hop { $0(.failure(ProtocolError(code: .notFound, message: "\(path) cannot be read now: \(read.unreadableNote(path) ?? "missing")"))) }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            let language = Language.of(path: path)
            let findings = FileAnalysis.analyze(
                text, language: language,
                symbols: symbols.map { CodeSymbol(name: $0.name, kind: $0.kind, scope: $0.scope, signature: $0.signature, line: $0.line, endLine: $0.endLine) })
            let longest = symbols.compactMap { s in s.endLine.map { (s, $0 - s.line + 1) } }.sorted { $0.1 > $1.1 }.prefix(5)
            let result: JSONValue = .object([
                "path": .string(path), "language": .string(language.rawValue), "size": .int(Int64(size)),
                "lines": .int(Int64(text.split(separator: "\n", omittingEmptySubsequences: false).count)),
                "findings": .array(findings.map {
                    .object(["line": .int(Int64($0.line)), "severity": .string($0.severity.rawValue), "kind": .string($0.kind), "message": .string($0.message)])
                }),
                "longest_functions": .array(longest.map { .object(["name": .string($0.0.name), "line": .int(Int64($0.0.line)), "lines": .int(Int64($0.1))]) }),
            ])
            bound.hop { $0(.success([result])) }
        }
    }

    // MARK: plumbing

    private func candidates(_ repo: String, _ terms: [String], _ limit: Int, _ done: @escaping (Result<[SearchCandidate], ProtocolError>) -> Void) {
        let bound = LoopBound(done, loop: loop)
        store.searchCode(repo: repo, terms: terms, limit: limit) { result in
            let candidates = result.map { rows in
                rows.map {
                    SearchCandidate(
                        path: $0.path, kind: $0.kind, name: $0.name, line: $0.line, textRank: $0.rank, nameTerms: $0.nameTerms, pathTerms: $0.pathTerms,
                        docTerms: $0.docTerms)
                }
            }.mapError { ProtocolError(code: .storeUnavailable, message: $0.message) }
            bound.hop { $0(candidates) }
        }
    }

    /// The repository's files and import graph (cached until the next index run).
    private func graph(_ repo: String, _ done: @escaping (ImportGraph?) -> Void) {
        if let graph = graphs[repo] { return done(graph) }
        if graphLoads[repo] != nil { graphLoads[repo]?.append(done); return }
        graphLoads[repo] = [done]
        let store = store
        let finish = LoopBound<(ImportGraph?) -> Void>({ [weak self] graph in
            guard let self else { return }
            if let graph { self.graphs[repo] = graph }
            for waiter in self.graphLoads.removeValue(forKey: repo) ?? [] { waiter(graph) }
        }, loop: loop)
        DispatchQueue.global().async {
            do {
                let state = try store.sync { store.codeIndexState(repo: repo, completion: $0) }
                let files = try store.sync { store.codeFiles(repo: repo, completion: $0) }
                let imports = try store.sync { store.codeImports(repo: repo, completion: $0) }
                let definitions = try store.sync { store.codeDefinitions(repo: repo, completion: $0) }
                let graph = ImportGraph(commit: state?.commit, files: Set(files.map(\.path)), imports: imports, definitions: definitions)
                finish.hop { $0(graph) }
            } catch {
                finish.hop { $0(nil) }
            }
        }
    }

    static func symbolJSON(_ s: CodeSymbolRow) -> JSONValue {
        var object: JSONObject = ["name": .string(s.name), "kind": .string(s.kind), "line": .int(Int64(s.line))]
        if let scope = s.scope { object["scope"] = .string(scope) }
        if let signature = s.signature { object["signature"] = .string(signature) }
        if let end = s.endLine { object["end_line"] = .int(Int64(end)) }
        if let doc = s.doc { object["doc"] = .string(doc) }
        return .object(object)
    }
}

/// A repository's files and import edges (directory imports — a Swift module, a Go package — expanded to the
/// directory's files).
struct ImportGraph: Sendable {
    struct Edge: Sendable {
        var path: String
        /// "imports" (the start imports `path`) or "imported_by".
        var edge: String
        var line: Int
    }

    let commit: String?
    let files: Set<String>
    let forward: [String: [Edge]]
    let backward: [String: [Edge]]
    let importerCounts: [String: Int]
    /// Symbol name → files defining it.
    let definitions: [String: [String]]

    init(commit: String?, files: Set<String>, imports: [CodeImportRow], definitions: [String: [String]]) {
        self.commit = commit
        self.files = files
        self.definitions = definitions
        let sortedFiles = files.sorted()
        var forward: [String: [Edge]] = [:]
        var backward: [String: [Edge]] = [:]
        for row in imports {
            guard let resolved = row.resolved else { continue }
            let targets = resolved.hasSuffix("/") || resolved.isEmpty
                ? sortedFiles.filter { $0.hasPrefix(resolved) && !$0.dropFirst(resolved.count).contains("/") }.prefix(200).map { $0 }
                : (files.contains(resolved) ? [resolved] : [])
            for target in targets where target != row.path {
                forward[row.path, default: []].append(Edge(path: target, edge: "imports", line: row.line))
                backward[target, default: []].append(Edge(path: row.path, edge: "imported_by", line: row.line))
            }
        }
        self.forward = forward
        self.backward = backward
        self.importerCounts = backward.mapValues { Set($0.map(\.path)).count }
    }

    func imports(of path: String) -> [Edge] { forward[path] ?? [] }
    func importers(of path: String) -> [Edge] { backward[path] ?? [] }
}
