// medic index: build or refresh a repository's code index in the store from the command line, and ask it —
// the same indexer and queries the server runs (on demand, and for Benchmarks/navigator.sh).
import ArgumentParser
import EventLoop
import Foundation
import Logging
import MedicHost
import Protocol
import Store

struct Index: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Index a repository's code (incremental: only changed files) and optionally run navigator queries.")

    @Argument(help: "Repository path.") var path: String
    @Option(help: "Repository name (default: the folder's name).") var name: String?
    @Option(help: "Query to run after indexing (repeatable).") var query: [String] = []
    @Option(help: "find, locate, related, outline or analyze.") var mode: String = "find"
    @Option(name: .customLong("repeat"), help: "Run each query this many times and report p50/p99 latency.") var times: Int = 1
    @Flag(help: "Print results as JSON lines.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        guard let mode = NavigatorMode(rawValue: mode) else { throw ValidationError("--mode must be find, locate, related, outline or analyze") }
        let repo = RepositoryConfig(name: name, path: URL(fileURLWithPath: path).standardizedFileURL.path, testCommand: "true")
        let store = try storeOptions.open(logger: quietLogger("medic.index"))
        defer { store.close() }
        let loop = try EventLoop()
        let indexer = CodeIndexer(store: store, loop: loop)
        guard indexer.hasCtags else { throw ValidationError(CodeIndexer.ctagsMissing) }
        let navigator = NavigatorService(store: store, loop: loop, repositories: [repo], indexer: indexer, logger: quietLogger("medic.index"))
        var failure: String?
        navigator.index(repo: repo.name) { result in
            switch result {
            case .failure(let error):
                failure = error.description
                loop.stop()
            case .success(let outcome):
                print("indexed \(repo.name) at \(outcome.state.commit ?? "(not a git repository)"): \(outcome.state.files) files, "
                    + "\(outcome.state.symbols) symbols; \(outcome.changed) changed, \(outcome.removed) removed, \(outcome.unchanged) unchanged, "
                    + "\(outcome.skipped) skipped; \(outcome.milliseconds) ms")
                runQueries(navigator, repo: repo.name, mode: mode, queries: query) { loop.stop() }
            }
        }
        loop.run()
        if let failure { throw ValidationError(failure) }
    }

    private func runQueries(_ navigator: NavigatorService, repo: String, mode: NavigatorMode, queries: [String], done: @escaping () -> Void) {
        var remaining = queries.flatMap { query in Array(repeating: query, count: max(1, self.times)) }
        var latencies: [UInt64] = []
        func next() {
            guard !remaining.isEmpty else {
                if self.times > 1, !latencies.isEmpty {
                    let sorted = latencies.sorted()
                    func ms(_ q: Double) -> String { String(format: "%.2f", Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]) / 1e6) }
                    print("queries: \(sorted.count), p50 \(ms(0.5)) ms, p99 \(ms(0.99)) ms")
                }
                return done()
            }
            let query = remaining.removeFirst()
            let started = monotonicNanoseconds()
            navigator.search(repo: repo, mode: mode, query: query, limit: 10) { result in
                latencies.append(monotonicNanoseconds() - started)
                if remaining.first != query {
                    switch result {
                    case .success(let answer):
                        if self.json {
                            print(String(decoding: answer.bytes, as: UTF8.self))
                        } else {
                            print("\(query):")
                            for hit in answer["results"]?.arrayValue ?? [] {
                                let line = hit["line"]?.intValue.map { ":\($0)" } ?? ""
                                let why = hit["why"]?.arrayValue?.compactMap(\.stringValue).joined(separator: ", ") ?? hit["edge"]?.stringValue ?? ""
                                print("  \(hit["path"]?.stringValue ?? hit["name"]?.stringValue ?? "?")\(line)  \(hit["symbol"]?.stringValue ?? "")  \(why)")
                            }
                        }
                    case .failure(let error):
                        print("\(query): \(error.code.rawValue): \(error.message)")
                    }
                }
                next()
            }
        }
        next()
    }
}
