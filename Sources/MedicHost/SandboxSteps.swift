// SandboxSteps: the repair loop's executor steps — deploy a revision into a sandbox, run the tests (streamed),
// analyse the failure, ask the model for a fix — for whatever runs a `ProposalMachine`: a proposal
// (PipelineService) or one approach of a bug (BugService). The target says where results go and what its
// events are tagged with; the steps know neither proposals nor bugs.
import EventLoop
import Foundation
import Logging
import Pipeline
import Protocol
import Sandbox

/// What the steps work for. Loop-bound.
protocol StepTarget: AnyObject {
    /// The repository its sandboxes copy (nil: not configured on this server).
    var repository: RepositoryConfig? { get }
    var repoName: String { get }
    /// Its workspaces live in `<data>/sandboxes/<sandboxName>`.
    var sandboxName: String { get }
    var workspace: (any SandboxWorkspace)? { get set }
    var testRun: (any RunningTest)? { get set }
    var lastRun: TestRunResult? { get set }
    /// A revision of its machine.
    func revision(_ number: Int) -> Revision?
    /// Labels of its model requests (`purpose`, `title`, ids; the scripted model matches on them).
    var modelLabels: [String: String] { get }
    /// Feeds a step's result to its machine.
    func deliver(_ event: ProposalEvent)
    /// A stored event of the target (test_started, test_output); the target adds its tags.
    func publishStored(kind: String, data: JSONObject)
    /// An ephemeral event (fix_delta).
    func publishEphemeral(kind: String, data: JSONObject)
}

/// The steps, shared by every target.
final class SandboxSteps {
    let configuration: MedicConfiguration
    let executors: WorkflowExecutors
    let logger: Logger
    /// The code navigator's `locate` (repository, evidence, limit → repository paths), when configured.
    var locate: ((String, String, Int, @escaping ([String]) -> Void) -> Void)?
    /// The code navigator's search (repository, mode, query, limit → its JSON answer), offered to the model
    /// as the `search_code` tool when configured.
    var search: ((String, String, String, Int, @escaping (Result<JSONValue, ProtocolError>) -> Void) -> Void)?

    init(configuration: MedicConfiguration, executors: WorkflowExecutors, logger: Logger) {
        self.configuration = configuration
        self.executors = executors
        self.logger = logger
    }

    /// Performs a repair-loop action; false when the action is not a step (the caller's own).
    @discardableResult
    func perform(_ action: ProposalAction, for target: any StepTarget) -> Bool {
        switch action {
        case .deploy(let revision): deploy(target, revision: revision)
        case .runTests(let revision): runTests(target, revision: revision)
        case .analyze: analyze(target)
        case .requestFix(let attempt, let context): requestFix(target, attempt: attempt, context: context, retry: nil)
        case .reaskFix(let attempt, let context, let previous, let complaint):
            logger.info("\(target.sandboxName): malformed fix reply; asking once more")
            requestFix(target, attempt: attempt, context: context, retry: (previous, complaint))
        case .stopWork:
            // The test run is cancelled (its result is ignored by the machine); a model request already sent
            // finishes and is ignored too.
            target.testRun?.cancel()
            target.testRun = nil
        case .checkBase, .runPreApplyTests, .applyToRepository, .runPostApply, .revert, .rollback, .setStatus, .publish, .record, .reject,
            .ignored:
            return false
        }
        return true
    }

    // MARK: sandboxes

    /// What sandboxes see: the configured extra read-only paths; Medic's data, store, keys and config
    /// covered wherever they lie; /tmp bounded by the disk quota.
    var sandboxView: SandboxView {
        SandboxView(readOnlyPaths: configuration.sandboxReadOnlyPaths, hiddenPaths: configuration.sandboxHiddenPaths,
                    tmpSizeBytes: configuration.sandboxDiskQuotaMB * 1_000_000)
    }

    /// A test run of `repository`'s commands in `workspace` under the configured bounds and view.
    func sandboxedRun(workspace: String, repository: RepositoryConfig) -> TestRunConfiguration {
        TestRunConfiguration(
            workspacePath: workspace, setupCommand: repository.setupCommand, testCommand: repository.testCommand,
            timeoutNanoseconds: UInt64(configuration.testTimeoutSeconds) * 1_000_000_000, allowNetwork: repository.allowNetwork,
            view: sandboxView, diskQuotaBytes: configuration.sandboxDiskQuotaMB * 1_000_000)
    }

    /// `<data>/sandboxes`: one directory per workflow instance, holding its workspaces.
    var sandboxesRoot: String { (configuration.dataDirectory as NSString).appendingPathComponent("sandboxes") }

    func sandboxParent(_ name: String) -> String { (sandboxesRoot as NSString).appendingPathComponent(name) }

    static func workspaceChanges(_ changes: [FileChange]) -> [WorkspaceChange] {
        changes.map { WorkspaceChange(path: $0.path, action: WorkspaceChange.Action(rawValue: $0.action.rawValue) ?? .modify, content: $0.content) }
    }

    private func deploy(_ target: any StepTarget, revision number: Int) {
        guard let repository = target.repository else {
            return target.deliver(.sandboxFailed(reason: "repository '\(target.repoName)' is not configured on this server"))
        }
        guard let revision = target.revision(number) else { return }
        let previous = target.workspace
        target.workspace = nil
        previous?.remove { _ in }
        executors.sandbox.createWorkspace(from: repository.path, parentDirectory: sandboxParent(target.sandboxName)) { [weak self] result in
            guard let self else { return }
            switch result {
            case .failure(let error):
                target.deliver(.sandboxFailed(reason: "could not copy the repository: \(error)"))
            case .success(let workspace):
                target.workspace = workspace
                switch workspace.apply(Self.workspaceChanges(revision.changes)) {
                case .failure(let error):
                    target.deliver(.sandboxFailed(reason: "the revision's changes could not be applied: \(error)"))
                case .success:
                    self.executors.sandbox.whenIsolationKnown { isolation in
                        let visible = isolation.visiblePaths(workspace: workspace.path, view: self.sandboxView)
                            .map { SandboxPath(path: $0.path, writable: $0.mode == .rw) }
                        target.deliver(.sandboxReady(isolation: isolation.mode.rawValue, durationMs: workspace.creationMilliseconds,
                                                     warning: isolation.warning, visible: visible, baseCommit: workspace.baseCommit))
                    }
                }
            }
        }
    }

    private func runTests(_ target: any StepTarget, revision: Int) {
        guard let repository = target.repository, let workspace = target.workspace else {
            return target.deliver(.sandboxFailed(reason: "no sandbox to test in"))
        }
        executors.sandbox.whenIsolationKnown { [weak self] isolation in
            guard let self else { return }
            let config = self.sandboxedRun(workspace: workspace.path, repository: repository)
            self.publishTestStarted(target, revision: revision, command: repository.testCommand, setup: repository.setupCommand, isolation: isolation.mode, phase: nil)
            target.testRun = self.executors.sandbox.startRun(
                config, isolation: isolation, onLines: self.outputStreamer(target, revision: revision, phase: nil),
                onFinished: { result in
                    target.testRun = nil
                    target.lastRun = result
                    if let spawnError = result.spawnError {
                        return target.deliver(.sandboxFailed(reason: "the test command could not start: \(spawnError)"))
                    }
                    target.deliver(.testsFinished(Self.testResult(result), outputSummary: String(result.outputTail.suffix(16_000))))
                })
        }
    }

    /// The contract's result of a finished run (counts from the runner's summary line).
    static func testResult(_ result: TestRunResult) -> TestResult {
        let counts = TestSummaryParser.parse(result.outputTail)
        let exitCode = result.exitCode ?? (result.signal.map { 128 + $0 } ?? -1)
        return TestResult(
            exitCode: exitCode, passed: counts.passed, failed: counts.failed, durationMs: result.durationMs,
            timedOut: result.timedOut, signal: result.signal, truncated: result.truncated,
            diskQuotaExceeded: result.diskQuotaExceeded ? true : nil)
    }

    /// `test_started` for a run of `command` (`phase`: nil for the revision's own run, else what the run is for).
    func publishTestStarted(_ target: any StepTarget, revision: Int, command: String, setup: String?, isolation: SandboxIsolation.Mode, phase: String?) {
        var data: JSONObject = [
            "revision": .int(Int64(revision)), "command": .string(command), "setup_command": setup.map { .string($0) } ?? .null,
            "isolation": .string(isolation.rawValue),
        ]
        if let phase { data["phase"] = .string(phase) }
        target.publishStored(kind: "test_started", data: data)
    }

    /// Streams a run's output as `test_output` events, batched by `OutputBatcher`.
    func outputStreamer(_ target: any StepTarget, revision: Int, phase: String?) -> (RunOutputStream, [String]) -> Void {
        { stream, lines in
            for batch in OutputBatcher.batches(lines) {
                var data: JSONObject = [
                    "revision": .int(Int64(revision)), "stream": .string(stream.rawValue), "lines": .array(batch.map { .string($0) }),
                ]
                if let phase { data["phase"] = .string(phase) }
                target.publishStored(kind: "test_output", data: data)
            }
        }
    }

    private func analyze(_ target: any StepTarget) {
        target.deliver(.analyzed(Self.analysis(of: target.lastRun, workspace: target.workspace?.path)))
    }

    static func analysis(of run: TestRunResult?, workspace: String?) -> FailureAnalysis {
        FailureAnalyzer.analyze(
            output: run?.outputTail ?? "", exitCode: run?.exitCode ?? -1, timedOut: run?.timedOut ?? false,
            signal: run?.signal, repositoryFiles: nil, workspaceRoot: workspace,
            diskQuotaExceeded: run?.diskQuotaExceeded ?? false)
    }

    // MARK: the model

    /// Bytes read of one file for a prompt: more than the prompt shows (`PromptBudget.maxFileBytes`, 24 KiB),
    /// so the prompt's own cut marks a longer file as truncated.
    static let promptFileReadBytes = 32 << 10

    /// Builds the fix prompt (files read from the sandbox) and asks the model; a re-ask adds the malformed
    /// reply and the parser's complaint as the next turns. The machine decides whether to re-ask.
    private func requestFix(_ target: any StepTarget, attempt: Int, context: FixContext, retry: (reply: String, complaint: String)?) {
        // The analysis's locations and the patch's files first; then what the code navigator locates from the
        // failure (its messages and output), so the model also sees code the failure points at indirectly.
        let known = context.relevantPaths()
        guard let locate, let analysis = context.analysis, known.count < 10 else {
            return ask(target, attempt: attempt, context: context, paths: known, retry: retry)
        }
        let evidence = ([analysis.rootCause] + analysis.messages + [context.testOutput ?? ""]).joined(separator: "\n")
        locate(target.repoName, String(evidence.suffix(16_000)), 5) { [weak self] located in
            let extra = located.filter { !known.contains($0) }.prefix(10 - known.count)
            self?.ask(target, attempt: attempt, context: context, paths: known + extra, retry: retry)
        }
    }

    /// Reads `paths` from the sandbox, builds the prompt and asks the model.
    private func ask(_ target: any StepTarget, attempt: Int, context: FixContext, paths: [String], retry: (reply: String, complaint: String)?) {
        let changed = Set(context.changes.map(\.path))
        readFiles(paths[...], workspace: target.workspace, notePathsOutside: changed) { [weak self] files, notes in
            let prompt = FixPrompt.build(context: context, relevantFiles: files, fileNotes: notes)
            var messages = [ModelMessage(.user, prompt.user)]
            if let retry { messages += [ModelMessage(.assistant, retry.reply), ModelMessage(.user, retry.complaint)] }
            var labels = target.modelLabels
            labels["purpose"] = "fix"
            labels["attempt"] = String(attempt)
            guard let self else { return }
            // The model may look further: the navigator, and files of the sandbox (read as untrusted, like above).
            let tools = self.codeTools(repo: target.repoName) { path, done in
                guard let workspace = target.workspace else { return done(.failure(.init(message: "the sandbox is gone"))) }
                workspace.readFile(path, maxBytes: Self.promptFileReadBytes) { read in
                    switch read {
                    case .file(let bytes, _): done(.success(String(decoding: bytes, as: UTF8.self)))
                    case .missing: done(.failure(.init(message: "no file \(path)")))
                    case .symbolicLink, .notRegularFile, .refused: done(.failure(.init(message: read.unreadableNote(path) ?? "\(path) cannot be read")))
                    }
                }
            }
            self.complete(
                ModelRequest(system: prompt.system, messages: messages, labels: labels), tools: tools, for: target,
                deltaFields: ["attempt": .int(Int64(attempt))]
            ) { result in
                switch result {
                case .failure(let error): target.deliver(.modelFailed(reason: error.description))
                case .success(let response): target.deliver(.modelReplied(text: response.text))
                }
            }
        }
    }

    /// One model exchange, its text streamed to the target as `fix_delta` (with `deltaFields`).
    func complete(
        _ request: ModelRequest, for target: any StepTarget, deltaFields: JSONObject,
        completion: @escaping (Result<ModelResponse, ModelError>) -> Void
    ) {
        executors.model.complete(
            request,
            onDelta: { delta in
                guard case .text(let text) = delta else { return }
                var data = deltaFields
                data["text"] = .string(text)
                target.publishEphemeral(kind: "fix_delta", data: data)
            },
            completion: completion)
    }

    /// Reads files for a prompt one after another from the workspace. The workspace is untrusted (tests ran in
    /// it): files are read without following symbolic links, regular files only, bounded (DESIGN invariant 6),
    /// and off the loop thread (`SandboxWorkspace.readFile`). Missing files are skipped; a refused path is
    /// noted only when it is in `notePathsOutside` (a path the patch names), else skipped (e.g. /usr/lib/…).
    func readFiles(
        _ paths: ArraySlice<String>, workspace: (any SandboxWorkspace)?, notePathsOutside: Set<String>,
        files: [(path: String, content: String)] = [], notes: [String] = [],
        completion: @escaping ([(path: String, content: String)], [String]) -> Void
    ) {
        guard let workspace, let path = paths.first else { return completion(files, notes) }
        workspace.readFile(path, maxBytes: Self.promptFileReadBytes) { [weak self] read in
            var files = files
            var notes = notes
            switch read {
            case .file(let bytes, let size):
                files.append((path, String(decoding: bytes, as: UTF8.self)))
                if bytes.count < size { notes.append("\(path) is \(size) bytes; only its first \(bytes.count) bytes were read") }
            case .missing:
                break  // an analysis location outside the repository, or a file the test removed
            case .refused where !notePathsOutside.contains(path):
                break  // a location from the test output that is not a repository path
            case .symbolicLink, .notRegularFile, .refused:
                if let note = read.unreadableNote(path) { notes.append(note) }
            }
            self?.readFiles(paths.dropFirst(), workspace: workspace, notePathsOutside: notePathsOutside, files: files, notes: notes, completion: completion)
        }
    }
}
