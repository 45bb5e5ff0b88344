// StoreContractTests: the store contract, run against every backend (SQLite always, Postgres when configured).
import Foundation
import Testing

@testable import Store

@Suite("Store contract", .serialized)
struct StoreContractTests {
    @Test("events are stored in order with seqs 1…N and paginate by `after`", arguments: BackendKind.all)
    func orderingAndPagination(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        #expect(try store.sync { store.head(topic: "a", completion: $0) } == 0)
        // One write with interleaved topics, then more writes.
        let first = try store.sync {
            store.write(StoreWrite(events: [event("a", data: "{\"n\":1}"), event("b"), event("a", data: "{\"n\":2}")]),
                        completion: $0)
        }
        #expect(first.events.map { "\($0.topic)\($0.seq)" } == ["a1", "b1", "a2"])
        #expect(first.events.map(\.data) == ["{\"n\":1}", "{}", "{\"n\":2}"])
        for n in 3...10 {
            let out = try store.sync { store.write(StoreWrite(events: [event("a", data: "{\"n\":\(n)}", ts: Int64(n))]), completion: $0) }
            #expect(out.events == [StoredEvent(topic: "a", seq: Int64(n), ts: Int64(n), kind: "test", data: "{\"n\":\(n)}")])
        }
        #expect(try store.sync { store.head(topic: "a", completion: $0) } == 10)
        #expect(try store.sync { store.head(topic: "b", completion: $0) } == 1)
        let all = try store.sync { store.events(topic: "a", after: 0, limit: 100, completion: $0) }
        #expect(all.map(\.seq) == Array(1...10))
        #expect(all.map(\.data) == (1...10).map { "{\"n\":\($0)}" })
        let page = try store.sync { store.events(topic: "a", after: 3, limit: 4, completion: $0) }
        #expect(page.map(\.seq) == [4, 5, 6, 7])
        #expect(try store.sync { store.events(topic: "a", after: 10, limit: 5, completion: $0) }.isEmpty)
        #expect(try store.sync { store.events(topic: "a", after: 8, limit: 5, completion: $0) }.map(\.seq) == [9, 10])
        #expect(try store.sync { store.events(topic: "nope", after: 0, limit: 5, completion: $0) }.isEmpty)
        // The newest ones (an incident's page), ascending, with the head to page back from.
        let latest = try store.sync { store.latestEvents(topic: "a", limit: 3, completion: $0) }
        #expect(latest.head == 10 && latest.events.map(\.seq) == [8, 9, 10] && latest.events.last?.data == "{\"n\":10}")
        #expect(try store.sync { store.latestEvents(topic: "a", limit: 100, completion: $0) }.events.map(\.seq) == Array(1...10))
        let none = try store.sync { store.latestEvents(topic: "nope", limit: 5, completion: $0) }
        #expect(none.head == 0 && none.events.isEmpty)
    }

    @Test("seqs stay dense under concurrent appends from many threads", arguments: BackendKind.all)
    func denseUnderConcurrency(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        let threads = 8, writesPerThread = 40, topics = ["t0", "t1", "t2", "t3"]
        let acked = Locked<[StoredEvent]>([])
        let failures = Locked<[String]>([])
        concurrently(threads) { t in
            for i in 0..<writesPerThread {
                // 1–3 events per write, over two topics, so writes span topics.
                let n = 1 + (i % 3)
                let events = (0..<n).map { k in event(topics[(t + i + k) % topics.count], data: "\"\(t)-\(i)-\(k)\"") }
                do {
                    let out = try store.sync { store.write(StoreWrite(events: events), completion: $0) }
                    acked.withLock { $0 += out.events }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.get.isEmpty)
        var total = 0
        for topic in topics {
            let stored = try store.sync { store.events(topic: topic, after: 0, limit: 10_000, completion: $0) }
            total += stored.count
            #expect(stored.map(\.seq) == Array(1...Int64(stored.count)), "gap or duplicate in \(topic)")
            #expect(try store.sync { store.head(topic: topic, completion: $0) } == Int64(stored.count))
            // What each writer was told matches what is stored.
            let told = acked.get.filter { $0.topic == topic }.sorted { $0.seq < $1.seq }
            #expect(told == stored)
        }
        #expect(total == threads * (0..<writesPerThread).reduce(0) { $0 + 1 + $1 % 3 })
        #expect(Set(acked.get.map(\.data)).count == total)
    }

    @Test("two Stores on one database (as two processes would be) share one dense sequence", arguments: BackendKind.all)
    func denseAcrossStores(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        var options = f.options()
        options.sqliteBusyTimeoutMs = 10_000
        let stores = [try f.open(options), try f.open(options)]
        defer { for s in stores { s.close() } }
        let failures = Locked<[String]>([])
        concurrently(4) { t in
            let store = stores[t % 2]
            for i in 0..<30 {
                do {
                    _ = try store.sync {
                        store.write(StoreWrite(events: [event("shared", data: "\"\(t)-\(i)\""), event("t\(t % 2)")]), completion: $0)
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.get.isEmpty)
        let stored = try stores[0].sync { stores[0].events(topic: "shared", after: 0, limit: 1000, completion: $0) }
        #expect(stored.map(\.seq) == Array(1...120))
        #expect(Set(stored.map(\.data)).count == 120)
    }

    @Test("a failing write fails alone inside a group commit and leaves no seq gap", arguments: BackendKind.all)
    func failingWriteFailsAlone(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        let results = Locked<[Int: Result<WriteOutcome, StoreError>]>([:])
        let done = DispatchGroup()
        store.pauseWorker()
        let writes = [
            StoreWrite(events: [event("g", data: "\"a\"")]),
            // A review of a proposal that does not exist: foreign key violation, after the event was appended.
            StoreWrite(
                reviews: [ReviewRow(proposalId: "ghost", revision: 1, principal: "p", verdict: "approve", comment: nil, ts: 1)],
                events: [event("g", data: "\"b\"")]),
            StoreWrite(proposals: [proposalRow("p1")], events: [event("g", data: "\"c\"")]),
        ]
        for (i, w) in writes.enumerated() {
            done.enter()
            store.write(w) { r in
                results.withLock { $0[i] = r }
                done.leave()
            }
        }
        store.resumeWorker()
        done.wait()
        let r = results.get
        #expect((try? r[0]?.get())?.events.map(\.seq) == [1])
        guard case .failure(let error)? = r[1] else {
            Issue.record("write with a dangling reference succeeded")
            return
        }
        #expect(error.code == StoreError.notFound)
        #expect((try? r[2]?.get())?.events.map(\.seq) == [2])
        let stored = try store.sync { store.events(topic: "g", after: 0, limit: 10, completion: $0) }
        #expect(stored.map(\.data) == ["\"a\"", "\"c\""])
        #expect(try store.sync { store.proposal(id: "p1", completion: $0) }?.proposal == proposalRow("p1"))
    }

    @Test("writes handed over together complete in order, each atomic on its own", arguments: BackendKind.all)
    func batchedWrites(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        let order = Locked<[Int]>([])
        let results = Locked<[Int: Result<WriteOutcome, StoreError>]>([:])
        let done = DispatchGroup()
        var batch: [(write: StoreWrite, completion: @Sendable (Result<WriteOutcome, StoreError>) -> Void)] = []
        for i in 0..<20 {
            // Write 7 refers to a proposal that does not exist: it fails alone.
            let w = i == 7
                ? StoreWrite(reviews: [ReviewRow(proposalId: "ghost", revision: 1, principal: "p", verdict: "approve", comment: nil, ts: 1)],
                    events: [event("b", data: "\(i)")])
                : StoreWrite(events: [event("b", data: "\(i)")])
            done.enter()
            batch.append((w, { r in
                order.withLock { $0.append(i) }
                results.withLock { $0[i] = r }
                done.leave()
            }))
        }
        store.write(contentsOf: batch)
        done.wait()
        #expect(order.get == Array(0..<20))
        let r = results.get
        #expect(r[7].map { if case .failure = $0 { true } else { false } } == true)
        let seqs = (0..<20).filter { $0 != 7 }.compactMap { try? r[$0]?.get().events.first?.seq }
        #expect(seqs == Array(1...19).map(Int64.init))
        let stored = try store.sync { store.events(topic: "b", after: 0, limit: 100, completion: $0) }
        #expect(stored.map(\.data) == (0..<20).filter { $0 != 7 }.map { "\($0)" })
    }

    @Test("a repeated command id never applies twice", arguments: BackendKind.all)
    func idempotentCommands(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        let cmd = CommandRecord(principal: "alice", commandId: "c1", response: "{\"ok\":1}")
        let w = StoreWrite(comments: [], events: [event("p", "comment")], command: cmd)
        let first = try store.sync { store.write(w, completion: $0) }
        #expect(first.events.map(\.seq) == [1])
        var again = w
        again.command?.response = "{\"ok\":2}"  // a retry's response must not replace the stored one
        #expect(try store.sync { store.write(again, completion: $0) } == .duplicateCommand(response: "{\"ok\":1}"))
        #expect(try store.sync { store.head(topic: "p", completion: $0) } == 1)
        #expect(try store.sync { store.commandResponse(principal: "alice", commandId: "c1", completion: $0) } == "{\"ok\":1}")
        #expect(try store.sync { store.commandResponse(principal: "alice", commandId: "c2", completion: $0) } == nil)
        // Command ids are per principal.
        let bob = StoreWrite(events: [event("p")], command: CommandRecord(principal: "bob", commandId: "c1", response: "b"))
        #expect(try store.sync { store.write(bob, completion: $0) }.events.map(\.seq) == [2])

        // The same id twice in one group commit: the second sees the first's uncommitted record.
        let results = Locked<[WriteOutcome]>([])
        let done = DispatchGroup()
        store.pauseWorker()
        let twin = StoreWrite(events: [event("q")], command: CommandRecord(principal: "alice", commandId: "c3", response: "r3"))
        for _ in 0..<2 {
            done.enter()
            store.write(twin) { r in
                if let o = try? r.get() { results.withLock { $0.append(o) } }
                done.leave()
            }
        }
        store.resumeWorker()
        done.wait()
        #expect(results.get.count == 2)
        #expect(results.get.filter(\.isDuplicate).count == 1)
        #expect(try store.sync { store.head(topic: "q", completion: $0) } == 1)

        // A failed write does not consume its command id: the retry applies.
        let bad = StoreWrite(
            comments: [CommentRow(proposalId: "ghost", principal: "alice", text: "x", ts: 1)],
            command: CommandRecord(principal: "alice", commandId: "c4", response: "r4"))
        #expect(throws: StoreError.self) { try store.sync { store.write(bad, completion: $0) } }
        #expect(try store.sync { store.commandResponse(principal: "alice", commandId: "c4", completion: $0) } == nil)
    }

    @Test("proposals upsert, list newest first, filter by status; revisions, reviews, comments, applied changes",
          arguments: BackendKind.all)
    func proposalsAndReviews(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        var w = StoreWrite()
        w.proposals = [proposalRow("p1", createdAt: 10), proposalRow("p2", status: "testing", createdAt: 20),
                       proposalRow("p3", status: "awaiting_review", createdAt: 30)]
        w.revisions = [RevisionRow(proposalId: "p1", number: 1, doc: "{\"changes\":[]}", createdAt: 10)]
        _ = try store.sync { store.write(w, completion: $0) }

        var p1 = proposalRow("p1", status: "awaiting_review", createdAt: 10, title: "renamed")
        p1.currentRevision = 2
        p1.attempts = 1
        p1.doc = "{\"max_attempts\":3}"
        var update = StoreWrite(proposals: [p1])
        update.revisions = [RevisionRow(proposalId: "p1", number: 2, doc: "{\"fix\":true}", createdAt: 11),
                            RevisionRow(proposalId: "p1", number: 1, doc: "{\"changes\":[1]}", createdAt: 10)]
        update.reviews = [ReviewRow(proposalId: "p1", revision: 2, principal: "admin", verdict: "approve", comment: nil, ts: 12),
                          ReviewRow(proposalId: "p1", revision: 2, principal: "bob", verdict: "request_changes", comment: "why", ts: 13)]
        update.comments = [CommentRow(proposalId: "p1", principal: "carol", text: "looks fine", ts: 14)]
        update.appliedChanges = [AppliedChangeRow(proposalId: "p1", revision: 2, commit: "abc", ts: 15, revertedBy: nil)]
        _ = try store.sync { store.write(update, completion: $0) }
        let revert = StoreWrite(appliedChanges: [AppliedChangeRow(proposalId: "p1", revision: 2, commit: "abc", ts: 15, revertedBy: "def")])
        _ = try store.sync { store.write(revert, completion: $0) }

        let detail = try #require(try store.sync { store.proposal(id: "p1", completion: $0) })
        #expect(detail.proposal == p1)
        #expect(detail.revisions.map(\.number) == [1, 2])
        #expect(detail.revisions.map(\.doc) == ["{\"changes\":[1]}", "{\"fix\":true}"])
        #expect(detail.reviews == update.reviews)
        #expect(detail.comments == update.comments)
        #expect(detail.appliedChanges == [AppliedChangeRow(proposalId: "p1", revision: 2, commit: "abc", ts: 15, revertedBy: "def")])
        #expect(try store.sync { store.proposal(id: "zzz", completion: $0) } == nil)

        let all = try store.sync { store.proposals(status: nil, limit: 10, completion: $0) }
        #expect(all.map(\.id) == ["p3", "p2", "p1"])
        #expect(try store.sync { store.proposals(status: nil, limit: 2, completion: $0) }.map(\.id) == ["p3", "p2"])
        #expect(try store.sync { store.proposals(status: "awaiting_review", limit: 10, completion: $0) }.map(\.id) == ["p3", "p1"])
        #expect(try store.sync { store.proposals(status: "rejected", limit: 10, completion: $0) }.isEmpty)
        #expect(try store.sync { store.proposals(statuses: ["deploying", "testing", "analyzing", "fixing", "applying"], completion: $0) }.map(\.id) == ["p2"])
    }

    @Test("the pipeline's figures are computed by the engine from proposals and revision documents", arguments: BackendKind.all)
    func proposalFigures(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        #expect(try store.sync { store.proposalFigures(passingStatuses: ["applied"], completion: $0) } == ProposalFigures())
        func result(exit: Int, timedOut: Bool = false, failed: Int? = nil, signal: Int? = nil, quota: Bool? = nil) -> String {
            var fields = ["\"exitCode\":\(exit)", "\"timedOut\":\(timedOut)", "\"durationMs\":5"]
            if let failed { fields.append("\"failed\":\(failed)") }
            if let signal { fields.append("\"signal\":\(signal)") }
            if let quota { fields.append("\"diskQuotaExceeded\":\(quota)") }
            return "{" + fields.joined(separator: ",") + "}"
        }
        var a = proposalRow("a", status: "applied", createdAt: 1)
        a.attempts = 2
        var b = proposalRow("b", status: "unfixable", createdAt: 2)
        b.attempts = 3
        let c = proposalRow("c", status: "awaiting_review", createdAt: 3)
        var w = StoreWrite(proposals: [a, b, c])
        w.revisions = [
            RevisionRow(proposalId: "a", number: 1, doc: "{\"testResult\":\(result(exit: 1)),\"analysis\":{\"category\":\"test_failure\"}}", createdAt: 1),
            RevisionRow(proposalId: "a", number: 2, doc: "{\"testResult\":\(result(exit: 0, timedOut: true)),\"analysis\":{\"category\":\"timeout\"}}", createdAt: 1),
            RevisionRow(proposalId: "a", number: 3, doc: "{\"testResult\":\(result(exit: 0, failed: 0))}", createdAt: 1),
            RevisionRow(proposalId: "b", number: 1, doc: "{\"testResult\":\(result(exit: 0, failed: 2)),\"analysis\":{\"category\":\"test_failure\"}}", createdAt: 1),
            RevisionRow(proposalId: "b", number: 2, doc: "{\"testResult\":\(result(exit: 0, signal: 9))}", createdAt: 1),
            RevisionRow(proposalId: "b", number: 3, doc: "{\"testResult\":\(result(exit: 0, quota: true))}", createdAt: 1),
            RevisionRow(proposalId: "b", number: 4, doc: "{\"testResult\":\(result(exit: 0, quota: false))}", createdAt: 1),
            RevisionRow(proposalId: "c", number: 1, doc: "{\"changes\":[]}", createdAt: 1),
        ]
        _ = try store.sync { store.write(w, completion: $0) }
        let figures = try store.sync { store.proposalFigures(passingStatuses: ["applied", "awaiting_review"], completion: $0) }
        var expected = ProposalFigures()
        expected.proposals = 3
        expected.attempts = 5
        expected.proposalsWithFixes = 2
        expected.successful = 1
        expected.unfixable = 1
        expected.failures = 5  // exit 1, timed out, 2 failed, signal 9, disk quota
        expected.byCategory = ["test_failure": 2, "timeout": 1]
        #expect(figures == expected)
    }

    @Test("workflows: upsert by id replaces every column; lookup by id whatever the kind; unknown id is nil",
          arguments: BackendKind.all)
    func workflowUpsert(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        #expect(try store.sync { store.workflow(id: "b-1", completion: $0) } == nil)
        let first = workflowRow("b-1", createdAt: 10, doc: "{\"v\":1}")
        _ = try store.sync { store.write(StoreWrite(workflows: [first, workflowRow("a-1", kind: "ask")]), completion: $0) }
        #expect(try store.sync { store.workflow(id: "b-1", completion: $0) } == first)
        #expect(try store.sync { store.workflow(id: "a-1", completion: $0) } == workflowRow("a-1", kind: "ask"))

        // Every column is replaced, kind and created_at included.
        let replaced = WorkflowRow(
            kind: "incident", id: "b-1", repo: "other", title: "renamed", status: "fixing", author: "bob", createdAt: 11,
            updatedAt: 99, doc: "{\"v\":2}")
        var w = StoreWrite()
        w.workflows = [replaced]
        _ = try store.sync { store.write(w, completion: $0) }
        #expect(try store.sync { store.workflow(id: "b-1", completion: $0) } == replaced)
        #expect(try store.sync { store.workflows(kind: "bug", status: nil, limit: 10, completion: $0) }.isEmpty)
        #expect(try store.sync { store.workflows(kind: "incident", status: nil, limit: 10, completion: $0) } == [replaced])
        // The same id twice in one write: the later row wins.
        let later = workflowRow("b-2", status: "proposed", createdAt: 5)
        _ = try store.sync { store.write(StoreWrite(workflows: [workflowRow("b-2"), later]), completion: $0) }
        #expect(try store.sync { store.workflow(id: "b-2", completion: $0) } == later)
        #expect(try store.sync { store.workflow(id: "b-3", completion: $0) } == nil)
        #expect(try store.sync { store.workflow(id: "", completion: $0) } == nil)
    }

    @Test("workflows: newest first per kind, by status, limited; several statuses oldest first; counts per status",
          arguments: BackendKind.all)
    func workflowLists(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        #expect(try store.sync { store.workflowCounts(kind: "bug", completion: $0) } == [:])
        #expect(try store.sync { store.workflows(kind: "bug", status: nil, limit: 10, completion: $0) }.isEmpty)
        // Written out of order; b-c and b-d share a created_at (then id decides).
        let rows = [
            workflowRow("b-c", status: "fixing", createdAt: 30),
            workflowRow("b-a", status: "analyzing", createdAt: 10),
            workflowRow("b-e", status: "proposed", createdAt: 40),
            workflowRow("b-d", status: "analyzing", createdAt: 30),
            workflowRow("b-b", status: "proposed", createdAt: 20),
            workflowRow("a-x", kind: "ask", status: "analyzing", createdAt: 50),
            workflowRow("i-y", kind: "incident", status: "fixing", createdAt: 5),
        ]
        _ = try store.sync { store.write(StoreWrite(workflows: Array(rows.prefix(3))), completion: $0) }
        _ = try store.sync { store.write(StoreWrite(workflows: Array(rows.dropFirst(3))), completion: $0) }

        func ids(_ list: [WorkflowRow]) -> [String] { list.map(\.id) }
        #expect(try ids(store.sync { store.workflows(kind: "bug", status: nil, limit: 10, completion: $0) })
            == ["b-e", "b-d", "b-c", "b-b", "b-a"])
        #expect(try ids(store.sync { store.workflows(kind: "bug", status: nil, limit: 2, completion: $0) }) == ["b-e", "b-d"])
        #expect(try store.sync { store.workflows(kind: "bug", status: nil, limit: 0, completion: $0) }.isEmpty)
        #expect(try store.sync { store.workflows(kind: "bug", status: nil, limit: -1, completion: $0) }.isEmpty)
        #expect(try ids(store.sync { store.workflows(kind: "bug", status: "analyzing", limit: 10, completion: $0) }) == ["b-d", "b-a"])
        #expect(try ids(store.sync { store.workflows(kind: "bug", status: "proposed", limit: 1, completion: $0) }) == ["b-e"])
        #expect(try store.sync { store.workflows(kind: "bug", status: "fixed", limit: 10, completion: $0) }.isEmpty)
        #expect(try ids(store.sync { store.workflows(kind: "ask", status: nil, limit: 10, completion: $0) }) == ["a-x"])
        #expect(try store.sync { store.workflows(kind: "nope", status: nil, limit: 10, completion: $0) }.isEmpty)
        // The full rows come back, not just ids.
        #expect(try store.sync { store.workflows(kind: "bug", status: "fixing", limit: 10, completion: $0) } == [rows[0]])

        // Some statuses last (closed incidents after open ones), ordered before the limit: an old row in a status
        // that is not last comes first even when newer rows would fill the limit.
        #expect(try ids(store.sync { store.workflows(kind: "bug", status: nil, last: ["proposed", "fixing"], limit: 10, completion: $0) })
            == ["b-d", "b-a", "b-e", "b-c", "b-b"])
        #expect(try ids(store.sync { store.workflows(kind: "bug", status: nil, last: ["proposed", "fixing"], limit: 1, completion: $0) }) == ["b-d"])
        #expect(try ids(store.sync { store.workflows(kind: "bug", status: nil, last: ["proposed", "fixing", "analyzing"], limit: 2, completion: $0) })
            == ["b-e", "b-d"])
        #expect(try ids(store.sync { store.workflows(kind: "bug", status: "proposed", last: ["proposed"], limit: 1, completion: $0) }) == ["b-e"])

        // Startup recovery: oldest first, only this kind.
        #expect(try ids(store.sync { store.workflows(kind: "bug", statuses: ["analyzing", "fixing"], completion: $0) })
            == ["b-a", "b-c", "b-d"])
        #expect(try ids(store.sync { store.workflows(kind: "bug", statuses: ["proposed"], completion: $0) }) == ["b-b", "b-e"])
        #expect(try ids(store.sync { store.workflows(kind: "incident", statuses: ["fixing", "analyzing"], completion: $0) }) == ["i-y"])
        #expect(try store.sync { store.workflows(kind: "bug", statuses: [], completion: $0) }.isEmpty)
        #expect(try store.sync { store.workflows(kind: "bug", statuses: ["unfixed"], completion: $0) }.isEmpty)

        #expect(try store.sync { store.workflowCounts(kind: "bug", completion: $0) } == ["analyzing": 2, "fixing": 1, "proposed": 2])
        #expect(try store.sync { store.workflowCounts(kind: "ask", completion: $0) } == ["analyzing": 1])
        // A status change moves a row between counts and lists.
        var moved = rows[1]
        moved.status = "fixing"
        moved.updatedAt = 60
        _ = try store.sync { store.write(StoreWrite(workflows: [moved]), completion: $0) }
        #expect(try store.sync { store.workflowCounts(kind: "bug", completion: $0) } == ["analyzing": 1, "fixing": 2, "proposed": 2])
        #expect(try ids(store.sync { store.workflows(kind: "bug", status: "analyzing", limit: 10, completion: $0) }) == ["b-d"])
    }

    @Test("a workflow row is stored with its write's events or not at all, on every write path", arguments: BackendKind.all)
    func workflowAtomicity(_ kind: BackendKind) throws {
        // Postgres has two write paths (a pipeline per group, and a savepoint per write when anything in the
        // group fails or pipelining is off); SQLite has the second only.
        for pipelining in kind == .postgres ? [true, false] : [true] {
            let f = try StoreFixture(kind)
            var options = f.options()
            options.postgresPipelining = pipelining
            let store = try f.open(options)
            defer { store.close() }
            let path = "pipelining \(pipelining)"

            // A group where everything succeeds (on Postgres with pipelining: the pipelined path).
            let old = workflowRow("b-old", status: "analyzing", createdAt: 1)
            let okGroup = try group(store, [
                StoreWrite(events: [event("bug:b-old", "bug_reported"), event("bugs", "bug")], workflows: [old]),
                StoreWrite(events: [event("bug:b-two", "bug_reported")], workflows: [workflowRow("b-two", createdAt: 2)]),
            ])
            #expect(okGroup.map { (try? $0.get())?.events.map(\.seq) } == [[1, 1], [1]], "\(path)")
            #expect(try store.sync { store.workflow(id: "b-old", completion: $0) } == old, "\(path)")

            // A stored event the topic's head does not know of: the next event appended to that topic takes
            // its seq, so that event's INSERT fails in the database (after the write's workflow row went in).
            _ = try store.sync {
                store.rawQuery("INSERT INTO events (topic, seq, ts, kind, data) VALUES ('bug:b-bad', 1, 1, 'x', '{}')", completion: $0)
            }
            var changedOld = old
            changedOld.status = "fixing"
            changedOld.doc = "{\"changed\":true}"
            let results = try group(store, [
                StoreWrite(events: [event("bugs", "bug")], workflows: [workflowRow("b-good", createdAt: 3)]),
                // New row and an update of a stored one, then the failing event.
                StoreWrite(events: [event("bugs", "bug"), event("bug:b-bad", "bug_reported")],
                           workflows: [workflowRow("b-bad", createdAt: 4), changedOld]),
                // An event the store refuses before any SQL (empty topic), after the rows.
                StoreWrite(events: [event("", "bug")], workflows: [workflowRow("b-empty", createdAt: 5)]),
                StoreWrite(events: [event("bugs", "bug")], workflows: [workflowRow("b-good2", createdAt: 6)]),
            ])
            #expect((try? results[0].get())?.events.map(\.seq) == [2], "\(path)")
            #expect(throws: StoreError.self, "\(path)") { try results[1].get() }
            #expect(throws: StoreError.self, "\(path)") { try results[2].get() }
            #expect((try? results[3].get())?.events.map(\.seq) == [3], "\(path)")
            #expect(try store.sync { store.workflow(id: "b-bad", completion: $0) } == nil, "\(path)")
            #expect(try store.sync { store.workflow(id: "b-empty", completion: $0) } == nil, "\(path)")
            #expect(try store.sync { store.workflow(id: "b-old", completion: $0) } == old, "the failed write's update was rolled back (\(path))")
            #expect(try store.sync { store.workflow(id: "b-good", completion: $0) } == workflowRow("b-good", createdAt: 3), "\(path)")
            #expect(try store.sync { store.workflow(id: "b-good2", completion: $0) } == workflowRow("b-good2", createdAt: 6), "\(path)")
            #expect(try store.sync { store.head(topic: "bugs", completion: $0) } == 3, "no seq taken by the failed write (\(path))")
            #expect(try store.sync { store.head(topic: "bug:b-bad", completion: $0) } == 0, "\(path)")
            #expect(try store.sync { store.workflowCounts(kind: "bug", completion: $0) } == ["analyzing": 4], "\(path)")

            // A repeated command id: the retry's rows are not applied.
            let cmd = CommandRecord(principal: "alice", commandId: "report-1", response: "{\"bug\":\"b-cmd\"}")
            let report = StoreWrite(events: [event("bug:b-cmd", "bug_reported")], command: cmd, workflows: [workflowRow("b-cmd", createdAt: 7)])
            #expect(try store.sync { store.write(report, completion: $0) }.events.map(\.seq) == [1], "\(path)")
            var retry = report
            retry.workflows = [workflowRow("b-cmd", status: "fixed", createdAt: 7), workflowRow("b-cmd2", createdAt: 8)]
            #expect(try store.sync { store.write(retry, completion: $0) }.isDuplicate, "\(path)")
            #expect(try store.sync { store.workflow(id: "b-cmd", completion: $0) }?.status == "analyzing", "\(path)")
            #expect(try store.sync { store.workflow(id: "b-cmd2", completion: $0) } == nil, "\(path)")
        }
    }

    @Test("a 1 MB workflow document round-trips intact", arguments: BackendKind.all)
    func workflowLargeDoc(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        // JSON-ish text with escapes, quotes, newlines and multi-byte characters, different on every line.
        var doc = "{\"log\":["
        var n = 0
        while doc.utf8.count < 1 << 20 {
            doc += "\"line \(n): caf\u{E9} \u{6F22}\u{5B57} \u{1F41E} \\\"quoted\\\" \\\\ back\\nslash\ttab\",\n"
            n += 1
        }
        doc += "\"end\"]}"
        #expect(doc.utf8.count > 1 << 20)
        let row = workflowRow("b-big", doc: doc)
        _ = try store.sync { store.write(StoreWrite(events: [event("bug:b-big")], workflows: [row]), completion: $0) }
        let stored = try #require(try store.sync { store.workflow(id: "b-big", completion: $0) })
        #expect(stored.doc.utf8.count == doc.utf8.count)
        #expect(stored.doc == doc)
        #expect(try store.sync { store.workflows(kind: "bug", status: nil, limit: 1, completion: $0) }.first?.doc == doc)
        #expect(try store.sync { store.workflows(kind: "bug", statuses: ["analyzing"], completion: $0) }.first?.doc == doc)
    }

    /// Hands `writes` to the worker while it is paused, so they are served as one group commit; their
    /// results in order.
    private func group(_ store: Store, _ writes: [StoreWrite]) throws -> [Result<WriteOutcome, StoreError>] {
        let results = Locked<[Int: Result<WriteOutcome, StoreError>]>([:])
        let done = DispatchGroup()
        store.pauseWorker()
        for (i, w) in writes.enumerated() {
            done.enter()
            store.write(w) { r in
                results.withLock { $0[i] = r }
                done.leave()
            }
        }
        store.resumeWorker()
        done.wait()
        let r = results.get
        return try writes.indices.map { i in
            guard let result = r[i] else { throw FixtureError(description: "write \(i) never completed") }
            return result
        }
    }

    @Test("code index: files, symbols, imports; stemmed, weighted search; incremental replace and delete", arguments: BackendKind.all)
    func codeIndex(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        func file(_ path: String, symbols: [(String, String, String)], imports: [(String, String?)] = [], hash: String = "h1") -> IndexedFile {
            let pathTerms = path.split(whereSeparator: { $0 == "/" || $0 == "." || $0 == "_" }).joined(separator: " ")
            return IndexedFile(
                file: CodeFileRow(path: path, language: "python", size: 100, hash: hash, lines: 10),
                symbols: symbols.enumerated().map { i, s in
                    CodeSymbolRow(path: path, name: s.0, kind: "function", scope: nil, signature: "()", line: i + 1, endLine: i + 2, doc: s.2)
                },
                imports: imports.enumerated().map { i, m in CodeImportRow(path: path, module: m.0, resolved: m.1, line: i + 1) },
                docs: [CodeDocRow(kind: "file", name: path, line: 1, nameTerms: pathTerms, pathTerms: pathTerms, docTerms: "")]
                    + symbols.enumerated().map { i, s in
                        CodeDocRow(kind: "function", name: s.0, line: i + 1, nameTerms: s.1, pathTerms: pathTerms, docTerms: s.2)
                    })
        }
        #expect(try store.sync { store.codeIndexState(repo: "r", completion: $0) } == nil)
        let first = try store.sync {
            store.updateCodeIndex(
                repo: "r",
                files: [
                    file("auth/login.py", symbols: [("validate_password", "validate password validatepassword", "checks the password hash")],
                         imports: [("auth.util", "auth/util.py"), ("os", nil)]),
                    file("http/redirects.py", symbols: [("follow_redirect", "follow redirect followredirect", "follows Location headers")]),
                    file("auth/util.py", symbols: [("hash_value", "hash value hashvalue", "")]),
                ],
                removed: [], commit: .some("abc"), now: 5, completion: $0)
        }
        #expect(first == CodeIndexState(repo: "r", commit: "abc", indexedAt: 5, files: 3, symbols: 3))
        // Another repository's documents never answer for this one.
        _ = try store.sync {
            store.updateCodeIndex(repo: "other", files: [file("auth/password.py", symbols: [("password", "password", "")])], removed: [],
                                  commit: .some("zzz"), now: 5, completion: $0)
        }
        let hits = try store.sync { store.searchCode(repo: "r", terms: ["password", "validation"], limit: 10, completion: $0) }
        #expect(hits.first?.path == "auth/login.py" && hits.first?.name == "validate_password")
        #expect(hits.allSatisfy { $0.path != "auth/password.py" && $0.rank > 0 })
        // Stemming: "redirects" and "following" find follow_redirect.
        let stemmed = try store.sync { store.searchCode(repo: "r", terms: ["redirects", "following"], limit: 10, completion: $0) }
        #expect(stemmed.first?.name == "follow_redirect")
        // Terms carrying FTS or tsquery syntax are reduced to letters and digits; nothing is an error.
        for hostile in [["\"", "OR", "*"], ["a:b", "NEAR(x)", "!c"], ["'); DROP TABLE code_docs; --"], [""], []] {
            _ = try store.sync { store.searchCode(repo: "r", terms: hostile, limit: 10, completion: $0) }
        }
        #expect(try store.sync { store.searchCode(repo: "r", terms: ["validate"], limit: 10, completion: $0) }.isEmpty == false)
        #expect(try store.sync { store.codeSymbols(repo: "r", path: "auth/login.py", completion: $0) }.map(\.name) == ["validate_password"])
        #expect(try store.sync { store.codeImports(repo: "r", completion: $0) }.map(\.resolved) == ["auth/util.py", nil])

        // Incremental: login.py changes (its old documents go), redirects.py is deleted.
        let second = try store.sync {
            store.updateCodeIndex(
                repo: "r", files: [file("auth/login.py", symbols: [("sign_in", "sign in signin", "starts a session")], hash: "h2")],
                removed: ["http/redirects.py"], commit: .some("def"), now: 6, completion: $0)
        }
        #expect(second == CodeIndexState(repo: "r", commit: "def", indexedAt: 6, files: 2, symbols: 2))
        #expect(try store.sync { store.searchCode(repo: "r", terms: ["validate"], limit: 10, completion: $0) }.isEmpty)
        #expect(try store.sync { store.searchCode(repo: "r", terms: ["redirect"], limit: 10, completion: $0) }.isEmpty)
        #expect(try store.sync { store.searchCode(repo: "r", terms: ["session"], limit: 10, completion: $0) }.first?.name == "sign_in")
        #expect(try store.sync { store.codeFiles(repo: "r", completion: $0) }.map { "\($0.path)@\($0.hash)" } == ["auth/login.py@h2", "auth/util.py@h1"])
        #expect(try store.sync { store.codeImports(repo: "r", completion: $0) }.isEmpty)
        // A batch without a commit keeps the commit the index says it reflects.
        let third = try store.sync { store.updateCodeIndex(repo: "r", files: [], removed: ["auth/util.py"], commit: nil, now: 7, completion: $0) }
        #expect(third.commit == "def" && third.files == 1)
    }

    @Test("code index: the bounded search of common words returns exactly what ranking every match returns", arguments: BackendKind.all)
    func codeSearchBoundedEqualsExhaustive(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        // 40 files × 6 symbols: "alpha" common, "beta" in between, "gamma" rare, in different columns and
        // documents of different lengths (bm25 normalises by length); another repository full of all three.
        func files(_ count: Int, prefix: String, heavy: Bool) -> [IndexedFile] {
            (0..<count).map { n in
                let path = "\(prefix)/mod\(n).py"
                let pathTerms = "\(prefix) mod\(n) py" + (n % 9 == 0 ? " gamma" : "")
                var docs = [CodeDocRow(kind: "file", name: path, line: 1, nameTerms: "mod\(n)", pathTerms: pathTerms, docTerms: "")]
                for j in 0..<6 {
                    let k = n * 6 + j
                    var name = heavy ? ["alpha", "beta", "gamma"] : []
                    if k % 2 == 0 { name.append("alpha") }
                    if k % 5 == 0 { name.append("beta") }
                    if k % 17 == 0 { name.append("gamma") }
                    name += Array(repeating: "x\(k % 7)", count: k % 4)
                    var doc = Array(repeating: "filler\(k % 3)", count: k % 5)
                    if k % 3 == 0 { doc += ["alpha", "alpha"] }
                    if k % 7 == 0 { doc.append("beta") }
                    docs.append(CodeDocRow(
                        kind: "function", name: "f\(k)", line: j + 2, nameTerms: (["f\(k)"] + name).joined(separator: " "), pathTerms: pathTerms,
                        docTerms: doc.joined(separator: " ")))
                }
                return IndexedFile(file: CodeFileRow(path: path, language: "python", size: 1, hash: "h", lines: 9), symbols: [], imports: [], docs: docs)
            }
        }
        _ = try store.sync { store.updateCodeIndex(repo: "r", files: files(40, prefix: "pkg", heavy: false), removed: [], commit: nil, now: 1, completion: $0) }
        _ = try store.sync { store.updateCodeIndex(repo: "other", files: files(5, prefix: "oth", heavy: true), removed: [], commit: nil, now: 1, completion: $0) }
        let c: any SQLConnection = switch kind {
        case .sqlite: try SQLiteConnection(path: f.sqlitePath, options: SQLiteOptions(busyTimeoutMs: 1000))
        case .postgres: try PostgresConnection(url: f.url, options: PostgresOptions(applicationName: f.applicationName + "-direct"))
        }
        defer { c.close() }
        let small = CodeIndexOperations.SearchBounds(commonTermDocuments: 20, allDocuments: 40, terms: 8)
        var paths: Set<CodeIndexOperations.SearchPath> = []
        for terms in [["alpha", "beta", "gamma"], ["alpha", "beta"], ["gamma", "alpha"], ["beta", "gamma"], ["alpha"], ["alpha", "beta", "gamma", "nothing"]] {
            for limit in [1, 3, 10, 50, 200] {
                let reference = try CodeIndexOperations.search(repo: "r", terms: terms, limit: limit, bounds: nil, on: c)
                #expect(!reference.rows.isEmpty)
                for bounds in [small, .standard] {
                    let bounded = try CodeIndexOperations.search(repo: "r", terms: terms, limit: limit, bounds: bounds, on: c)
                    #expect(bounded.rows == reference.rows, "\(terms) limit \(limit) via \(bounded.path)")
                    paths.insert(bounded.path)
                }
            }
        }
        // On SQLite all three ways were taken (candidates only, the FTS table ranked alone, every match).
        if kind == .sqlite { #expect(paths == [.pruned, .ranked, .exhaustive]) }
    }

    @Test("principals: only the token's SHA-256 is stored; lookup, conflict, revoke, re-create", arguments: BackendKind.all)
    func principals(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        #expect(sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let created = try store.sync { store.createPrincipal(name: "alice", role: "admin", token: "tok-alice", completion: $0) }
        #expect(created.name == "alice" && created.role == "admin" && !created.revoked)
        _ = try store.sync { store.createPrincipal(name: "bot", role: "bot", token: "tok-bot", completion: $0) }

        #expect(try store.sync { store.principal(forToken: "tok-alice", completion: $0) }?.name == "alice")
        #expect(try store.sync { store.principal(forToken: "tok-bot", completion: $0) }?.role == "bot")
        #expect(try store.sync { store.principal(forToken: "nope", completion: $0) } == nil)

        let raw = try store.sync { store.rawQuery("SELECT name, role, token_hash FROM principals ORDER BY name", completion: $0) }
        #expect(raw.map { $0[2].text } == [sha256Hex("tok-alice"), sha256Hex("tok-bot")])
        #expect(!raw.flatMap { $0 }.contains { $0.text.contains("tok-") }, "a token is stored in the clear")

        #expect(throws: StoreError(code: StoreError.conflict, message: "principal alice already exists")) {
            try store.sync { store.createPrincipal(name: "alice", role: "viewer", token: "other", completion: $0) }
        }
        let sameToken = #expect(throws: StoreError.self) {
            try store.sync { store.createPrincipal(name: "carol", role: "viewer", token: "tok-bot", completion: $0) }
        }
        #expect(sameToken?.code == StoreError.conflict)

        #expect(try store.sync { store.revokePrincipal(name: "alice", completion: $0) })
        #expect(try store.sync { store.revokePrincipal(name: "alice", completion: $0) } == false)
        #expect(try store.sync { store.revokePrincipal(name: "nobody", completion: $0) } == false)
        #expect(try store.sync { store.principal(forToken: "tok-alice", completion: $0) } == nil)
        #expect(try store.sync { store.principals(completion: $0) }.map { "\($0.name):\($0.revoked)" } == ["alice:true", "bot:false"])

        // A revoked name can be issued again, with a new token; the old one stays dead.
        _ = try store.sync { store.createPrincipal(name: "alice", role: "viewer", token: "tok-alice-2", completion: $0) }
        #expect(try store.sync { store.principal(forToken: "tok-alice", completion: $0) } == nil)
        #expect(try store.sync { store.principal(forToken: "tok-alice-2", completion: $0) }?.role == "viewer")

        // What a server re-checks its open sessions against: live tokens only, by hash, with the current role.
        #expect(try store.sync { store.setPrincipalRole(name: "bot", role: "viewer", completion: $0) })
        #expect(try store.sync { store.setPrincipalRole(name: "nobody", role: "viewer", completion: $0) } == false)
        #expect(try store.sync { store.principal(tokenHash: sha256Hex("tok-bot"), completion: $0) }?.role == "viewer")
        let live = try store.sync { store.liveCredentials(completion: $0) }.sorted { $0.name < $1.name }
        #expect(live == [
            LiveCredential(tokenHash: sha256Hex("tok-alice-2"), name: "alice", role: "viewer"),
            LiveCredential(tokenHash: sha256Hex("tok-bot"), name: "bot", role: "viewer"),
        ])
        _ = try store.sync { store.revokePrincipal(name: "bot", completion: $0) }
        #expect(try store.sync { store.setPrincipalRole(name: "bot", role: "admin", completion: $0) } == false, "a revoked principal got a role")
        #expect(try store.sync { store.liveCredentials(completion: $0) }.map(\.name) == ["alice"])
    }

    @Test("sign-in codes are single use and their sessions die with the principal", arguments: BackendKind.all)
    func signInCodes(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        let later = nowMilliseconds() + 600_000
        _ = try store.sync { store.createPrincipal(name: "alice", role: "admin", token: "tok-alice", completion: $0) }
        #expect(try store.sync { store.createLoginCode(principal: "nobody", code: "c0", expiresAt: later, completion: $0) } == false)
        #expect(try store.sync { store.createLoginCode(principal: "alice", code: "c1", expiresAt: later, completion: $0) })
        let raw = try store.sync { store.rawQuery("SELECT code_hash FROM login_codes", completion: $0) }
        #expect(raw.map { $0[0].text } == [sha256Hex("c1")], "a sign-in code is stored in the clear")

        #expect(try store.sync { store.redeemLoginCode("c1", sessionToken: "s1", sessionExpiresAt: later, completion: $0) }?.name == "alice")
        #expect(try store.sync { store.redeemLoginCode("c1", sessionToken: "s2", sessionExpiresAt: later, completion: $0) } == nil, "used twice")
        #expect(try store.sync { store.redeemLoginCode("nope", sessionToken: "s3", sessionExpiresAt: later, completion: $0) } == nil)
        #expect(try store.sync { store.principal(forToken: "s1", completion: $0) }?.role == "admin")
        #expect(try store.sync { store.principal(forToken: "s2", completion: $0) } == nil)
        #expect(try store.sync { store.liveCredentials(completion: $0) }.map(\.tokenHash).sorted() == [sha256Hex("s1"), sha256Hex("tok-alice")].sorted())

        // Expired codes and sessions do nothing.
        #expect(try store.sync { store.createLoginCode(principal: "alice", code: "old", expiresAt: nowMilliseconds() - 1, completion: $0) })
        #expect(try store.sync { store.redeemLoginCode("old", sessionToken: "s4", sessionExpiresAt: later, completion: $0) } == nil)
        #expect(try store.sync { store.createLoginCode(principal: "alice", code: "c5", expiresAt: later, completion: $0) })
        #expect(try store.sync { store.redeemLoginCode("c5", sessionToken: "s5", sessionExpiresAt: nowMilliseconds() - 1, completion: $0) } != nil)
        #expect(try store.sync { store.principal(forToken: "s5", completion: $0) } == nil, "an expired session still works")

        // A role change follows the principal; revocation ends sessions; a re-created name does not inherit them.
        _ = try store.sync { store.setPrincipalRole(name: "alice", role: "viewer", completion: $0) }
        #expect(try store.sync { store.principal(forToken: "s1", completion: $0) }?.role == "viewer")
        _ = try store.sync { store.revokePrincipal(name: "alice", completion: $0) }
        #expect(try store.sync { store.principal(forToken: "s1", completion: $0) } == nil)
        _ = try store.sync { store.createPrincipal(name: "alice", role: "admin", token: "tok-alice-2", completion: $0) }
        #expect(try store.sync { store.principal(forToken: "s1", completion: $0) } == nil)
        #expect(try store.sync { store.liveCredentials(completion: $0) }.map(\.tokenHash) == [sha256Hex("tok-alice-2")])
    }

    @Test("monitor: buckets upsert by (series, bucket); fingerprint totals add up and samples keep their text; pruning; the views hide samples",
          arguments: BackendKind.all)
    func monitorTables(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        var w = StoreWrite()
        w.monitorBuckets = [MonitorBucketRow(series: "f:f-1", bucket: 1000, valueMilli: 3000), MonitorBucketRow(series: "l:api", bucket: 1000, valueMilli: 812_500)]
        w.fingerprints = [FingerprintRow(id: "f-1", service: "api", key: "db timeout <n>", total: 3, firstSeen: 1000, lastSeen: 1500,
                                         samples: ["db timeout 7 for 'bob'", "with \u{1E} separator"], stack: "File x")]
        _ = try store.sync { store.write(w, completion: $0) }
        w.monitorBuckets = [MonitorBucketRow(series: "f:f-1", bucket: 1000, valueMilli: 5000), MonitorBucketRow(series: "f:f-1", bucket: 2000, valueMilli: 1000)]
        w.fingerprints = [FingerprintRow(id: "f-1", service: "api", key: "db timeout <n>", total: 2, firstSeen: 2000, lastSeen: 2500, samples: ["latest"], stack: nil)]
        _ = try store.sync { store.write(w, completion: $0) }
        let buckets = try store.sync { store.monitorBuckets(since: 0, completion: $0) }
        #expect(buckets.map { "\($0.series)@\($0.bucket)=\($0.valueMilli)" } == ["f:f-1@1000=5000", "l:api@1000=812500", "f:f-1@2000=1000"])
        let row = try #require(try store.sync { store.fingerprints(ids: ["f-1", "f-none"], completion: $0) }.first)
        #expect(row.total == 5 && row.firstSeen == 1000 && row.lastSeen == 2500 && row.samples == ["latest"] && row.stack == "File x")
        let view = try store.sync { store.rawQuery("SELECT * FROM medic_fingerprints", completion: $0) }
        #expect(view.count == 1 && view[0].count == 6 && !view[0].map(\.text).contains("latest"))
        var prune = StoreWrite()
        prune.monitorPruneBefore = 2000
        _ = try store.sync { store.write(prune, completion: $0) }
        #expect(try store.sync { store.monitorBuckets(since: 0, completion: $0) }.map(\.bucket) == [2000])
        #expect(try store.sync { store.fingerprints(ids: nil, limit: 10, completion: $0) }.map(\.id) == ["f-1"])  // last seen 2500
        _ = try store.sync { store.write(StoreWrite(workflows: [workflowRow("i-1", kind: "incident", status: "open")]), completion: $0) }
        #expect(try store.sync { store.rawQuery("SELECT id, status FROM medic_incidents", completion: $0) }.map { $0.map(\.text) } == [["i-1", "open"]])
    }

    @Test("asks: the medic_* views show only their columns; audit rows newest first; marked answers found by similar questions",
          arguments: BackendKind.all)
    func askTables(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        var w = StoreWrite(workflows: [workflowRow("b-1", kind: "bug", status: "fixing"), workflowRow("a-1", kind: "ask")])
        w.proposals = [ProposalRow(
            id: "p-1", title: "t", description: "secret", repo: "r", status: "applied", currentRevision: 1, author: "alice", createdAt: 1,
            updatedAt: 2, attempts: 3, doc: "{}")]
        w.events = [event("proposal:p-1"), event("proposal:p-1"), event("bug:b-1"), event("plain")]
        _ = try store.sync { store.write(w, completion: $0) }
        let proposals = try store.sync { store.rawQuery("SELECT * FROM medic_proposals", completion: $0) }
        #expect(proposals.count == 1 && proposals[0].count == 8)
        #expect(proposals[0].map(\.text).contains("secret") == false)
        #expect(try store.sync { store.rawQuery("SELECT id FROM medic_bugs", completion: $0) }.map(\.[0].text) == ["b-1"])
        let kinds = try store.sync {
            store.rawQuery("SELECT topic_kind, event_kind, count FROM medic_events_by_kind ORDER BY topic_kind", completion: $0)
        }
        #expect(kinds.map { "\($0[0].text)/\($0[2].int)" } == ["bug/1", "plain/1", "proposal/2"])
        // Audit: every column round-trips, newest first, limited.
        var audit = StoreWrite()
        audit.audits = [
            QueryAuditRow(ts: 5, principal: "alice", askId: "a-1", source: "users", question: "how many?", sql: "SELECT 1", rowCount: 1, durationMs: 2,
                          refusalCode: nil, refusalReason: nil),
            QueryAuditRow(ts: 6, principal: "bot", askId: nil, source: "users", question: nil, sql: "DROP TABLE users", rowCount: nil, durationMs: nil,
                          refusalCode: "not_read_only", refusalReason: "only reading"),
        ]
        _ = try store.sync { store.write(audit, completion: $0) }
        let rows = try store.sync { store.queryAudit(limit: 10, completion: $0) }
        #expect(rows.map(\.sql) == ["DROP TABLE users", "SELECT 1"])
        #expect(rows[0].refusalCode == "not_read_only" && rows[0].askId == nil && rows[0].rowCount == nil && rows[0].question == nil)
        #expect(rows[1].askId == "a-1" && rows[1].rowCount == 1 && rows[1].durationMs == 2 && rows[1].question == "how many?")
        #expect(try store.sync { store.queryAudit(limit: 1, completion: $0) }.count == 1)
        // Memory: upsert by ask id; similar questions (stemmed on PostgreSQL) first; hostile search text is only words.
        var memory = StoreWrite()
        memory.askMemories = [
            AskMemoryRow(askId: "a-1", question: "How many users completed KYC?", sql: "SELECT 1", correct: true, comment: nil, principal: "alice", ts: 1),
            AskMemoryRow(askId: "a-2", question: "Average wallet balance by region", sql: "SELECT 2", correct: false, comment: "use avg", principal: "alice", ts: 2),
        ]
        _ = try store.sync { store.write(memory, completion: $0) }
        var again = StoreWrite()
        again.askMemories = [AskMemoryRow(askId: "a-1", question: "How many users completed KYC?", sql: "SELECT 3", correct: true, comment: "kyc_verified", principal: "bob", ts: 3)]
        _ = try store.sync { store.write(again, completion: $0) }
        let found = try store.sync { store.similarAskMemories("how many users have completed kyc", limit: 3, completion: $0) }
        #expect(found.first?.askId == "a-1" && found.first?.sql == "SELECT 3" && found.first?.comment == "kyc_verified")
        #expect(found.count == 1)
        #expect(try store.sync { store.similarAskMemories("wallet region", limit: 3, completion: $0) }.map(\.askId) == ["a-2"])
        #expect(try store.sync { store.similarAskMemories("') OR 1=1; -- \" NEAR(x) *", limit: 3, completion: $0) }.isEmpty)
        #expect(try store.sync { store.similarAskMemories("", limit: 3, completion: $0) }.isEmpty)
    }

    @Test("migrations are recorded once and reopening is idempotent", arguments: BackendKind.all)
    func migrationsIdempotent(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        for round in 1...3 {
            let store = try f.open()
            let versions = try store.sync { store.rawQuery("SELECT version FROM schema_migrations ORDER BY version", completion: $0) }
            #expect(versions.map(\.[0].int) == migrations.map { Int64($0.version) })
            _ = try store.sync { store.write(StoreWrite(events: [event("m")]), completion: $0) }
            #expect(try store.sync { store.head(topic: "m", completion: $0) } == Int64(round))
            store.close()
        }
    }

    @Test("migrations declared outside the store apply once, in version order, and may not reuse a version", arguments: BackendKind.all)
    func extraMigrations(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        // Declared out of order: the step that needs the table comes first in the list, yet runs second.
        let extra = [
            Migration(version: 1001, name: "feature index") { _ in "CREATE INDEX feature_rows_by_text ON feature_rows (text)" },
            Migration(version: 1000, name: "feature rows") { _ in "CREATE TABLE feature_rows (id TEXT PRIMARY KEY, text TEXT NOT NULL)" },
        ]
        for round in 1...2 {
            let store = try f.open()
            let applied = try store.sync { store.applyMigrations(extra, completion: $0) }
            #expect(applied == (round == 1 ? [1000, 1001] : []))
            _ = try store.sync { store.rawQuery("INSERT INTO feature_rows (id, text) VALUES ($1, 'x')", [.text("r\(round)")], completion: $0) }
            let versions = try store.sync { store.rawQuery("SELECT version FROM schema_migrations ORDER BY version", completion: $0) }
            #expect(versions.map(\.[0].int) == migrations.map { Int64($0.version) } + [1000, 1001])
            store.close()
        }
        // A version the store (or another feature) already uses is refused before anything runs.
        let store = try f.open()
        defer { store.close() }
        let taken = [Migration(version: 1, name: "mine") { _ in "CREATE TABLE never_made (x INTEGER)" }]
        #expect(throws: StoreError.self) { try store.sync { store.applyMigrations(taken, completion: $0) } }
        let badVersion = [Migration(version: 0, name: "zero") { _ in "CREATE TABLE never_made (x INTEGER)" }]
        #expect(throws: StoreError.self) { try store.sync { store.applyMigrations(badVersion, completion: $0) } }
        let twice = [
            Migration(version: 2000, name: "a") { _ in "CREATE TABLE never_made (x INTEGER)" },
            Migration(version: 2000, name: "b") { _ in "CREATE TABLE never_made_either (x INTEGER)" },
        ]
        #expect(throws: StoreError.self) { try store.sync { store.applyMigrations(twice, completion: $0) } }
        #expect(throws: StoreError.self) { try store.sync { store.rawQuery("SELECT count(*) FROM never_made", completion: $0) } }
        // A failing step rolls back the whole run: the good step before it is not recorded either.
        let failing = [
            Migration(version: 3000, name: "good") { _ in "CREATE TABLE half_made (x INTEGER)" },
            Migration(version: 3001, name: "bad") { _ in "CREATE TABLE feature_rows (x INTEGER)" },
        ]
        #expect(throws: StoreError.self) { try store.sync { store.applyMigrations(failing, completion: $0) } }
        let after = try store.sync { store.rawQuery("SELECT count(*) FROM schema_migrations WHERE version >= 3000", completion: $0) }
        #expect(after.first?[0].int == 0)
        // And the store still works afterwards.
        _ = try store.sync { store.write(StoreWrite(events: [event("after-migrations")]), completion: $0) }
        #expect(try store.sync { store.head(topic: "after-migrations", completion: $0) } == 1)
    }

    @Test("every acknowledged event survives close and reopen", arguments: BackendKind.all)
    func restartDurability(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        let acked = Locked<[StoredEvent]>([])
        concurrently(4) { t in
            for i in 0..<25 {
                if let out = try? store.sync({ store.write(StoreWrite(events: [event("r\(t % 2)", data: "\"\(t)-\(i)\"")]), completion: $0) }) {
                    acked.withLock { $0 += out.events }
                }
            }
        }
        // Writes queued right before close are still served (close drains the queue).
        let late = Locked<Result<WriteOutcome, StoreError>?>(nil)
        store.write(StoreWrite(events: [event("r0", data: "\"late\"")])) { r in late.withLock { $0 = r } }
        store.close()
        let lateOutcome = try #require(late.get).get()
        acked.withLock { $0 += lateOutcome.events }
        #expect(acked.get.count == 101)
        // After close, requests fail at once instead of hanging.
        #expect(throws: StoreError.self) { try store.sync { store.head(topic: "r0", completion: $0) } }

        let reopened = try f.open()
        defer { reopened.close() }
        for topic in ["r0", "r1"] {
            let stored = try reopened.sync { reopened.events(topic: topic, after: 0, limit: 1000, completion: $0) }
            #expect(stored == acked.get.filter { $0.topic == topic }.sorted { $0.seq < $1.seq })
        }
        // The sequence continues where it stopped.
        let next = try reopened.sync { reopened.write(StoreWrite(events: [event("r0")]), completion: $0) }
        #expect(next.events.first?.seq == Int64(acked.get.filter { $0.topic == "r0" }.count + 1))
    }

    @Test("listen reports (topic, head) after commits", arguments: BackendKind.all)
    func listenAfterCommit(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        let seen = Locked<[String: Int64]>([:])
        let resyncs = Locked(0)
        store.listen { note in
            switch note {
            case .head(let topic, let head): seen.withLock { $0[topic] = max($0[topic] ?? 0, head) }
            case .resync: resyncs.withLock { $0 += 1 }
            case .presence, .forwarded, .answered: break
            }
        }
        // Postgres: LISTEN is registered asynchronously by the listener thread; keep writing until heard.
        var heads: Int64 = 0
        try waitUntil("a notification arrives") {
            heads = try store.sync { store.write(StoreWrite(events: [event("n"), event("n"), event("o")]), completion: $0) }
                .events.filter { $0.topic == "n" }.map(\.seq).max() ?? 0
            return seen.get["n"] != nil
        }
        try waitUntil("the last head is reported") { seen.get["n"] == heads }
        #expect(seen.get["o"] == heads / 2)
        if kind == .postgres {
            // Kill the worker's and the listener's backends: both reconnect and notifications resume.
            #expect(resyncs.get == 1)   // the first connection
            #expect(try f.killBackends() == 2)
            try waitUntil("notifications resume after the backends were killed") {
                _ = try? store.sync { store.write(StoreWrite(events: [event("n")]), completion: $0) }
                return (seen.get["n"] ?? 0) > heads
            }
            // What was committed while the listener was away is not heard: it asks for a resync.
            #expect(resyncs.get == 2)
        } else {
            #expect(resyncs.get == 0)
        }
    }

    @Test("nodes: heartbeats, presence rows per node, a dead node's rows deleted", arguments: BackendKind.all)
    func nodesAndPresence(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        let heard = Locked<[String]>([])
        store.listen { note in if case .presence(let topic) = note { heard.withLock { $0.append(topic) } } }
        func beat(_ id: String, at t: Int64) throws -> [NodeRow] {
            try store.sync { store.heartbeat(NodeRow(id: id, address: "http://\(id)", startedAt: 1, heartbeatAt: t), deadAfter: 10_000, forgetAfter: 100_000, completion: $0) }
        }
        #expect(try beat("b", at: 1_000).map(\.id) == ["b"])
        #expect(try beat("a", at: 2_000).map(\.id) == ["a", "b"])          // this node first, then by name
        #expect(try beat("b", at: 3_000).map(\.id) == ["b", "a"])
        try store.sync { store.setPresence(node: "a", members: [("proposal:p1", #"[{"principal":"ann","role":"admin","since":5}]"#)], completion: $0) }
        try store.sync { store.setPresence(node: "b", members: [("proposal:p1", #"[{"principal":"bob","role":"viewer","since":6}]"#), ("proposal:p2", "[]")], completion: $0) }
        #expect(try store.sync { store.presence(topic: "proposal:p1", completion: $0) }.map(\.node) == ["a", "b"])
        // An empty string deletes the node's row.
        try store.sync { store.setPresence(node: "b", members: [("proposal:p2", "")], completion: $0) }
        #expect(try store.sync { store.presence(topic: "proposal:p2", completion: $0) }.isEmpty)
        // "a" falls silent: b's heartbeat after deadAfter deletes a's presence (not its node row, until forgetAfter).
        let nodes = try beat("b", at: 2_000 + 10_001)
        #expect(nodes.map(\.id) == ["b", "a"] && nodes[1].heartbeatAt == 2_000)
        #expect(try store.sync { store.presence(topic: "proposal:p1", completion: $0) }.map(\.node) == ["b"])
        #expect(try beat("b", at: 2_000 + 100_001).map(\.id) == ["b"])
        try store.sync { store.clearPresence(node: "b", completion: $0) }
        #expect(try store.sync { store.presence(topic: "proposal:p1", completion: $0) }.isEmpty)
        if kind == .postgres {
            // Presence changes are announced to every node (this one included) once committed.
            try waitUntil("a presence notification arrives") {
                try store.sync { store.setPresence(node: "c", members: [("proposal:p9", "[]")], completion: $0) }
                return heard.get.contains("proposal:p9")
            }
        }
    }

    @Test("leases: one owner per instance, renewed by the heartbeat, claimed after expiry by a node reaching the repository", arguments: BackendKind.all)
    func leases(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        func claim(_ w: String, _ node: String, repo: String = "", at t: Int64) throws -> LeaseRow {
            try store.sync { store.claimLease(workflow: w, node: node, repo: repo, now: t, leaseMs: 10_000, completion: $0) }
        }
        func beat(_ node: String, at t: Int64, repos: [String]) throws -> HeartbeatResult {
            try store.sync {
                store.heartbeat(NodeRow(id: node, address: "", startedAt: 1, heartbeatAt: t), deadAfter: 10_000, forgetAfter: 3_600_000, leaseMs: 10_000,
                                reachableRepos: repos, claimLimit: 16, completion: $0)
            }
        }
        // a takes p1 (in repo "demo"); b cannot while a's lease runs, and a claiming again keeps its claimed_at.
        #expect(try claim("proposal:p1", "a", repo: "demo", at: 1_000) == LeaseRow(workflow: "proposal:p1", node: "a", repo: "demo", expiresAt: 11_000, claimedAt: 1_000))
        #expect(try claim("proposal:p1", "b", at: 5_000).node == "a")
        #expect(try claim("proposal:p1", "a", at: 6_000) == LeaseRow(workflow: "proposal:p1", node: "a", repo: "demo", expiresAt: 16_000, claimedAt: 1_000))
        _ = try claim("proposal:p2", "a", repo: "elsewhere", at: 6_000)
        // a's heartbeat renews both; b's claims nothing while they run.
        #expect(Set(try beat("a", at: 8_000, repos: ["demo"]).held) == ["proposal:p1", "proposal:p2"])
        let early = try beat("b", at: 9_000, repos: ["demo", "elsewhere"])
        #expect(early.claimed.isEmpty && early.held.isEmpty)
        // a falls silent. After expiry b claims only what it reaches (p1 in demo; p2's "elsewhere" it does not).
        let later = try beat("b", at: 18_001, repos: ["demo"])
        #expect(later.claimed.map(\.workflow) == ["proposal:p1"] && later.claimed.first?.node == "a")
        #expect(try claim("proposal:p1", "a", at: 18_500).node == "b")   // a is back: the lease is b's now
        #expect(try beat("a", at: 18_600, repos: ["demo"]).held == ["proposal:p2"])   // a learns it lost p1
        // Released leases are gone; a node restarting under its name expires its own.
        try store.sync { store.releaseLease(workflow: "proposal:p1", node: "a", completion: $0) }   // not a's: no effect
        #expect(try store.sync { store.leases(completion: $0) }.map(\.node) == ["b", "a"])
        try store.sync { store.releaseLease(workflow: "proposal:p1", node: "b", completion: $0) }
        try store.sync { store.expireLeases(node: "a", completion: $0) }
        #expect(try store.sync { store.leases(completion: $0) }.map(\.expiresAt) == [0])
        #expect(try beat("c", at: 19_000, repos: ["elsewhere"]).claimed.map(\.workflow) == ["proposal:p2"])
        // Two silent nodes: one heartbeat takes all of one node's work (a bug and its proposal stay together), the
        // next heartbeat the other's.
        for (w, n) in [("bug:b1", "x"), ("proposal:p3", "x"), ("proposal:p4", "y"), ("proposal:p5", "x")] { _ = try claim(w, n, repo: "demo", at: 20_000) }
        _ = try claim("proposal:p4", "y", at: 20_001)   // y renewed last: x's leases expire first
        #expect(try beat("d", at: 40_000, repos: ["demo"]).claimed.map(\.workflow).sorted() == ["bug:b1", "proposal:p3", "proposal:p5"])
        #expect(try beat("d", at: 40_100, repos: ["demo"]).claimed.map(\.workflow) == ["proposal:p4"])
    }

    @Test("leases: nodes racing for one instance get one owner", arguments: BackendKind.all)
    func leaseRace(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let opened = try (0..<4).map { _ in try f.open() }
        defer { for s in opened { s.close() } }
        for round in 0..<20 {
            let owners = Locked<[String]>([])
            let done = DispatchGroup()
            for (i, store) in opened.enumerated() {
                done.enter()
                store.claimLease(workflow: "proposal:race\(round)", node: "n\(i)", repo: "", now: 1_000, leaseMs: 10_000) { result in
                    if case .success(let lease) = result { owners.withLock { $0.append(lease.node) } }
                    done.leave()
                }
            }
            #expect(done.wait(timeout: .now() + 30) == .success)
            // Every claimant was told the same owner.
            #expect(owners.get.count == 4 && Set(owners.get).count == 1, "round \(round): \(owners.get)")
        }
    }

    @Test("forwarded commands: stored for the owner, answered once, announced both ways", arguments: BackendKind.all)
    func forwardedCommands(_ kind: BackendKind) throws {
        let f = try StoreFixture(kind)
        let store = try f.open()
        defer { store.close() }
        let heard = Locked<[StoreNotification]>([])
        store.listen { note in
            switch note {
            case .forwarded, .answered: heard.withLock { $0.append(note) }
            default: break
            }
        }
        let command = ForwardedCommand(toNode: "a", fromNode: "b", workflow: "proposal:p1", principal: "ann", role: "admin",
                                       request: #"{"type":"rollback","id":"r1","proposal":"p1"}"#, createdAt: 5)
        let id = try store.sync { store.forward(command, completion: $0) }
        var stored = command
        stored.id = id
        #expect(try store.sync { store.pendingForwarded(node: "a", completion: $0) } == [stored])
        #expect(try store.sync { store.pendingForwarded(node: "b", completion: $0) }.isEmpty)
        #expect(try store.sync { store.forwardedAnswer(id: id, completion: $0) } == nil)
        try store.sync { store.answerForwarded(id: id, answer: #"{"type":"ack","id":"r1"}"#, now: 6, completion: $0) }
        try store.sync { store.answerForwarded(id: id, answer: "second", now: 7, completion: $0) }   // the first answer stays
        #expect(try store.sync { store.forwardedAnswer(id: id, completion: $0) } == #"{"type":"ack","id":"r1"}"#)
        #expect(try store.sync { store.pendingForwarded(node: "a", completion: $0) }.isEmpty)
        if kind == .postgres {
            // LISTEN is registered asynchronously by the listener thread: forward until one is heard, then answer it.
            var last: Int64 = 0
            try waitUntil("a forwarded command is announced") {
                last = try store.sync { store.forward(command, completion: $0) }
                return heard.get.contains(.forwarded(node: "a", id: last))
            }
            try store.sync { store.answerForwarded(id: last, answer: "{}", now: 8, completion: $0) }
            try waitUntil("its answer is announced to the sender") { heard.get.contains(.answered(node: "b", id: last)) }
        }
    }

    @Test("unsupported URLs are refused")
    func badURL() throws {
        #expect(throws: StoreError.self) { try Store.backend(for: "mysql://x") }
        #expect(try Store.backend(for: "sqlite:/tmp/x.db") == .sqlite(path: "/tmp/x.db"))
        #expect(try Store.backend(for: "sqlite:///tmp/x.db") == .sqlite(path: "/tmp/x.db"))
        #expect(try Store.backend(for: "postgresql://h/db") == .postgres(url: "postgresql://h/db"))
    }
}
