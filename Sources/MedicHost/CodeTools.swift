// CodeTools: the code navigator and file reads offered to the model as tools (Messages API tool use) in the
// bug workflow's requests and the fix loop's, and the loop that runs the model's calls until it answers in
// text. The model's tool input is untrusted (it may be prompt-injected): every field is checked, paths must be
// repository-relative (the patch rule), answers are bounded, and the loop ends after `maxRounds`.
import Pipeline
import Protocol

/// What the tools run on, for one request.
struct CodeTools {
    /// `search_code` (mode, query, limit → the navigator's JSON answer).
    var search: ((String, String, Int, @escaping (Result<JSONValue, ProtocolError>) -> Void) -> Void)?
    /// `read_file` (repository-relative path → the file's text, or why not).
    var read: (String, @escaping (Result<String, ToolFailure>) -> Void) -> Void

    struct ToolFailure: Error { var message: String }

    static let maxRounds = 4
    static let maxAnswerBytes = 12 << 10
    static let modes = ["find", "locate", "related", "outline", "analyze"]

    /// The tools as the model sees them (only `read_file` when there is no navigator).
    var definitions: [ModelTool] {
        var tools = [ModelTool(
            name: "read_file",
            description: "Read a file of the repository (repository-relative path). Optionally only lines start_line…end_line (1-based).",
            inputSchema: .object([
                "type": .string("object"),
                "properties": .object([
                    "path": .object(["type": .string("string")]), "start_line": .object(["type": .string("integer")]),
                    "end_line": .object(["type": .string("integer")]),
                ]),
                "required": .array([.string("path")]),
            ]))]
        if search != nil {
            tools.insert(ModelTool(
                name: "search_code",
                description: "Search the repository's code index. mode find: a description → files and symbols; locate: a bug text or stack trace → likely files; related: a file → its imports and importers; outline: a file → its symbols; analyze: a file → review findings.",
                inputSchema: .object([
                    "type": .string("object"),
                    "properties": .object([
                        "query": .object(["type": .string("string")]),
                        "mode": .object(["type": .string("string"), "enum": .array(Self.modes.map { .string($0) })]),
                        "limit": .object(["type": .string("integer")]),
                    ]),
                    "required": .array([.string("query")]),
                ])), at: 0)
        }
        return tools
    }

    /// Runs one call; the answer is the tool_result's text (and whether it is an error).
    func run(name: String, input: JSONValue, done: @escaping (String, Bool) -> Void) {
        switch name {
        case "search_code":
            guard let search else { return done("search_code is not available here", true) }
            guard let query = input["query"]?.stringValue, !query.isEmpty, query.utf8.count <= 4_000 else {
                return done("'query' must be a non-empty string of at most 4000 bytes", true)
            }
            let mode = input["mode"]?.stringValue ?? "find"
            guard Self.modes.contains(mode) else { return done("'mode' must be one of \(Self.modes.joined(separator: ", "))", true) }
            let limit = Int(input["limit"]?.intValue ?? 8)
            guard (1...20).contains(limit) else { return done("'limit' must be 1…20", true) }
            search(mode, query, limit) { result in
                switch result {
                case .success(let json): done(Self.bounded(json.jsonString), false)
                case .failure(let error): done(error.message, true)
                }
            }
        case "read_file":
            guard let path = input["path"]?.stringValue, PatchValidator.pathError(path) == nil else {
                return done("'path' must be a repository-relative path", true)
            }
            let start = input["start_line"]?.intValue.map(Int.init)
            let end = input["end_line"]?.intValue.map(Int.init)
            if let start, start < 1 { return done("'start_line' must be ≥ 1", true) }
            read(path) { result in
                switch result {
                case .failure(let failure): done(failure.message, true)
                case .success(let text):
                    guard start != nil || end != nil else { return done(Self.bounded(text), false) }
                    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                    let from = max(1, start ?? 1), to = min(lines.count, end ?? lines.count)
                    guard from <= to else { return done("the file has \(lines.count) lines", true) }
                    done(Self.bounded(lines[(from - 1)..<to].joined(separator: "\n")), false)
                }
            }
        default:
            done("unknown tool '\(String(name.prefix(64)))'; the tools are \(definitions.map(\.name).joined(separator: ", "))", true)
        }
    }

    static func bounded(_ text: String) -> String {
        guard text.utf8.count > maxAnswerBytes else { return text }
        return (String(text.utf8.prefix(maxAnswerBytes)) ?? "") + "\n[cut at \(maxAnswerBytes) bytes]"
    }
}

extension SandboxSteps {
    /// One model exchange that may use `tools`: while the model asks for tool calls (at most
    /// `CodeTools.maxRounds` rounds; the last request offers no tools, so it must answer), the calls run one
    /// after another and their results go back as the next user turn. Text streams to the target as
    /// `fix_delta` (with `deltaFields`); the final answer is the last response.
    func complete(
        _ request: ModelRequest, tools: CodeTools?, for target: any StepTarget, deltaFields: JSONObject, round: Int = 0,
        completion: @escaping (Result<ModelResponse, ModelError>) -> Void
    ) {
        var request = request
        request.tools = round < CodeTools.maxRounds ? (tools?.definitions ?? []) : []
        complete(request, for: target, deltaFields: deltaFields) { [weak self] result in
            guard let self, let tools, case .success(let response) = result, !response.toolUses.isEmpty, round < CodeTools.maxRounds else {
                return completion(result)
            }
            self.runCalls(response.toolUses[...], tools: tools, results: []) { results in
                var next = request
                next.messages += [ModelMessage(role: .assistant, content: response.content), ModelMessage(role: .user, content: results)]
                self.complete(next, tools: tools, for: target, deltaFields: deltaFields, round: round + 1, completion: completion)
            }
        }
    }

    private func runCalls(
        _ calls: ArraySlice<(id: String, name: String, input: JSONValue)>, tools: CodeTools, results: [ModelContent],
        done: @escaping ([ModelContent]) -> Void
    ) {
        guard let call = calls.first else { return done(results) }
        tools.run(name: call.name, input: call.input) { [weak self] text, isError in
            self?.runCalls(calls.dropFirst(), tools: tools, results: results + [.toolResult(toolUseID: call.id, content: text, isError: isError)], done: done)
        }
    }

    /// The tools of a request about `repo`: the navigator (when configured) and reads of `read`.
    func codeTools(repo: String, read: @escaping (String, @escaping (Result<String, CodeTools.ToolFailure>) -> Void) -> Void) -> CodeTools {
        CodeTools(search: search.map { search in { mode, query, limit, done in search(repo, mode, query, limit, done) } }, read: read)
    }
}
