// LLMTests: SSE framing at every split, Anthropic stream/response decoding, request bodies, fix replies and prompts.

import Foundation
import Protocol
import Testing

@testable import Pipeline

/// A realistic streamed Messages API body (CRLF and LF mixed, a comment line, a ping).
let anthropicStreamBody = """
    event: message_start\r
    data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[]}}\r
    \r
    : keep-alive comment
    event: content_block_start
    data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

    event: ping
    data: {"type": "ping"}

    event: content_block_delta
    data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"{\\"unfix"}}

    event: content_block_delta
    data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"able\\": false ✓"}}

    event: message_delta
    data: {"type":"message_delta","delta":{"stop_reason":"end_turn"}}

    event: message_stop
    data: {"type":"message_stop"}


    """

@Suite struct SSEParserTests {
    let bytes = Array(anthropicStreamBody.utf8)

    func events(chunks: [ArraySlice<UInt8>]) throws -> [SSEEvent] {
        var parser = SSEParser()
        var out: [SSEEvent] = []
        for chunk in chunks { out += try parser.feed(chunk) }
        return out
    }

    @Test func wholeBody() throws {
        let all = try events(chunks: [bytes[...]])
        #expect(all.map(\.event) == [
            "message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta", "message_delta",
            "message_stop",
        ])
        #expect(all[2].data == #"{"type": "ping"}"#)
    }

    @Test func byteByByteEqualsWhole() throws {
        let whole = try events(chunks: [bytes[...]])
        #expect(try events(chunks: bytes.indices.map { bytes[$0...$0] }) == whole)
    }

    @Test func everySplitPointEqualsWhole() throws {
        let whole = try events(chunks: [bytes[...]])
        for split in 0...bytes.count {
            #expect(try events(chunks: [bytes[..<split], bytes[split...]]) == whole, "split at \(split)")
        }
    }

    @Test func multiLineDataAndCRLFSplitAcrossChunks() throws {
        var parser = SSEParser()
        var out = try parser.feed(Array("data: one\r".utf8))
        out += try parser.feed(Array("\ndata:two\r\n\r".utf8))
        out += try parser.feed(Array("\n".utf8))
        #expect(out == [SSEEvent(event: "message", data: "one\ntwo")])
    }

    @Test func lineLimit() {
        var parser = SSEParser(maxLineBytes: 8)
        #expect(throws: SSEError.self) { try parser.feed(Array("data: 0123456789\n\n".utf8)) }
        var ok = SSEParser(maxLineBytes: 8)
        #expect((try? ok.feed(Array("data: 01\n\n".utf8))) == [SSEEvent(data: "01")])
    }
}

@Suite struct AnthropicTests {
    @Test func streamYieldsDeltasThenStop() {
        var stream = AnthropicStream()
        let bytes = Array(anthropicStreamBody.utf8)
        var events: [AnthropicStreamEvent] = []
        for b in bytes { events += stream.feed([b]) }
        #expect(events == [.textDelta("{\"unfix"), .textDelta("able\": false ✓"), .messageStop])
        #expect(stream.text == "{\"unfixable\": false ✓")
        #expect(stream.stopReason == "end_turn")
        #expect(stream.finished)
    }

    @Test func overloadedErrorEvent() {
        var stream = AnthropicStream()
        let events = stream.feed(Array(
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n".utf8))
        #expect(events == [.error(type: "overloaded_error", message: "Overloaded")])
    }

    @Test func malformedDeltaIsAnError() {
        var stream = AnthropicStream()
        let events = stream.feed(Array("event: content_block_delta\ndata: {not json\n\n".utf8))
        #expect(events == [.error(type: "invalid_stream", message: "content_block_delta data is not JSON")])
    }

    /// A tool call as the Messages API streams it: the block starts with id and name, its input arrives as JSON
    /// pieces split anywhere, and usage comes in message_start (input) and message_delta (output).
    @Test func toolUseStreamsIntoTheResponse() {
        let body = """
            event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":412,"output_tokens":1}}}\n\n\
            event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n\
            event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Counting."}}\n\n\
            event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n\
            event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"run_sql","input":{}}}\n\n\
            event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"sql\\": \\"SELECT"}}\n\n\
            event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" 1\\"}"}}\n\n\
            event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n\
            event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":37}}\n\n\
            event: message_stop\ndata: {"type":"message_stop"}\n\n
            """
        var whole = AnthropicStream()
        let events = whole.feed(Array(body.utf8))
        #expect(events == [.textDelta("Counting."), .toolUseStarted(id: "toolu_1", name: "run_sql"), .messageStop])
        let response = whole.response
        #expect(response.text == "Counting.")
        #expect(response.stopReason == "tool_use")
        #expect(response.usage == ModelUsage(inputTokens: 412, outputTokens: 37))
        #expect(response.toolUses.count == 1)
        #expect(response.toolUses.first?.name == "run_sql")
        #expect(response.toolUses.first?.input == .object(["sql": .string("SELECT 1")]))
        var split = AnthropicStream()
        for byte in body.utf8 { _ = split.feed([byte]) }
        #expect(split.response == response)
    }

    /// The model's tool input is untrusted output: input that is not a JSON object is an error, not a call.
    @Test func aToolInputThatIsNotAnObjectIsAnError() {
        var stream = AnthropicStream()
        let body = """
            event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"x","input":{}}}\n\n\
            event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"[1,2"}}\n\n\
            event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n\
            event: content_block_delta\ndata: {"type":"content_block_delta","index":7,"delta":{"type":"input_json_delta","partial_json":"{}"}}\n\n
            """
        let events = stream.feed(Array(body.utf8))
        #expect(events == [
            .toolUseStarted(id: "t", name: "x"), .error(type: "invalid_stream", message: "tool_use x input is not a JSON object"),
            .error(type: "invalid_stream", message: "input_json_delta without a tool_use block 7"),
        ])
    }

    @Test func aGeneralRequestCarriesToolsAndBlocks() throws {
        let request = ModelRequest(
            system: "s",
            messages: [
                ModelMessage(.user, "how many?"),
                ModelMessage(role: .assistant, content: [.toolUse(id: "t1", name: "run_sql", input: .object(["sql": "SELECT 1"]))]),
                ModelMessage(role: .user, content: [.toolResult(toolUseID: "t1", content: "1", isError: false)]),
            ],
            tools: [ModelTool(name: "run_sql", description: "read-only SQL", inputSchema: .object(["type": "object"]))],
            maxTokens: 100, labels: ["purpose": "ask"])
        let body = try JSONValue.parse(AnthropicRequest.body(model: "m", request: request, defaultMaxTokens: 5, stream: false))
        #expect(body["max_tokens"] == .int(100))
        #expect(body["labels"] == nil && body["purpose"] == nil)
        #expect(body["tools"]?.arrayValue?.first?["input_schema"] == .object(["type": "object"]))
        let turns = body["messages"]?.arrayValue ?? []
        #expect(turns.map { $0["role"]?.stringValue } == ["user", "assistant", "user"])
        #expect(turns[0]["content"] == .array([.object(["type": "text", "text": "how many?"])]))
        #expect(turns[1]["content"]?.arrayValue?.first?["input"]?["sql"] == "SELECT 1")
        #expect(turns[2]["content"]?.arrayValue?.first?["tool_use_id"] == "t1")
    }

    @Test func requestBody() throws {
        let body = AnthropicRequest.body(model: "claude-x", system: "sys \"q\"", user: "hi\n", maxTokens: 4096, stream: true)
        #expect(String(decoding: body, as: UTF8.self)
            == #"{"model":"claude-x","max_tokens":4096,"system":"sys \"q\"","messages":[{"role":"user","content":"hi\n"}],"stream":true}"#)
        let parsed = try JSONValue.parse(body)
        #expect(parsed["messages"]?.arrayValue?.first?["content"]?.stringValue == "hi\n")
        let reask = AnthropicRequest.body(
            model: "m", system: "s", messages: [("user", "fix it"), ("assistant", "oops"), ("user", "again")], maxTokens: 10, stream: false)
        let roles = try JSONValue.parse(reask)["messages"]?.arrayValue?.compactMap { $0["role"]?.stringValue }
        #expect(roles == ["user", "assistant", "user"])
    }

    @Test func nonStreamingResponse() throws {
        let body = #"{"id":"m","type":"message","content":[{"type":"text","text":"Hello "},{"type":"text","text":"world"}],"stop_reason":"end_turn"}"#
        #expect(try AnthropicResponse.text(fromNonStreamingBody: Array(body.utf8)) == "Hello world")
        let error = #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        #expect(throws: AnthropicError(type: "overloaded_error", message: "Overloaded")) {
            try AnthropicResponse.text(fromNonStreamingBody: Array(error.utf8))
        }
        #expect(throws: AnthropicError.self) { try AnthropicResponse.text(fromNonStreamingBody: Array("<html>".utf8)) }
    }
}

@Suite struct FixReplyTests {
    let good = #"{"unfixable": false, "explanation": "add dep", "changes": [{"path": "app.py", "action": "modify", "content": "print(1)\n"}]}"#

    @Test func plainFencedAndProse() throws {
        let expected = FixReply(unfixable: false, explanation: "add dep", changes: [FileChange(path: "app.py", action: .modify, content: "print(1)\n")])
        #expect(try FixReply.parse(good) == expected)
        #expect(try FixReply.parse("Here is the fix:\n```json\n\(good)\n```\nGood luck {not this}") == expected)
        #expect(try FixReply.parse("Sure! \(good) Hope that helps.") == expected)
    }

    @Test func bracesInsideStringsDoNotConfuseExtraction() throws {
        let text = #"{"unfixable": false, "explanation": "a } b {", "changes": [{"path": "a.js", "action": "create", "content": "function f() { return \"}\" }"}]}"#
        #expect(try FixReply.parse("prefix " + text).changes.first?.content == "function f() { return \"}\" }")
    }

    @Test func unfixableNeedsNoChanges() throws {
        let reply = try FixReply.parse(#"{"unfixable": true, "explanation": "needs a system package"}"#)
        #expect(reply.unfixable && reply.changes.isEmpty && reply.explanation == "needs a system package")
    }

    @Test(arguments: [
        ("no json here", "the reply contains no JSON object"),
        (#"{"unfixable": false, "explanation": "x", "changes": [}"#, "malformed"),
        (#"{"unfixable": false, "explanation": "x", "changes": [],}"#, "malformed"),
        (#"{"explanation": "x", "changes": []}"#, #"lacks the field "unfixable""#),
        (#"{"unfixable": "no", "explanation": "x", "changes": []}"#, #""unfixable" must be a boolean, not a string"#),
        (#"{"unfixable": false, "explanation": 3, "changes": []}"#, #""explanation" must be a string, not a number"#),
        (#"{"unfixable": false, "explanation": "x"}"#, #"lacks the field "changes""#),
        (#"{"unfixable": false, "explanation": "x", "changes": {}}"#, #""changes" must be a array, not a object"#),
        (#"{"unfixable": false, "explanation": "x", "changes": [{"path": "a", "action": "rename", "content": "y"}]}"#, #"action "rename" is not one of"#),
        (#"{"unfixable": false, "explanation": "x", "changes": [{"path": 1, "action": "modify", "content": "y"}]}"#, #""changes[0].path" must be a string"#),
        (#"{"unfixable": false, "explanation": "x", "changes": [{"path": "a", "action": "modify", "content": 5}]}"#, #""changes[0].content" must be a string"#),
        (#"{"unfixable": false, "explanation": "x", "changes": [{"path": "../../etc/passwd", "action": "modify", "content": "y"}]}"#, "patch was refused: path \"../../etc/passwd\""),
        (#"{"unfixable": false, "explanation": "x", "changes": []}"#, "the patch changes no files"),
        (#"{"unfixable": false, "unfixable": true, "explanation": "x", "changes": []}"#, "duplicate object key"),
    ])
    func malformed(text: String, expected: String) {
        #expect(throws: FixReplyError.self) { try FixReply.parse(text) }
        do {
            _ = try FixReply.parse(text)
        } catch {
            #expect(error.description.contains(expected), "\(error.description)")
        }
    }

    @Test func malformedFlagDrivesTheReAsk() {
        #expect(throws: FixReplyError.self) { try FixReply.parse("nope") }
        do { _ = try FixReply.parse("nope") } catch { #expect(error.isMalformed) }
        do { _ = try FixReply.parse(#"{"unfixable": 1, "explanation": "", "changes": []}"#) } catch { #expect(!error.isMalformed) }
    }
}

@Suite struct ScriptedConversationTests {
    let script = """
        {"replies": [
          {"match": "Redis", "attempt": 1, "delay_ms": 250,
           "reply": {"unfixable": false, "explanation": "add stub", "changes": [{"path": "redis.py", "action": "create", "content": "x = 1\\n"}]}},
          {"match": "redis", "reply": "not json"},
          {"attempt": 1, "reply": {"unfixable": true, "explanation": "cannot"}}
        ]}
        """

    @Test func lookupByTitleAndAttempt() throws {
        let conversation = try ScriptedConversation(json: Array(script.utf8))
        let first = try #require(conversation.entry(for: "Use redis cache", attempt: 1))
        #expect(first.delayMs == 250)
        #expect(try FixReply.parse(first.reply).changes == [FileChange(path: "redis.py", action: .create, content: "x = 1\n")])
        #expect(conversation.reply(for: "Use REDIS cache", attempt: 2) == "not json")
        #expect(try FixReply.parse(conversation.reply(for: "other", attempt: 1) ?? "").unfixable)
        #expect(conversation.reply(for: "other", attempt: 2) == nil)
    }

    /// The demo's replies stream at a pace a person can follow: many small pieces that add up to the reply,
    /// written over `delay_ms`, the explanation more slowly than the file contents after it.
    @Test func repliesStreamInSmallPiecesWithTheExplanationPaced() throws {
        let data = try #require(FileManager.default.contents(atPath: #filePath.replacingOccurrences(
            of: "Tests/PipelineTests/LLMTests.swift", with: "examples/demo-conversation.json")))
        let conversation = try ScriptedConversation(json: Array(data))
        let entry = try #require(conversation.entry(for: "Add Redis caching to user lookups", attempt: 1))
        let range = try #require(entry.explanationRange)
        let characters = Array(entry.reply)
        let explanation = try #require(FixReply.parse(entry.reply).explanation)
        #expect(String(characters[range]) == JSONValue.string(explanation).jsonString)
        let schedule = entry.streamSchedule()
        #expect(schedule.map(\.text).joined() == entry.reply)
        #expect(schedule.count >= 40, "a 1.6 KB reply in \(schedule.count) pieces")
        #expect(schedule.map(\.atNanoseconds) == schedule.map(\.atNanoseconds).sorted())
        #expect(schedule.last?.atNanoseconds == UInt64(entry.delayMs) * 1_000_000)
        #expect(entry.delayMs >= 3000, "the demo writes each reply over seconds")
        // The explanation (about an eighth of the text) takes at least 40% of the time.
        var offset = 0
        var explanationEnd: UInt64 = 0
        for piece in schedule {
            offset += piece.text.count
            if offset >= range.upperBound { explanationEnd = piece.atNanoseconds; break }
        }
        #expect(explanationEnd * 10 >= UInt64(entry.delayMs) * 1_000_000 * 4, "explanation written by \(explanationEnd) ns")
        // A short reply still comes in 8 pieces; no delay means all at once; a string reply has no explanation range.
        let short = try ScriptedConversation(json: Array(script.utf8))
        #expect(short.entry(for: "redis", attempt: 1)?.streamSchedule().count == 8)
        #expect(short.entry(for: "redis", attempt: 2)?.explanationRange == nil)
        #expect(short.entry(for: "redis", attempt: 2)?.streamSchedule().allSatisfy { $0.atNanoseconds == 0 } == true)
    }

    @Test func badScripts() {
        #expect(throws: ScriptError.self) { try ScriptedConversation(json: Array("{}".utf8)) }
        #expect(throws: ScriptError.self) { try ScriptedConversation(json: Array(#"{"replies":[{"attempt":0,"reply":"x"}]}"#.utf8)) }
        #expect(throws: ScriptError.self) { try ScriptedConversation(json: Array(#"{"replies":[{"reply":3}]}"#.utf8)) }
    }

    /// A script written before bugs existed (no `purpose`) answers fix requests only; bug requests find nothing.
    @Test func oldScriptsAnswerOnlyFixRequests() throws {
        let conversation = try ScriptedConversation(json: Array(script.utf8))
        #expect(conversation.entries.allSatisfy { $0.purpose == "fix" && $0.approach == nil })
        #expect(conversation.entry(for: "redis", attempt: 1, purpose: "fix", approach: nil)?.delayMs == 250)
        // A fix attempt inside a bug approach is still a fix request; an entry without `approach` answers it.
        #expect(conversation.entry(for: "redis", attempt: 1, purpose: "fix", approach: 2)?.delayMs == 250)
        for purpose in ["bug_analysis", "bug_reproducer", "bug_approach"] {
            #expect(conversation.entry(for: "redis", attempt: 1, purpose: purpose, approach: nil) == nil)
            #expect(conversation.entry(for: "other", attempt: 1, purpose: purpose, approach: 1) == nil)
        }
    }

    @Test func purposeAndApproachSelectTheEntry() throws {
        let bugScript = """
            {"replies": [
              {"match": "wrong password", "purpose": "bug_analysis", "attempt": 1, "reply": "analysis"},
              {"match": "wrong password", "purpose": "bug_reproducer", "attempt": 2, "reply": "reproducer re-ask"},
              {"match": "wrong password", "purpose": "bug_reproducer", "reply": "reproducer"},
              {"match": "wrong password", "purpose": "bug_approach", "approach": 1, "reply": "approach one"},
              {"match": "wrong password", "purpose": "bug_approach", "approach": 2, "reply": "approach two"},
              {"match": "wrong password", "purpose": "bug_approach", "reply": "any approach"},
              {"match": "wrong password", "purpose": "fix", "approach": 1, "attempt": 1, "reply": "fix in approach one"},
              {"match": "wrong password", "attempt": 1, "reply": "fix, any approach"},
              {"purpose": null, "approach": null, "reply": "fallback fix"}
            ]}
            """
        let c = try ScriptedConversation(json: Array(bugScript.utf8))
        let title = "Users get 'Wrong Password' although the password is correct"
        #expect(c.entry(for: title, attempt: 1, purpose: "bug_analysis", approach: nil)?.reply == "analysis")
        #expect(c.entry(for: title, attempt: 2, purpose: "bug_analysis", approach: nil) == nil)
        #expect(c.entry(for: "other", attempt: 1, purpose: "bug_analysis", approach: nil) == nil)
        #expect(c.entry(for: title, attempt: 1, purpose: "bug_reproducer", approach: nil)?.reply == "reproducer")
        #expect(c.entry(for: title, attempt: 2, purpose: "bug_reproducer", approach: nil)?.reply == "reproducer re-ask")
        #expect(c.entry(for: title, attempt: 1, purpose: "bug_approach", approach: 1)?.reply == "approach one")
        #expect(c.entry(for: title, attempt: 1, purpose: "bug_approach", approach: 2)?.reply == "approach two")
        #expect(c.entry(for: title, attempt: 1, purpose: "bug_approach", approach: 3)?.reply == "any approach")
        // An entry naming an approach never answers a request without one.
        #expect(c.entry(for: title, attempt: 1, purpose: "bug_approach", approach: nil)?.reply == "any approach")
        #expect(c.entry(for: title, attempt: 1, purpose: "fix", approach: 1)?.reply == "fix in approach one")
        #expect(c.entry(for: title, attempt: 1, purpose: "fix", approach: 2)?.reply == "fix, any approach")
        #expect(c.entry(for: title, attempt: 1)?.reply == "fix, any approach")
        #expect(c.entry(for: title, attempt: 2, purpose: "fix", approach: 1)?.reply == "fallback fix")
        #expect(c.entry(for: "other", attempt: 3)?.reply == "fallback fix")
        #expect(c.entry(for: "other", attempt: 3, purpose: "bug_reproducer", approach: nil) == nil)
        #expect(c.entry(for: "other", attempt: 3, purpose: "unknown", approach: nil) == nil)
    }

    @Test func badPurposeOrApproachIsRefusedNamingTheEntry() {
        let cases: [(String, String)] = [
            (#"{"purpose": 3}"#, "replies[1].purpose"),
            (#"{"purpose": ""}"#, "replies[1].purpose"),
            (#"{"purpose": ["fix"]}"#, "replies[1].purpose"),
            (#"{"approach": 0}"#, "replies[1].approach"),
            (#"{"approach": "1"}"#, "replies[1].approach"),
            (#"{"approach": 1.5}"#, "replies[1].approach"),
            (#"{"approach": -2}"#, "replies[1].approach"),
        ]
        for (field, name) in cases {
            let entry = String(field.dropFirst().dropLast())
            let json = #"{"replies":[{"reply":"ok"},{"reply":"x", "#.appending(entry).appending("}]}")
            do {
                _ = try ScriptedConversation(json: Array(json.utf8))
                Issue.record("accepted \(json)")
            } catch {
                #expect(error.description.contains(name), "\(error.description) for \(json)")
            }
        }
    }

    /// The bundled demo script answers the demo bug's requests (examples/demo-bug.json) and still the demo proposal's.
    @Test func demoScriptAnswersTheDemoBug() throws {
        let root = #filePath.replacingOccurrences(of: "Tests/PipelineTests/LLMTests.swift", with: "examples/")
        let data = try #require(FileManager.default.contents(atPath: root + "demo-conversation.json"))
        let conversation = try ScriptedConversation(json: Array(data))
        let bug = try JSONValue.parse(Array(try #require(FileManager.default.contents(atPath: root + "demo-bug.json"))))
        let title = try #require(bug["title"]?.stringValue)
        #expect(conversation.entry(for: "Add Redis caching to user lookups", attempt: 1)?.purpose == "fix")
        #expect(conversation.entry(for: title, attempt: 1, purpose: "bug_analysis", approach: nil) != nil)
        let reproducer = try #require(conversation.entry(for: title, attempt: 1, purpose: "bug_reproducer", approach: nil))
        let file = try JSONValue.parse(Array(reproducer.reply.utf8))
        #expect(file["path"]?.stringValue?.hasPrefix("tests/test_") == true)
        for approach in 1...3 {
            let entry = try #require(conversation.entry(for: title, attempt: 1, purpose: "bug_approach", approach: approach))
            let reply = try FixReply.parse(entry.reply)
            #expect(!reply.unfixable && !reply.changes.isEmpty)
            #expect((1500...4000).contains(entry.delayMs))
        }
        let giveUp = try #require(conversation.entry(for: title, attempt: 1, purpose: "fix", approach: 1))
        #expect(try FixReply.parse(giveUp.reply).unfixable)
    }
}

@Suite struct FixPromptTests {
    let analysis = FailureAnalysis(
        category: .import, categories: [.import], rootCause: "Python cannot import module 'redis'",
        locations: [SourceLocation(file: "app.py", line: 1)], messages: ["ModuleNotFoundError: No module named 'redis'"])

    @Test func containsEverythingTheModelNeeds() {
        let attempt = AttemptRecord(
            number: 1, changes: [FileChange(path: "app.py", action: .modify, content: "import redis2\n")], explanation: "rename",
            testResult: TestResult(exitCode: 1, failed: 1), analysis: analysis)
        let prompt = FixPrompt.build(
            title: "Cache with redis", description: "Adds caching", analysis: analysis,
            relevantFiles: [("app.py", "import redis\n")], attempts: [attempt], reviewerComments: ["keep the API stable"],
            maxAttempts: 3, attempt: 2, testOutput: "Traceback ...")
        #expect(prompt.system.contains(#""unfixable": false"#))
        #expect(prompt.system.contains("at most 3 attempts"))
        for needle in [
            "Title: Cache with redis", "Root cause: Python cannot import module 'redis'", "app.py:1", "keep the API stable",
            "## Attempt 1", "import redis2", "fix attempt 2 of 3", "```app.py\nimport redis\n```", "Traceback ...",
        ] {
            #expect(prompt.user.contains(needle), "missing \(needle)")
        }
    }

    @Test func filesAreTruncatedToBudget() {
        let budget = PromptBudget(maxFileBytes: 100, maxTotalFileBytes: 150)
        let big = String(repeating: "é", count: 500)
        let prompt = FixPrompt.build(
            title: "t", description: "d", analysis: nil, relevantFiles: [("a.txt", big), ("b.txt", big), ("c.txt", big)],
            attempts: [], reviewerComments: [], maxAttempts: 3, budget: budget)
        #expect(prompt.user.contains("[truncated: 900 more bytes]"))
        #expect(prompt.user.contains("[truncated: 950 more bytes]"))
        #expect(prompt.user.contains("(Not shown for space: c.txt)"))
        #expect(prompt.user.utf8.count < 1000)
    }
}
