// WorkflowInbox: the executor contract every workflow instance keeps — events are applied one at a time; each
// step's store write (its row, its events, the command's idempotency record) is durable before the machine
// moves on, before the command is acked and before the step's effects run. A failed write of a command's step
// fails the command and changes nothing; a failed write of an internal step is retried with backoff (the
// machine does not move until it is stored). A step may hold its command (`WorkflowStep.Answer.hold`) for a later
// step to answer — one that records what an effect did (`mustCommit`: retried like an internal step). Incidents use it; proposals, bugs and asks keep their own copies
// of the same pattern (moving them onto this is listed in ARCHITECTURE.md).
import Logging
import Protocol
import Store

/// What one event does, prepared by the owner on a copy of its machine.
struct WorkflowStep {
    /// What the step's command (if any) is answered once the write is durable.
    enum Answer {
        /// `ackFields`, stored with the write as the command's idempotency record.
        case ack
        /// Nothing yet: the owner keeps the command and feeds it with a later event whose step answers it (e.g. a
        /// command whose ack names what an effect of this step makes). No record is stored for it here.
        case hold
        /// This error (the command did not do what it asked); no record is stored.
        case fail(ProtocolError)
    }

    var write: StoreWrite
    var ackFields: JSONObject
    /// Makes the prepared machine the instance's (called once the write is durable).
    var adopt: () -> Void
    /// The step's effects (model requests, bug reports, …), run after `adopt`.
    var effects: () -> Void
    var answer: Answer = .ack
    /// The step records what already happened elsewhere (a held command's outcome): a failed write is retried
    /// like an internal step's, even with a command, which is answered once it is stored.
    var mustCommit = false
}

final class WorkflowInbox<Event> {
    private struct Input {
        var event: Event
        var command: PendingCommand?
    }

    private let sink: any Publisher
    private let clock: any WorkflowClock
    private let logger: Logger
    private let name: String
    /// Prepares a step; nil when the machine refused the event (the owner has replied to the command).
    private let prepare: (Event, PendingCommand?) -> WorkflowStep?
    private var queue: [Input] = []
    private var writing = false

    init(name: String, sink: any Publisher, clock: any WorkflowClock, logger: Logger, prepare: @escaping (Event, PendingCommand?) -> WorkflowStep?) {
        self.name = name
        self.sink = sink
        self.clock = clock
        self.logger = logger
        self.prepare = prepare
    }

    /// Inputs queued or a write in flight.
    var isBusy: Bool { writing || !queue.isEmpty }

    func feed(_ event: Event, command: PendingCommand? = nil) {
        queue.append(Input(event: event, command: command))
        drain()
    }

    private func drain() {
        while !writing, !queue.isEmpty {
            let input = queue.removeFirst()
            guard var step = prepare(input.event, input.command) else { continue }
            if let command = input.command, let id = command.id, case .ack = step.answer {
                step.write.command = CommandRecord(principal: command.principal, commandId: id, response: PipelineService.ackText(id, step.ackFields))
            }
            writing = true
            commit(step, command: input.command, attempt: 0)
        }
    }

    private func commit(_ step: WorkflowStep, command: PendingCommand?, attempt: Int) {
        sink.commit(step.write) { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(.committed):
                step.adopt()
                switch step.answer {
                case .ack: command?.reply(.success(step.ackFields))
                case .hold: break
                case .fail(let error): command?.reply(.failure(error))
                }
                step.effects()
            case .success(.duplicateCommand(let response)):
                command?.reply(.success(PipelineService.fields(ofAck: response)))
                if step.mustCommit {
                    // What happened is stored all the same (without the record the id already has).
                    var again = step
                    again.write.command = nil
                    return self.commit(again, command: nil, attempt: 0)
                }
            case .failure(let error):
                if let command, !step.mustCommit {
                    command.reply(.failure(ProtocolError(code: .storeUnavailable, message: error.message)))
                } else {
                    let delay = min(UInt64(1) << UInt64(min(attempt, 4)), 10)
                    self.logger.error("storing \(self.name)'s progress failed (\(error)); retrying in \(delay)s")
                    self.clock.schedule(afterNanoseconds: delay * 1_000_000_000) { self.commit(step, command: command, attempt: attempt + 1) }
                    return
                }
            }
            self.writing = false
            self.drain()
        }
    }
}
