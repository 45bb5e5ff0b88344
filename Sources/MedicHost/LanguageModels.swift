// LanguageModels: the two `LanguageModel`s — a scripted conversation (offline demo and tests) and the Anthropic
// Messages API (streamed, with tools and usage).
import EventLoop
import Foundation
import HTTPClient
import Logging
import Pipeline

/// Replies from a scripted conversation file (the offline demo and tests). The reply is streamed in pieces over
/// its `delay_ms` (`ScriptedConversation.Entry.streamSchedule`), so watchers see `fix_delta` events as with a real
/// model, at a pace a person can read.
/// The script answers requests looked up by the request's `purpose` (absent: `fix`), `title`, `approach` (absent: none)
/// and `attempt` labels (`ScriptedConversation.entry(for:attempt:purpose:approach:)`).
final class ScriptedModel: LanguageModel {
    let name = "scripted"
    private let loop: EventLoop
    private let conversation: ScriptedConversation

    init(loop: EventLoop, path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            // The default model is the demo's script, relative to the Medic checkout: say what to do instead.
            throw ConfigurationError(
                "scripted conversation file not found: \(path) (relative to \(FileManager.default.currentDirectoryPath)); "
                    + "run from the Medic checkout, or choose a model: --llm anthropic with ANTHROPIC_API_KEY set, or --llm scripted:FILE")
        }
        do { conversation = try ScriptedConversation(json: Array(data)) } catch {
            throw ConfigurationError("scripted conversation \(path): \(error)")
        }
        self.loop = loop
    }

    func complete(
        _ request: ModelRequest, onDelta: @escaping (ModelDelta) -> Void, completion: @escaping (Result<ModelResponse, ModelError>) -> Void
    ) {
        let title = request.labels["title"] ?? ""
        let attempt = request.labels["attempt"].flatMap { Int($0) } ?? 0
        let purpose = request.labels["purpose"] ?? ScriptedConversation.defaultPurpose
        let approach = request.labels["approach"].flatMap { Int($0) }
        guard let entry = conversation.entry(for: title, attempt: attempt, purpose: purpose, approach: approach) else {
            let what = "\(purpose) '\(title)'" + (approach.map { " approach \($0)" } ?? "") + " attempt \(attempt)"
            loop.schedule(afterNanoseconds: 0) {
                completion(.failure(ModelError("the scripted conversation has no reply for \(what)")))
            }
            return
        }
        // Streamed in pieces over the scripted delay, the explanation slower than the code (see streamSchedule).
        let text = entry.reply
        let schedule = entry.streamSchedule()
        for piece in schedule {
            loop.schedule(afterNanoseconds: piece.atNanoseconds) { onDelta(.text(piece.text)) }
        }
        loop.schedule(afterNanoseconds: (schedule.last?.atNanoseconds ?? 0) + 1_000_000) {
            completion(.success(ModelResponse(content: [.text(text)], stopReason: "end_turn")))
        }
    }
}

/// The Anthropic Messages API over libcurl's multi interface in our loop, streamed (SSE), with retries on
/// 429/5xx/529 honouring retry-after (see `RetryPolicy`).
final class AnthropicModel: LanguageModel {
    let name = "anthropic"
    private let loop: EventLoop
    private let client: HTTPClient
    private let baseURL: String
    private let model: String
    private let apiKey: String
    private let logger: Logger
    var maxTokens = 8192
    var timeoutMilliseconds = 180_000
    var retryPolicy = RetryPolicy()

    init(loop: EventLoop, baseURL: String, model: String, apiKey: String, logger: Logger) throws {
        self.loop = loop
        self.client = try HTTPClient(loop: loop)
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.model = model
        self.apiKey = apiKey
        self.logger = logger
    }

    func complete(
        _ modelRequest: ModelRequest, onDelta: @escaping (ModelDelta) -> Void, completion: @escaping (Result<ModelResponse, ModelError>) -> Void
    ) {
        let body = AnthropicRequest.body(model: model, request: modelRequest, defaultMaxTokens: maxTokens, stream: true)
        var headers = AnthropicRequest.headers(apiKey: apiKey).map { ($0.name, $0.value) }
        headers.append(("accept", "text/event-stream"))
        let request = HTTPClientRequest(
            method: "POST", url: baseURL + "/v1/messages", headers: headers, body: body, timeoutMilliseconds: timeoutMilliseconds)
        var stream = AnthropicStream()
        var streamError: String?
        var status = 0
        var errorBody: [UInt8] = []
        var attempts = 0
        let timeout = timeoutMilliseconds
        // Error bodies come from the network (a proxy may echo request fields); the key must never reach an event.
        let fail = { [apiKey] (reason: String) in
            completion(.failure(ModelError(apiKey.isEmpty ? reason : reason.replacingOccurrences(of: apiKey, with: "[redacted]"))))
        }
        executeWithRetry(
            client: client, loop: loop, request: request, policy: retryPolicy,
            onAttempt: { [logger] n in
                attempts = n
                if n > 1 { logger.info("retrying the Anthropic API", metadata: ["attempt": "\(n)"]) }
            },
            onHead: { head in status = head.status },
            onBody: { chunk in
                guard status == 200 else {
                    if errorBody.count < 65536 { errorBody.append(contentsOf: chunk) }
                    return
                }
                // After the stream's first error nothing more is forwarded, and that first error is the one
                // reported (a later one is usually its consequence).
                guard streamError == nil else { return }
                for event in stream.feed(chunk) {
                    switch event {
                    case .textDelta(let delta): onDelta(.text(delta))
                    case .toolUseStarted(let id, let name): onDelta(.toolUseStarted(id: id, name: name))
                    case .messageStop: break
                    case .error(let type, let message):
                        streamError = "\(type): \(message)"
                        return
                    }
                }
            },
            onComplete: { result in
                switch result {
                case .failure(let error) where error.code == .timeout:
                    fail("Anthropic API request timed out: no complete reply within \(timeout) ms "
                        + "(\(attempts) attempt(s)): \(error.message)")
                case .failure(let error):
                    fail("Anthropic API request failed: \(error)")
                case .success where status != 200:
                    let detail = String(decoding: errorBody.prefix(500), as: UTF8.self)
                    fail("Anthropic API answered HTTP \(status): \(detail)")
                case .success:
                    if let streamError {
                        fail("Anthropic API stream error: \(streamError)")
                    } else {
                        completion(.success(stream.response))
                    }
                }
            })
    }
}
