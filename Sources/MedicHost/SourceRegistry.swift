// SourceRegistry: the databases asks read — every configured source plus `medic` (Medic's own store through
// its read-only views, store migration 5). Each source's `QuerySource` is blocking, so each lives on its own
// serial worker queue (one statement at a time per source, never on the loop); results hop back to the loop
// (`LoopBound`). A source is opened on first use and reopened after a failure: a source that is down answers
// `unavailable` with its reason and the server keeps running. Introspection (`tables()`) is cached until a
// refresh asks again.
import Dispatch
import EventLoop
import Foundation
import Protocol
import QuerySources

/// The `medic` source's allow-list: exactly the views of store migration 5.
let medicSourceViews: Set<String> = [
    "medic_proposals", "medic_revisions", "medic_reviews", "medic_bugs", "medic_events_by_kind", "medic_incidents", "medic_fingerprints",
]

/// A source object confined to its worker queue.
private final class SourceBox: @unchecked Sendable {
    var source: (any QuerySource)?
}

/// One source: its configuration, its worker and its cached schema. Loop-bound (the box is the worker's).
final class SourceHandle {
    let name: String
    let kind: String
    let policy: SourcePolicy
    private let open: @Sendable () throws(QueryRefusal) -> any QuerySource
    private let queue: DispatchQueue
    private let box = SourceBox()
    private let loop: EventLoop
    private(set) var cachedTables: [TableInfo]?
    private var waitingForTables: [(Result<[TableInfo], QueryRefusal>) -> Void] = []

    init(name: String, kind: String, policy: SourcePolicy, loop: EventLoop, open: @escaping @Sendable () throws(QueryRefusal) -> any QuerySource) {
        self.name = name
        self.kind = kind
        self.policy = policy
        self.open = open
        self.loop = loop
        queue = DispatchQueue(label: "medic.source.\(name)")
    }

    /// Runs `work` with the (opened) source on the worker; `done` gets the result on the loop.
    private func onWorker<T: Sendable>(
        _ work: @escaping @Sendable (any QuerySource) -> Result<T, QueryRefusal>, done: @escaping (Result<T, QueryRefusal>) -> Void
    ) {
        let bound = LoopBound(done, loop: loop)
        let box = self.box, open = self.open
        queue.async {
            var result: Result<T, QueryRefusal>
            let opened: Result<any QuerySource, QueryRefusal>
            if let existing = box.source { opened = .success(existing) } else {
                do throws(QueryRefusal) { opened = .success(try open()) } catch { opened = .failure(error) }
            }
            switch opened {
            case .failure(let refusal): result = .failure(refusal)
            case .success(let source):
                box.source = source
                result = work(source)
                // A source that went away is reopened at the next question.
                if case .failure(let refusal) = result, refusal.code == .unavailable { box.source = nil }
            }
            let final = result
            bound.hop { $0(final) }
        }
    }

    /// One statement (the source's safety applies).
    func run(_ sql: String, parameters: [JSONValue] = [], done: @escaping (Result<QueryResult, QueryRefusal>) -> Void) {
        onWorker({ $0.run(sql, parameters: parameters) }, done: done)
    }

    /// The allowed tables (cached; `refresh` reads them again). Concurrent callers share one read.
    func tables(refresh: Bool = false, done: @escaping (Result<[TableInfo], QueryRefusal>) -> Void) {
        if !refresh, let cachedTables { return done(.success(cachedTables)) }
        waitingForTables.append(done)
        guard waitingForTables.count == 1 else { return }
        onWorker({ $0.tables() }) { [weak self] result in
            guard let self else { return }
            if case .success(let tables) = result { self.cachedTables = tables }
            let waiting = self.waitingForTables
            self.waitingForTables = []
            for body in waiting { body(result) }
        }
    }

    /// A structured query compiled against the cached schema, then run.
    func structured(_ request: JSONValue, done: @escaping (Result<(CompiledQuery, QueryResult), QueryRefusal>, CompiledQuery?) -> Void) {
        tables { [weak self] result in
            guard let self else { return }
            switch result.flatMap({ StructuredQuery.compile(request, tables: $0, dialect: self.kind == "postgres" ? .postgres : .sqlite, maxLimit: self.policy.maxRows) }) {
            case .failure(let refusal): done(.failure(refusal), nil)
            case .success(let compiled):
                self.run(compiled.sql, parameters: compiled.parameters) { run in done(run.map { (compiled, $0) }, compiled) }
            }
        }
    }

    /// Closes the source on its worker (at shutdown).
    func close() {
        let box = self.box
        queue.async { box.source = nil }
    }
}

/// Every source, by name; `medic` always last in `names` order but always present.
final class SourceRegistry {
    private(set) var handles: [String: SourceHandle] = [:]
    /// Configured names in order, then `medic`.
    private(set) var names: [String] = []

    init(configuration: MedicConfiguration, loop: EventLoop) {
        for source in configuration.sources {
            let policy = SourcePolicy(
                allowedTables: source.tables.map(Set.init), sensitiveColumns: Set(source.sensitiveColumns), maxRows: source.maxRows,
                timeoutMilliseconds: source.timeoutMs)
            let url = source.url
            let kind = source.kind ?? "sqlite"
            add(SourceHandle(name: source.name, kind: kind, policy: policy, loop: loop) { () throws(QueryRefusal) -> any QuerySource in
                kind == "postgres"
                    ? try PostgresQuerySource(url: url, policy: policy)
                    : try SQLiteQuerySource(path: String(url.dropFirst("sqlite:".count)), policy: policy)
            })
        }
        let store = configuration.effectiveStoreURL
        if store.hasPrefix("sqlite:") {
            // A second, read-only connection to the store file; the authorizer lets the views read their tables.
            let policy = SourcePolicy(allowedTables: medicSourceViews, maxRows: 1000, timeoutMilliseconds: 5000)
            let path = String(store.dropFirst("sqlite:".count))
            add(SourceHandle(name: SourceConfig.medicName, kind: "sqlite", policy: policy, loop: loop) { () throws(QueryRefusal) -> any QuerySource in
                try SQLiteQuerySource(path: path, policy: policy)
            })
        } else {
            // PostgreSQL's plan names the views' base tables, so those are allowed too — only the columns the
            // views show are not secret, and `doc`, `description`, `data`, `comment` are refused as sensitive.
            // Never principals, sessions, login_codes or commands. `medic_source_url` connects with a role that may
            // read only the views (SECURITY.md).
            let policy = SourcePolicy(
                allowedTables: medicSourceViews.union(["proposals", "revisions", "reviews", "workflows", "events"]),
                sensitiveColumns: ["doc", "description", "data", "comment", "proposals.doc", "revisions.doc", "workflows.doc", "events.data"],
                maxRows: 1000, timeoutMilliseconds: 5000)
            let url = configuration.medicSourceURL ?? store
            add(SourceHandle(name: SourceConfig.medicName, kind: "postgres", policy: policy, loop: loop) { () throws(QueryRefusal) -> any QuerySource in
                try PostgresQuerySource(url: url, policy: policy)
            })
        }
    }

    private func add(_ handle: SourceHandle) {
        handles[handle.name] = handle
        names.append(handle.name)
    }

    func handle(_ name: String) -> SourceHandle? { handles[name] }

    /// The default source of an ask: the first configured one that is not `medic`, else `medic`.
    var defaultName: String { names.first { $0 != SourceConfig.medicName } ?? SourceConfig.medicName }

    func closeAll() { handles.values.forEach { $0.close() } }
}

extension TableInfo {
    /// `GET /api/v1/sources` form of a table.
    var json: JSONValue {
        .object([
            "name": .string(name), "row_estimate": .int(Int64(rowEstimate)),
            "columns": .array(columns.map { c in
                .object([
                    "name": .string(c.name), "type": .string(c.type), "nullable": .bool(c.nullable), "primary_key": .bool(c.primaryKey),
                    "sensitive": .bool(c.sensitive), "sample_values": .array(c.sampleValues.map { .string($0) }),
                ])
            }),
        ])
    }
}
