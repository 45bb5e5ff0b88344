// WorkflowInboxTests: the store-then-act contract's ways to answer a command — acked with its record, held for a
// later step (an incident's file_bug, acked once the bug is filed), failed after the write — and the steps that
// record what already happened (`mustCommit`): retried even with a command, stored even when the id is a repeat.
import Logging
import Protocol
import Store
import Testing

@testable import MedicHost

@Suite struct WorkflowInboxTests {
    final class Harness {
        let clock = FakeClock()
        lazy var store = FakeStore(clock: clock)
        var replies: [String: [Result<JSONObject, ProtocolError>]] = [:]
        var adopted: [String] = []
        lazy var inbox = WorkflowInbox<String>(name: "test", sink: store, clock: clock, logger: Logger(label: "test")) { [unowned self] event, _ in
            var write = StoreWrite()
            write.events = [NewEvent(topic: "t", kind: event, data: "{}", ts: 0)]
            var step = WorkflowStep(write: write, ackFields: ["did": .string(event)], adopt: { self.adopted.append(event) }, effects: {})
            switch event {
            case "hold": step.answer = .hold
            case "refused":
                step.answer = .fail(ProtocolError(code: .invalidState, message: "no bug was filed"))
                step.mustCommit = true
            case "filed": step.mustCommit = true
            default: break
            }
            return step
        }

        func command(_ id: String) -> PendingCommand {
            PendingCommand(principal: "ann", id: id, ackFields: [:]) { [unowned self] result in self.replies[id, default: []].append(result) }
        }

        var kinds: [String] { store.events["t"]?.map(\.kind) ?? [] }
    }

    @Test func aHeldCommandIsAnsweredByTheLaterStepThatRecordsTheOutcome() {
        let h = Harness()
        let command = h.command("c1")
        h.inbox.feed("hold", command: command)
        h.clock.run()
        #expect(h.adopted == ["hold"] && h.replies["c1"] == nil)
        #expect(h.store.commands.isEmpty)  // no record yet: the ack is not known
        // The outcome's write fails twice: retried (not failed back), then acked with its record.
        h.store.failNext = 2
        h.inbox.feed("filed", command: command)
        h.clock.advance(milliseconds: 10_000)
        #expect(h.adopted == ["hold", "filed"] && h.kinds == ["hold", "filed"])
        guard case .success(let ack)? = h.replies["c1"]?.first, h.replies["c1"]?.count == 1 else { Issue.record("\(h.replies)"); return }
        #expect(ack["did"]?.stringValue == "filed")
        #expect(h.store.commands["ann\u{0}c1"]?.contains("filed") == true)
    }

    @Test func aFailedAnswerComesAfterTheWriteAndLeavesNoRecord() {
        let h = Harness()
        h.inbox.feed("refused", command: h.command("c2"))
        h.clock.run()
        #expect(h.adopted == ["refused"] && h.kinds == ["refused"])
        guard case .failure(let error)? = h.replies["c2"]?.first else { Issue.record("\(h.replies)"); return }
        #expect(error.code == .invalidState && h.store.commands.isEmpty)
    }

    @Test func anOrdinaryCommandsFailedWriteFailsItAndChangesNothing() {
        let h = Harness()
        h.store.failNext = 1
        h.inbox.feed("ack", command: h.command("c3"))
        h.clock.advance(milliseconds: 10_000)
        guard case .failure(let error)? = h.replies["c3"]?.first else { Issue.record("\(h.replies)"); return }
        #expect(error.code == .storeUnavailable && h.adopted.isEmpty && h.kinds.isEmpty)
    }

    @Test func anOutcomeIsStoredEvenWhenItsCommandIdIsARepeat() {
        let h = Harness()
        h.inbox.feed("ack", command: h.command("c4"))
        h.clock.run()
        h.inbox.feed("filed", command: h.command("c4"))
        h.clock.run()
        #expect(h.replies["c4"]?.count == 2)
        guard case .success(let again)? = h.replies["c4"]?.last else { Issue.record("\(h.replies)"); return }
        #expect(again["did"]?.stringValue == "ack")  // the first answer
        #expect(h.kinds == ["ack", "filed"] && h.adopted == ["ack", "filed"])
    }
}
