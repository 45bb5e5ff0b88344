// CodeToolsTests: the navigator and file reads as model tools — the loop runs the model's calls and returns
// their results as the next turn, refuses hostile input with an error result the model sees, bounds answers,
// and stops offering tools after the last round.
import EventLoop
import Logging
@testable import MedicHost
import Pipeline
import Protocol
@testable import Sandbox
import Testing

/// A model that answers with the responses it is given, in order, and keeps every request.
private final class ToolModel: LanguageModel {
    let name = "tools"
    let clock: FakeClock
    var responses: [ModelResponse]
    private(set) var requests: [ModelRequest] = []

    init(clock: FakeClock, responses: [ModelResponse]) {
        self.clock = clock
        self.responses = responses
    }

    func complete(_ request: ModelRequest, onDelta: @escaping (ModelDelta) -> Void, completion: @escaping (Result<ModelResponse, ModelError>) -> Void) {
        requests.append(request)
        let next = responses.isEmpty ? ModelResponse(content: [.text("done")]) : responses.removeFirst()
        clock.schedule(afterNanoseconds: 0) { completion(.success(next)) }
    }
}

private final class Target: StepTarget {
    var repository: RepositoryConfig? = nil
    var repoName = "demo"
    var sandboxName = "t"
    var workspace: (any SandboxWorkspace)?
    var testRun: (any RunningTest)?
    var lastRun: TestRunResult?
    func revision(_ number: Int) -> Revision? { nil }
    var modelLabels: [String: String] { [:] }
    func deliver(_ event: ProposalEvent) {}
    func publishStored(kind: String, data: JSONObject) {}
    var deltas: [JSONObject] = []
    func publishEphemeral(kind: String, data: JSONObject) { deltas.append(data) }
}

private func call(_ id: String, _ name: String, _ input: JSONValue) -> ModelResponse {
    ModelResponse(content: [.text("looking"), .toolUse(id: id, name: name, input: input)], stopReason: "tool_use")
}

@Suite("model tools")
struct CodeToolsTests {
    private func run(_ responses: [ModelResponse], files: [String: String] = ["app/auth.py": "line1\nline2\nline3\n"]) -> (ToolModel, ModelResponse?, [String]) {
        let clock = FakeClock()
        let model = ToolModel(clock: clock, responses: responses)
        let executors = WorkflowExecutors(clock: clock, sandbox: FakeSandbox(clock: clock), git: { _ in FakeGit(clock: clock, files: [:]) }, model: model)
        let steps = SandboxSteps(configuration: MedicConfiguration(), executors: executors, logger: Logger(label: "test"))
        var searched: [String] = []
        steps.search = { repo, mode, query, limit, done in
            searched.append("\(repo) \(mode) \(query) \(limit)")
            done(.success(.object(["results": .array([.object(["path": .string("app/auth.py")])])])))
        }
        let tools = steps.codeTools(repo: "demo") { path, done in
            if let text = files[path] { done(.success(text)) } else { done(.failure(.init(message: "no file \(path)"))) }
        }
        var answer: ModelResponse?
        steps.complete(ModelRequest(system: "s", messages: [ModelMessage(.user, "find the bug")]), tools: tools, for: Target(), deltaFields: [:]) { result in
            answer = try? result.get()
        }
        clock.run()
        return (model, answer, searched)
    }

    private func results(_ request: ModelRequest) -> [(String, Bool)] {
        request.messages.last?.content.compactMap { if case .toolResult(_, let text, let isError) = $0 { (text, isError) } else { nil } } ?? []
    }

    @Test func theModelSearchesAndReadsThenAnswers() {
        let (model, answer, searched) = run([
            call("t1", "search_code", ["query": "password check", "mode": "find"]),
            call("t2", "read_file", ["path": "app/auth.py", "start_line": 2, "end_line": 3]),
            ModelResponse(content: [.text("{\"summary\": \"found\"}")], stopReason: "end_turn"),
        ])
        #expect(answer?.text == "{\"summary\": \"found\"}")
        #expect(searched == ["demo find password check 8"])
        #expect(model.requests.count == 3)
        #expect(model.requests[0].tools.map(\.name) == ["search_code", "read_file"])
        #expect(results(model.requests[1]).first?.0.contains("app/auth.py") == true)
        #expect(results(model.requests[2]).map(\.0) == ["line2\nline3"])
        // The assistant's tool call is replayed before its result, as the Messages API requires.
        #expect(model.requests[2].messages.count == 5)
    }

    @Test(arguments: [
        ("read_file", JSONValue.object(["path": "../../etc/passwd"]), "repository-relative"),
        ("read_file", JSONValue.object(["path": "/etc/shadow"]), "repository-relative"),
        ("read_file", JSONValue.object(["path": "missing.py"]), "no file missing.py"),
        ("read_file", JSONValue.object(["path": "app/auth.py", "start_line": 0]), "start_line"),
        ("search_code", JSONValue.object(["query": ""]), "non-empty"),
        ("search_code", JSONValue.object(["query": .string(String(repeating: "a", count: 5000))]), "4000"),
        ("search_code", JSONValue.object(["query": "x", "mode": "drop_table"]), "mode"),
        ("search_code", JSONValue.object(["query": "x", "limit": 1000]), "limit"),
        ("run_shell", JSONValue.object(["cmd": "rm -rf /"]), "unknown tool"),
    ])
    func hostileCallsGetAnErrorResultAndTheLoopGoesOn(name: String, input: JSONValue, message: String) {
        let (model, answer, searched) = run([call("t1", name, input), ModelResponse(content: [.text("ok")])])
        let result = results(model.requests[1])
        #expect(result.count == 1)
        #expect(result.first?.1 == true)
        #expect(result.first?.0.contains(message) == true)
        #expect(answer?.text == "ok")
        #expect(searched.isEmpty)
    }

    @Test func theLoopEndsAfterTheLastRoundWithoutTools() {
        let endless = (0..<10).map { call("t\($0)", "read_file", ["path": "app/auth.py"]) }
        let (model, answer, _) = run(endless)
        #expect(model.requests.count == CodeTools.maxRounds + 1)
        #expect(model.requests.last?.tools.isEmpty == true)
        #expect(answer?.toolUses.isEmpty == false)  // the caller parses its text and refuses it as usual
    }

    @Test func answersAreBounded() {
        let big = String(repeating: "x", count: 100_000)
        let (model, _, _) = run([call("t1", "read_file", ["path": "big.py"]), ModelResponse(content: [.text("ok")])], files: ["big.py": big])
        let text = results(model.requests[1]).first?.0 ?? ""
        #expect(text.utf8.count < CodeTools.maxAnswerBytes + 100)
        #expect(text.hasSuffix("[cut at \(CodeTools.maxAnswerBytes) bytes]"))
    }
}
