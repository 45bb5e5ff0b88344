// Store: the thread-safe facade over one database (SQLite or Postgres, chosen by URL) and its worker thread.
import Foundation
public import Logging

/// Medic's durable store. Everything a client sees is written here first; every topic's events carry a
/// dense sequence.
///
/// Threading: each Store owns one worker thread, and only that thread touches the database connection.
/// Calls enqueue a request and return at once (the event loop never blocks); completions run on the
/// worker thread, so the host hops back to its loop itself. Requests are served in submission order;
/// consecutive writes are group-committed in one transaction, each in its own savepoint.
///
/// `@unchecked Sendable`: all mutable state lives in `StoreWorker`, whose queue and flags are guarded by
/// one NSCondition and whose connection is confined to the worker thread; the Store itself holds only
/// `let`s. The compiler cannot see lock- or thread-confinement, hence unchecked.
public final class Store: @unchecked Sendable {
    /// The backend the URL selected.
    public enum Backend: Sendable, Equatable {
        case sqlite(path: String)
        case postgres(url: String)
    }

    /// Tunables; every limit has a documented default.
    public struct Options: Sendable {
        /// Most writes committed in one transaction (default 1000): bounds how long one commit holds
        /// the write lock and how much one failed commit takes down.
        public var maxBatchWrites: Int = 1000
        /// First reconnect delay after the database goes away (default 100 ms); doubled after each failed
        /// attempt up to `maxReconnectDelay` (default 5 s).
        public var initialReconnectDelay: Double = 0.1
        public var maxReconnectDelay: Double = 5
        /// How often a group that failed as a whole for a transient reason the database reported
        /// (deadlock, serialization failure) is retried. Safe because such a transaction is known not to
        /// have committed. Default 3.
        public var transactionRetries: Int = 3
        /// SQLite: how long to wait on another connection's lock before failing (default 5000 ms).
        public var sqliteBusyTimeoutMs: Int32 = 5000
        /// SQLite: optional cap on database pages (tests use it to simulate a full disk). Default none.
        public var sqliteMaxPageCount: Int? = nil
        /// Postgres: seconds one connection attempt may take (default 5).
        public var postgresConnectTimeout: Int = 5
        /// Postgres: application_name of our connections (default "medic").
        public var postgresApplicationName: String = "medic"
        /// Postgres: send each group as one libpq pipeline (falling back to a savepoint per write when
        /// anything in it fails). Default true; false forces the savepoint path (one round trip per statement).
        public var postgresPipelining: Bool = true
        /// Postgres: create the database named in the URL if it does not exist (default true).
        public var postgresCreateDatabase: Bool = true

        /// Test hook: called on the worker thread right before each COMMIT (to break the connection there).
        var beforeCommit: (@Sendable () -> Void)? = nil

        public init() {}
    }

    /// The default URL: an SQLite file under ./data.
    public static let defaultURL = "sqlite:data/medic.sqlite3"

    /// The backend in use.
    public let backend: Backend
    let worker: StoreWorker
    private let logger: Logger
    private let listener: PostgresListener?

    /// Parses a store URL: `sqlite:PATH` (also `sqlite://PATH`) or `postgres://…` / `postgresql://…`.
    public static func backend(for url: String) throws(StoreError) -> Backend {
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") { return .postgres(url: url) }
        if url.hasPrefix("sqlite:") {
            var path = String(url.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            guard !path.isEmpty else { throw .invalid("store URL \(url) has no path") }
            return .sqlite(path: path)
        }
        throw .invalid("unsupported store URL \(url): expected sqlite:PATH or postgres://…")
    }

    /// Opens (creating the data dir / database) and applies versioned schema migrations (the
    /// schema_migrations table; both backends). Blocks the caller while it connects and migrates: call it
    /// at startup, before the loop runs.
    public static func open(url: String, logger: Logger, options: Options = Options()) throws(StoreError) -> Store {
        let backend = try backend(for: url)
        let connect: @Sendable () throws(StoreError) -> any SQLConnection
        switch backend {
        case .sqlite(let path):
            let sqlite = SQLiteOptions(busyTimeoutMs: options.sqliteBusyTimeoutMs, maxPageCount: options.sqliteMaxPageCount)
            connect = { () throws(StoreError) in try SQLiteConnection(path: path, options: sqlite) }
        case .postgres(let url):
            let pg = PostgresOptions(
                connectTimeoutSeconds: options.postgresConnectTimeout, applicationName: options.postgresApplicationName)
            let create = options.postgresCreateDatabase
            connect = { () throws(StoreError) in try PostgresConnection(url: url, options: pg, createDatabase: create) }
        }
        let conn = try connect()
        do throws(StoreError) {
            try migrate(conn, now: nowMilliseconds())
        } catch {
            conn.close()
            throw error
        }
        return Store(backend: backend, connection: conn, connect: connect, logger: logger, options: options)
    }

    private init(
        backend: Backend, connection: any SQLConnection, connect: @escaping @Sendable () throws(StoreError) -> any SQLConnection,
        logger: Logger, options: Options
    ) {
        self.backend = backend
        self.logger = logger
        worker = StoreWorker(connection: connection, connect: connect, logger: logger, options: options)
        if case .postgres(let url) = backend {
            var pg = PostgresOptions(
                connectTimeoutSeconds: options.postgresConnectTimeout, applicationName: options.postgresApplicationName)
            pg.applicationName += "-listen"
            listener = PostgresListener(url: url, options: pg, logger: logger, retry: options)
        } else {
            listener = nil
        }
        worker.start()
    }

    deinit { close() }

    // MARK: Writes

    /// Applies `w` atomically (its own savepoint in a group-commit transaction) and reports the events
    /// with their seqs, or the stored response when the command id was seen before.
    public func write(_ w: StoreWrite, completion: @escaping @Sendable (Result<WriteOutcome, StoreError>) -> Void) {
        worker.submit(.write(w, completion))
    }

    /// Several `write`s handed to the worker at once: they land in one group commit, each still atomic
    /// on its own, completed in order.
    public func write(
        contentsOf writes: [(write: StoreWrite, completion: @Sendable (Result<WriteOutcome, StoreError>) -> Void)]
    ) {
        worker.submit(contentsOf: writes.map { .write($0.write, $0.completion) })
    }

    // MARK: Reads

    /// Events of `topic` with seq > `after`, ascending, at most `limit`.
    public func events(
        topic: String, after: Int64, limit: Int, completion: @escaping @Sendable (Result<[StoredEvent], StoreError>) -> Void
    ) {
        run(completion) { c throws(StoreError) in try StoreOperations.events(topic: topic, after: after, limit: limit, on: c) }
    }

    /// The newest `limit` events of `topic`, ascending, with the topic's head (read after them: at least the
    /// last one's seq). Earlier events are paged with `events(topic:after:limit:)`.
    public func latestEvents(
        topic: String, limit: Int, completion: @escaping @Sendable (Result<(head: Int64, events: [StoredEvent]), StoreError>) -> Void
    ) {
        run(completion) { c throws(StoreError) in
            let events = try StoreOperations.latestEvents(topic: topic, limit: limit, on: c)
            return (try StoreOperations.head(topic: topic, on: c), events)
        }
    }

    /// The last seq of `topic`; 0 when it has no events.
    public func head(topic: String, completion: @escaping @Sendable (Result<Int64, StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.head(topic: topic, on: c) }
    }

    /// A proposal with its revisions, reviews, comments and applied changes; nil when unknown.
    public func proposal(id: String, completion: @escaping @Sendable (Result<ProposalDetail?, StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.proposal(id: id, on: c) }
    }

    /// Proposals, newest (by created_at) first, optionally only those with `status`.
    public func proposals(
        status: String?, limit: Int, completion: @escaping @Sendable (Result<[ProposalRow], StoreError>) -> Void
    ) {
        run(completion) { c throws(StoreError) in try StoreOperations.proposals(status: status, limit: limit, on: c) }
    }

    /// Proposals in any of `statuses`, oldest first (e.g. the busy ones a restarted server must recover; the
    /// caller says which statuses those are — the store knows no status meanings).
    public func proposals(statuses: [String], completion: @escaping @Sendable (Result<[ProposalRow], StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.proposals(statuses: statuses, on: c) }
    }

    /// The pipeline's figures over every stored proposal, computed in the database (see
    /// `StoreOperations.proposalFigures`).
    public func proposalFigures(passingStatuses: [String], completion: @escaping @Sendable (Result<ProposalFigures, StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.proposalFigures(passingStatuses: passingStatuses, on: c) }
    }

    // MARK: Workflows (bugs; later asks and incidents)

    /// One workflow by id, whatever its kind; nil when unknown.
    public func workflow(id: String, completion: @escaping @Sendable (Result<WorkflowRow?, StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.workflow(id: id, on: c) }
    }

    /// Workflows of `kind`, newest (by created_at, then id) first, at most `limit`, optionally only those
    /// with `status`. Those whose status is in `last` come after all the others (e.g. closed incidents after the
    /// open ones, newest first within each group), ordered by the engine before the limit.
    public func workflows(
        kind: String, status: String?, last: [String] = [], limit: Int,
        completion: @escaping @Sendable (Result<[WorkflowRow], StoreError>) -> Void
    ) {
        run(completion) { c throws(StoreError) in try StoreOperations.workflows(kind: kind, status: status, last: last, limit: limit, on: c) }
    }

    /// Workflows of `kind` in any of `statuses`, oldest first (the ones a restarted server must recover; the
    /// caller says which statuses those are).
    public func workflows(
        kind: String, statuses: [String], completion: @escaping @Sendable (Result<[WorkflowRow], StoreError>) -> Void
    ) {
        run(completion) { c throws(StoreError) in try StoreOperations.workflows(kind: kind, statuses: statuses, on: c) }
    }

    /// status → number of workflows of `kind` in it (statuses with none are absent), counted by the engine.
    public func workflowCounts(kind: String, completion: @escaping @Sendable (Result<[String: Int], StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.workflowCounts(kind: kind, on: c) }
    }

    // MARK: asks (query audit, marked answers)

    /// The newest `limit` audit rows.
    public func queryAudit(limit: Int, completion: @escaping @Sendable (Result<[QueryAuditRow], StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.queryAudit(limit: limit, on: c) }
    }

    /// The marked answers whose questions are most like `question` (full-text search), best first.
    public func similarAskMemories(_ question: String, limit: Int, completion: @escaping @Sendable (Result<[AskMemoryRow], StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.similarAskMemories(question, limit: limit, on: c) }
    }

    // MARK: monitor

    /// Stored monitor buckets from `since` on, oldest first.
    public func monitorBuckets(since: Int64, completion: @escaping @Sendable (Result<[MonitorBucketRow], StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.monitorBuckets(since: since, on: c) }
    }

    /// The fingerprints with these ids, or (nil) the `limit` most recently seen.
    public func fingerprints(ids: [String]?, limit: Int = 100, completion: @escaping @Sendable (Result<[FingerprintRow], StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.fingerprints(ids: ids, limit: limit, on: c) }
    }

    // MARK: code index (CodeIndex.swift)

    public func codeIndexState(repo: String, completion: @escaping @Sendable (Result<CodeIndexState?, StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try CodeIndexOperations.state(repo: repo, on: c) }
    }

    public func codeFiles(repo: String, completion: @escaping @Sendable (Result<[CodeFileRow], StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try CodeIndexOperations.files(repo: repo, on: c) }
    }

    /// Replaces `files`' rows and drops `removed`'s in one transaction; `commit: .some(x)` marks the index as
    /// reflecting commit x (nil: keep what it said).
    public func updateCodeIndex(
        repo: String, files: [IndexedFile], removed: [String], commit: String??, now: Int64,
        completion: @escaping @Sendable (Result<CodeIndexState, StoreError>) -> Void
    ) {
        run(completion) { c throws(StoreError) in
            try CodeIndexOperations.update(repo: repo, files: files, removed: removed, commit: commit, now: now, on: c)
        }
    }

    public func searchCode(repo: String, terms: [String], limit: Int, completion: @escaping @Sendable (Result<[CodeSearchRow], StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try CodeIndexOperations.search(repo: repo, terms: terms, limit: limit, on: c) }
    }

    public func codeSymbols(repo: String, path: String, completion: @escaping @Sendable (Result<[CodeSymbolRow], StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try CodeIndexOperations.symbols(repo: repo, path: path, on: c) }
    }

    public func codeDefinitions(repo: String, completion: @escaping @Sendable (Result<[String: [String]], StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try CodeIndexOperations.definitions(repo: repo, on: c) }
    }

    public func codeImports(repo: String, completion: @escaping @Sendable (Result<[CodeImportRow], StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try CodeIndexOperations.imports(repo: repo, on: c) }
    }

    /// The stored response of a command, nil if that (principal, commandId) was never committed.
    public func commandResponse(
        principal: String, commandId: String, completion: @escaping @Sendable (Result<String?, StoreError>) -> Void
    ) {
        run(completion) { c throws(StoreError) in
            try StoreOperations.commandResponse(principal: principal, commandId: commandId, on: c)
        }
    }

    // MARK: Principals

    /// Creates a principal holding `token` (only its SHA-256 hex is stored). Fails with `conflict` if a
    /// non-revoked principal has that name (a revoked one is replaced) or another principal has that token.
    public func createPrincipal(
        name: String, role: String, token: String, completion: @escaping @Sendable (Result<PrincipalRow, StoreError>) -> Void
    ) {
        let hash = sha256Hex(token)
        let now = nowMilliseconds()
        run(completion) { c throws(StoreError) in
            try StoreOperations.createPrincipal(name: name, role: role, tokenHash: hash, now: now, on: c)
        }
    }

    /// The live principal holding `token`; nil when the token is unknown or revoked.
    public func principal(forToken token: String, completion: @escaping @Sendable (Result<PrincipalRow?, StoreError>) -> Void) {
        principal(tokenHash: sha256Hex(token), completion: completion)
    }

    /// Stores a single-use sign-in code for the live principal `name`, valid until `expiresAt` (ms since
    /// the epoch); only its SHA-256 is kept. false when there is no live principal of that name.
    public func createLoginCode(
        principal name: String, code: String, expiresAt: Int64, completion: @escaping @Sendable (Result<Bool, StoreError>) -> Void
    ) {
        let hash = sha256Hex(code)
        let now = nowMilliseconds()
        run(completion) { c throws(StoreError) in
            try StoreOperations.createLoginCode(principal: name, codeHash: hash, expiresAt: expiresAt, now: now, on: c)
        }
    }

    /// Exchanges a sign-in code (once) for a session token of the code's principal, valid until
    /// `sessionExpiresAt` or until the principal is revoked. nil when the code is unknown, used or expired.
    public func redeemLoginCode(
        _ code: String, sessionToken: String, sessionExpiresAt: Int64,
        completion: @escaping @Sendable (Result<PrincipalRow?, StoreError>) -> Void
    ) {
        let codeHash = sha256Hex(code)
        let sessionHash = sha256Hex(sessionToken)
        let now = nowMilliseconds()
        run(completion) { c throws(StoreError) in
            try StoreOperations.redeemLoginCode(
                codeHash: codeHash, sessionHash: sessionHash, sessionExpiresAt: sessionExpiresAt, now: now, on: c)
        }
    }

    /// The live principal whose token — its own, or a sign-in session's — hashes to `tokenHash` (see
    /// `sha256Hex`); nil when unknown, revoked or expired.
    public func principal(tokenHash: String, completion: @escaping @Sendable (Result<PrincipalRow?, StoreError>) -> Void) {
        let now = nowMilliseconds()
        run(completion) { c throws(StoreError) in try StoreOperations.principal(tokenHash: tokenHash, now: now, on: c) }
    }

    /// Every live token with its principal's name and role: one small query, so a server can re-check all
    /// of its open sessions at once (revocation and role changes take effect on live sessions too).
    public func liveCredentials(completion: @escaping @Sendable (Result<[LiveCredential], StoreError>) -> Void) {
        let now = nowMilliseconds()
        run(completion) { c throws(StoreError) in try StoreOperations.liveCredentials(now: now, on: c) }
    }

    /// Changes a live principal's role; false when there is no live principal of that name.
    public func setPrincipalRole(name: String, role: String, completion: @escaping @Sendable (Result<Bool, StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.setPrincipalRole(name: name, role: role, on: c) }
    }

    /// Every principal, revoked ones included, by name.
    public func principals(completion: @escaping @Sendable (Result<[PrincipalRow], StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.principals(on: c) }
    }

    /// Revokes a principal, its sign-in sessions and codes; false when there is no live principal of that name.
    public func revokePrincipal(name: String, completion: @escaping @Sendable (Result<Bool, StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.revokePrincipal(name: name, on: c) }
    }

    // MARK: Nodes and presence

    /// This node's heartbeat; answers every node sharing the store, this one first (see `StoreOperations.heartbeat`).
    public func heartbeat(
        _ node: NodeRow, deadAfter: Int64, forgetAfter: Int64, completion: @escaping @Sendable (Result<[NodeRow], StoreError>) -> Void
    ) {
        run(completion) { c throws(StoreError) in try StoreOperations.heartbeat(node, deadAfter: deadAfter, forgetAfter: forgetAfter, on: c) }
    }

    /// The heartbeat with leases (see `StoreOperations.heartbeat(_:deadAfter:forgetAfter:leaseMs:reachableRepos:claimLimit:on:)`).
    public func heartbeat(
        _ node: NodeRow, deadAfter: Int64, forgetAfter: Int64, leaseMs: Int64, reachableRepos: [String], claimLimit: Int,
        completion: @escaping @Sendable (Result<HeartbeatResult, StoreError>) -> Void
    ) {
        run(completion) { c throws(StoreError) in
            try StoreOperations.heartbeat(
                node, deadAfter: deadAfter, forgetAfter: forgetAfter, leaseMs: leaseMs, reachableRepos: reachableRepos, claimLimit: claimLimit, on: c)
        }
    }

    /// Claims an instance's lease for `node` unless another node holds it unexpired; answers the lease as it is.
    public func claimLease(
        workflow: String, node: String, repo: String, now: Int64, leaseMs: Int64, completion: @escaping @Sendable (Result<LeaseRow, StoreError>) -> Void
    ) {
        run(completion) { c throws(StoreError) in
            try StoreOperations.claimLease(workflow: workflow, node: node, repo: repo, now: now, leaseMs: leaseMs, on: c)
        }
    }

    /// Gives up `node`'s lease of `workflow`.
    public func releaseLease(workflow: String, node: String, completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.releaseLease(workflow: workflow, node: node, on: c) }
    }

    /// Marks every lease of `node` expired.
    public func expireLeases(node: String, completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.expireLeases(node: node, on: c) }
    }

    /// Every lease.
    public func leases(completion: @escaping @Sendable (Result<[LeaseRow], StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.leases(on: c) }
    }

    /// Stores a command for its instance's owner (announced on `medic_forward`); answers its id.
    public func forward(_ command: ForwardedCommand, completion: @escaping @Sendable (Result<Int64, StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.forward(command, on: c) }
    }

    /// Commands forwarded to `node`, not answered yet.
    public func pendingForwarded(node: String, completion: @escaping @Sendable (Result<[ForwardedCommand], StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.pendingForwarded(node: node, on: c) }
    }

    /// Records the owner's answer to a forwarded command (announced to the node that sent it).
    public func answerForwarded(id: Int64, answer: String, now: Int64, completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.answerForwarded(id: id, answer: answer, now: now, on: c) }
    }

    /// The answer to a forwarded command, nil while there is none.
    public func forwardedAnswer(id: Int64, completion: @escaping @Sendable (Result<String?, StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.forwardedAnswer(id: id, on: c) }
    }

    /// Every node that shares the store (or did within the last hour), by name.
    public func nodes(completion: @escaping @Sendable (Result<[NodeRow], StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.nodes(on: c) }
    }

    /// Replaces this node's members of topics (JSON arrays; "" deletes), notifying the other nodes.
    public func setPresence(node: String, members: [(topic: String, json: String)], completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        let copy = members.map { Pair(topic: $0.topic, json: $0.json) }
        run(completion) { c throws(StoreError) in try StoreOperations.setPresence(node: node, members: copy.map { ($0.topic, $0.json) }, on: c) }
    }

    /// Every node's members of a topic (node, JSON array).
    public func presence(topic: String, completion: @escaping @Sendable (Result<[PresenceRow], StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.presence(topic: topic, on: c).map { PresenceRow(node: $0.node, json: $0.json) } }
    }

    /// Forgets every presence row of a node.
    public func clearPresence(node: String, completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try StoreOperations.clearPresence(node: node, on: c) }
    }

    private struct Pair: Sendable { var topic: String; var json: String }

    // MARK: Notifications

    /// Registers `handler` for what other writers (other nodes) committed.
    ///
    /// Postgres: after each commit the worker NOTIFYs channel `medic_events` with payload "topic seq"
    /// (inside the transaction, so it is delivered only if the commit happens); a listener thread with its
    /// own connection LISTENs and calls the handler with `.head` for notifications from any node, this one
    /// included, on its own thread. LISTEN is not durable: notifications sent while the listener was
    /// disconnected are lost, so after every (re)connection it calls `.resync` — read the heads you care about
    /// from the store. SQLite: `.head` on the worker thread right after each commit (one writer: no resync).
    public func listen(_ handler: @escaping @Sendable (StoreNotification) -> Void) {
        if let listener {
            listener.add(handler)
        } else {
            worker.addCommitHandler { topic, head in handler(.head(topic: topic, head: head)) }
        }
    }

    /// True on PostgreSQL, where several nodes may share the database.
    public var isShared: Bool {
        if case .postgres = backend { return true }
        return false
    }

    // MARK: Lifecycle

    /// Serves everything already queued, then closes the connections and joins the threads. Idempotent.
    /// Requests made after close fail at once (on the caller's thread) with store_unavailable.
    public func close() {
        worker.close()
        listener?.close()
    }

    // MARK: Schema

    /// Applies migrations declared outside the store (a feature's own tables) together with the store's own:
    /// each version once, in ascending order, in one transaction; answers the versions applied now. `open`
    /// already applied the store's, so on a database that has them this runs only `extra`'s new steps.
    /// A version that collides with another declared one is refused and nothing is applied.
    public func applyMigrations(_ extra: [Migration], completion: @escaping @Sendable (Result<[Int], StoreError>) -> Void) {
        run(completion) { c throws(StoreError) in try migrate(c, now: nowMilliseconds(), extra: extra) }
    }

    // MARK: Blocking convenience (CLI and tests)

    /// Runs an asynchronous Store call and waits for its completion:
    /// `let n = try store.sync { store.head(topic: "t", completion: $0) }`.
    /// Never call it on the worker thread (from inside a completion): that would wait on itself.
    public func sync<T: Sendable>(
        _ call: (@escaping @Sendable (Result<T, StoreError>) -> Void) -> Void
    ) throws(StoreError) -> T {
        precondition(!worker.isWorkerThread, "Store.sync called from the store's worker thread")
        let box = ResultBox<T>()
        call { box.set($0) }
        return try box.wait().get()
    }

    // MARK: Test hooks (internal; reached through @testable import)

    /// Holds the worker so that requests submitted meanwhile are served as one group on `resumeWorker`.
    func pauseWorker() { worker.setPaused(true) }
    func resumeWorker() { worker.setPaused(false) }

    /// Runs raw SQL on the worker's connection (`$N` placeholders), e.g. to inspect stored columns.
    func rawQuery(
        _ sql: String, _ params: [SQLValue] = [], completion: @escaping @Sendable (Result<[[SQLValue]], StoreError>) -> Void
    ) {
        run(completion) { c throws(StoreError) in try c.query(sql, params) }
    }

    /// Enqueues a read (or a small self-contained transaction) whose result goes to `completion`.
    private func run<T: Sendable>(
        _ completion: @escaping @Sendable (Result<T, StoreError>) -> Void,
        _ body: @escaping @Sendable (any SQLConnection) throws(StoreError) -> T
    ) {
        worker.submit(
            .task({ c throws(StoreError) in completion(.success(try body(c))) }, fail: { completion(.failure($0)) }))
    }
}

/// A one-shot result slot for `Store.sync`. `@unchecked Sendable`: `value` is guarded by `condition`.
private final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var value: Result<T, StoreError>?

    func set(_ result: Result<T, StoreError>) {
        condition.lock()
        value = result
        condition.broadcast()
        condition.unlock()
    }

    func wait() -> Result<T, StoreError> {
        condition.lock()
        defer { condition.unlock() }
        while value == nil { condition.wait() }
        return value!
    }
}

/// Milliseconds since the Unix epoch.
func nowMilliseconds() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
