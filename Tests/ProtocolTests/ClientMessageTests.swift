// ClientMessageTests: each decode error names its code, field and type; valid commands decode exactly.

import Protocol
import Testing

func decode(_ text: String, limits: ProtocolLimits = ProtocolLimits()) -> Result<ClientRequest, ProtocolError> {
    ClientMessage.decode(Array(text.utf8), limits: limits)
}

/// The error of a decode that must fail.
func failure(_ text: String, limits: ProtocolLimits = ProtocolLimits()) -> ProtocolError? {
    if case .failure(let error) = decode(text, limits: limits) { return error }
    Issue.record("decoded: \(text)")
    return nil
}

@Suite struct ClientMessageTests {
    @Test func decodesEachCommand() {
        #expect(decode(#"{"type":"hello","token":"t"}"#) == .success(ClientRequest(message: .hello(token: "t"))))
        #expect(
            decode(#"{"type":"subscribe","id":"1","topic":"proposal:ab_C-9","since":5}"#)
                == .success(ClientRequest(id: "1", message: .subscribe(topic: .proposal("ab_C-9"), since: 5))))
        #expect(
            decode(#"{"type":"subscribe","topic":"proposals","since":null}"#)
                == .success(ClientRequest(message: .subscribe(topic: .proposals, since: nil))))
        #expect(
            decode(#"{"type":"reject","proposal":"p","revision":3,"comment":"no"}"#)
                == .success(
                    ClientRequest(
                        message: .review(ReviewCommand(proposal: "p", revision: 3, verdict: .reject, comment: "no")))))
        #expect(decode(#"{"type":"stats","future_field":[1,2]}"#) == .success(ClientRequest(message: .stats)))
    }

    @Test func badJSON() {
        #expect(failure(#"{"type":"stats""#)?.code == .badJSON)
        #expect(failure(#"{"type":"stats",}"#)?.code == .badJSON)
        #expect(failure("")?.code == .badJSON)
    }

    @Test func tooLargeAtTheBoundary() {
        let message = #"{"type":"stats"}"#  // 16 bytes
        #expect((try? decode(message, limits: ProtocolLimits(maxMessageBytes: 16)).get()) != nil)
        #expect(failure(message, limits: ProtocolLimits(maxMessageBytes: 15))?.code == .tooLarge)
    }

    @Test func unknownTypeKeepsTheID() {
        let error = failure(#"{"type":"explode","id":"x1"}"#)
        #expect(error?.code == .unknownType)
        #expect(error?.id == "x1")
        #expect(error?.message.contains("explode") == true)
    }

    @Test func notAnObjectOrNoType() {
        #expect(failure("[1]")?.code == .invalidMessage)
        #expect(failure(#""hello""#)?.code == .invalidMessage)
        #expect(failure(#"{"id":"a"}"#)?.message == "missing field 'type' (a string)")
        #expect(failure(#"{"type":7}"#)?.message == "field 'type' must be a string")
        #expect(failure(#"{"type":"stats","id":5}"#)?.message.hasPrefix("field 'id' must be") == true)
        #expect(failure(#"{"type":"stats","id":""}"#)?.code == .invalidMessage)
        let longID = String(repeating: "i", count: 129)
        #expect(failure(#"{"type":"stats","id":"\#(longID)"}"#)?.code == .invalidMessage)
    }

    @Test func missingFieldsAreNamed() {
        let cases: [(String, String)] = [
            (#"{"type":"hello","id":"a"}"#, "token"),
            (#"{"type":"subscribe"}"#, "topic"),
            (#"{"type":"approve","proposal":"p"}"#, "revision"),
            (#"{"type":"approve","revision":1}"#, "proposal"),
            (#"{"type":"reject","proposal":"p","revision":1}"#, "comment"),
            (#"{"type":"request_changes","proposal":"p","revision":1}"#, "comment"),
            (#"{"type":"comment","proposal":"p"}"#, "text"),
            (#"{"type":"propose","description":"","changes":[]}"#, "title"),
            (#"{"type":"propose","title":"t","description":""}"#, "changes"),
            (#"{"type":"propose","title":"t","description":"","changes":[{"action":"delete"}]}"#, "changes[0].path"),
            (
                #"{"type":"propose","title":"t","description":"","changes":[{"path":"a","action":"create"}]}"#,
                "changes[0].content"
            ),
        ]
        for (text, field) in cases {
            let error = failure(text)
            #expect(error?.code == .invalidMessage, "\(text)")
            #expect(
                error?.message.hasPrefix("missing field '\(field)'") == true, "\(text): \(String(describing: error))")
        }
        #expect(failure(#"{"type":"hello","id":"a"}"#)?.id == "a")
    }

    @Test func mistypedFieldsNameTheExpectedType() {
        let cases: [(String, String)] = [
            (#"{"type":"approve","proposal":"p","revision":"2"}"#, "field 'revision' must be an integer"),
            (#"{"type":"approve","proposal":"p","revision":2.5}"#, "field 'revision' must be an integer"),
            (#"{"type":"approve","proposal":"p","revision":0}"#, "field 'revision' must be an integer >= 1"),
            (#"{"type":"approve","proposal":7,"revision":2}"#, "field 'proposal' must be a string"),
            (#"{"type":"approve","proposal":"p","revision":2,"comment":false}"#, "field 'comment' must be a string"),
            (#"{"type":"subscribe","topic":"proposals","since":"0"}"#, "field 'since' must be an integer"),
            (#"{"type":"subscribe","topic":"proposals","since":-1}"#, "field 'since' must be an integer >= 0"),
            (#"{"type":"hello","token":""}"#, "field 'token' must be a non-empty string"),
            (#"{"type":"propose","title":"t","description":"","changes":{}}"#, "field 'changes' must be an array"),
            (
                #"{"type":"propose","title":"t","description":"","changes":[]}"#,
                "field 'changes' must be a non-empty array"
            ),
            (#"{"type":"propose","title":"t","description":"","changes":[3]}"#, "field 'changes[0]' must be an object"),
        ]
        for (text, message) in cases {
            let error = failure(text)
            #expect(error?.code == .invalidMessage, "\(text)")
            #expect(error?.message == message, "\(text)")
        }
    }

    @Test func rejectsBadTopicsAndProposalIDs() {
        for topic in [
            "proposal:", "proposal:a b", "proposal:../x", "proposal:" + String(repeating: "a", count: 65), "Proposals", "PROPOSAL:x",
            ":x", "a:", "bug:é", String(repeating: "k", count: 33), "proposal:x:y",
        ] {
            let error = failure(#"{"type":"subscribe","topic":"\#(topic)"}"#)
            #expect(error?.message.hasPrefix("field 'topic' must be a topic") == true, "\(topic)")
        }
        #expect(Topic("proposal:" + String(repeating: "a", count: 64)) == .proposal(String(repeating: "a", count: 64)))
        // Any kind is syntax here; which kinds exist is the server's feature registry's business.
        #expect(Topic("bug:b-1")?.kind == "bug" && Topic("bug:b-1")?.id == "b-1" && Topic("incidents")?.isInstance == false)
        #expect(
            failure(#"{"type":"auto_fix","proposal":"a/b"}"#)?.message.hasPrefix("field 'proposal' must be") == true)
    }

    @Test func rejectsUnsafePaths() {
        for path in ["/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/.", "a\\\\b", "", "a/"] {
            let text =
                #"{"type":"propose","title":"t","description":"","changes":[{"path":"\#(path)","action":"delete"}]}"#
            let error = failure(text)
            #expect(error?.code == .invalidMessage, "\(path)")
            #expect(error?.message.contains("changes[0].path") == true, "\(path): \(String(describing: error))")
        }
        #expect(FileChange.isSafeRelativePath("src/app/main.py"))
        #expect(FileChange.isSafeRelativePath("a..b/.hidden"))
    }

    @Test func proposeChecksActionsContentAndDuplicates() {
        #expect(
            failure(#"{"type":"propose","title":"t","description":"","changes":[{"path":"a","action":"rename"}]}"#)?
                .message == #"field 'changes[0].action' must be one of "create", "modify", "delete""#)
        #expect(
            failure(
                #"{"type":"propose","title":"t","description":"","changes":[{"path":"a","action":"delete","content":"x"}]}"#
            )?
            .message == "field 'changes[0].content' must be absent for delete")
        #expect(
            failure(
                #"{"type":"propose","title":"t","description":"","changes":[{"path":"a","action":"delete"},{"path":"a","action":"delete"}]}"#
            )?.message == "field 'changes[1].path' must be unique within the proposal")
    }

    @Test func limitsApplyAtTheBoundary() {
        let limits = ProtocolLimits(maxTitleBytes: 5, maxChanges: 2)
        let change = #"{"path":"a","action":"delete"}"#
        let ok = #"{"type":"propose","title":"12345","description":"","changes":[\#(change)]}"#
        #expect((try? decode(ok, limits: limits).get()) != nil)
        #expect(
            failure(#"{"type":"propose","title":"123456","description":"","changes":[\#(change)]}"#, limits: limits)?
                .message == "field 'title' must be at most 5 bytes")
        let three = #"[{"path":"a","action":"delete"},{"path":"b","action":"delete"},{"path":"c","action":"delete"}]"#
        #expect(
            failure(#"{"type":"propose","title":"t","description":"","changes":\#(three)}"#, limits: limits)?
                .message == "field 'changes' must be an array of at most 2 changes")
    }

    @Test func featureCommandsPassThroughOnlyWhenDeclared() {
        let text = #"{"type":"search_code","id":"q1","repo":"app","query":"password"}"#
        #expect(failure(text)?.code == .unknownType)
        guard case .success(let request) = ClientMessage.decode(Array(text.utf8), featureTypes: ["search_code"]) else {
            Issue.record("a declared feature type was refused")
            return
        }
        #expect(request.id == "q1" && request.message.type == "search_code")
        #expect(request.message.fields == ["repo": "app", "query": "password"])
        // Built-in types keep their own decoders even when a feature names them.
        #expect(failure(#"{"type":"auto_fix","proposal":"a/b"}"#)?.code == .invalidMessage)
    }
}

@Suite struct ServerMessageTests {
    @Test func eventFrameEmbedsDataBytesVerbatim() throws {
        let data: [UInt8] = Array(#"{"b":1,"a":"x"}"#.utf8)
        let frame = EventFrame.encode(topic: "proposal:p", seq: 7, ts: 1000, kind: "comment", dataJSON: data)
        #expect(
            String(decoding: frame, as: UTF8.self)
                == #"{"type":"event","topic":"proposal:p","seq":7,"ts":1000,"kind":"comment","data":{"b":1,"a":"x"}}"#)
        let ephemeral = EventFrame.encode(
            topic: "proposal:p", seq: nil, ts: 1, kind: "fix_delta", data: ["text": "a\"b"])
        #expect(
            try JSONValue.parse(ephemeral) == [
                "type": "event", "topic": "proposal:p", "ts": 1, "kind": "fix_delta", "data": ["text": "a\"b"],
            ])
    }

    @Test func encodersProduceTheDocumentedShapes() throws {
        #expect(
            try JSONValue.parse(ServerMessage.welcome(principal: "alice", role: .admin))
                == ["type": "welcome", "principal": "alice", "role": "admin", "protocol": "medic.v1"])
        #expect(
            try JSONValue.parse(ServerMessage.ack(id: "c1", fields: ["proposal": "p1", "id": "ignored"]))
                == ["type": "ack", "id": "c1", "proposal": "p1"])
        #expect(
            try JSONValue.parse(ServerMessage.error(id: nil, code: .sinceBeyondHead, message: "m"))
                == ["type": "error", "code": "since_beyond_head", "message": "m"])
        let members = [PresenceMember(principal: "a", role: "viewer", since: 5)]
        #expect(
            try JSONValue.parse(ServerMessage.presence(topic: "proposal:p", members: members))
                == [
                    "type": "presence", "topic": "proposal:p",
                    "members": [["principal": "a", "role": "viewer", "since": 5]],
                ])
        #expect(
            ServerMessage.decode(ServerMessage.presence(topic: "proposal:p", members: members))
                == .success(.presence(topic: "proposal:p", members: members)))
    }

    @Test func decoderRejectsMalformedServerMessages() {
        func code(_ text: String) -> ErrorCode? {
            if case .failure(let e) = ServerMessage.decode(Array(text.utf8)) { return e.code }
            return nil
        }
        #expect(code(#"{"type":"nope"}"#) == .unknownType)
        #expect(code(#"{"type":"event","topic":"t","seq":0,"ts":1,"kind":"k","data":{}}"#) == .invalidMessage)
        #expect(code(#"{"type":"event","topic":"t","ts":1,"kind":"k"}"#) == .invalidMessage)
        #expect(code(#"{"type":"error","code":"weird","message":""}"#) == .invalidMessage)
        #expect(code(#"{"type":"welcome","principal":"a","role":"root","protocol":"medic.v1"}"#) == .invalidMessage)
        #expect(code("[") == .badJSON)
    }
}

@Suite struct RESTHelperTests {
    @Test func reviewBodyTakesTheProposalFromThePath() {
        let body: JSONObject = ["revision": 2, "verdict": "request_changes", "comment": "more tests"]
        #expect(
            ClientMessage.decodeReviewBody(proposal: "p1", body: body)
                == .success(ReviewCommand(proposal: "p1", revision: 2, verdict: .requestChanges, comment: "more tests"))
        )
        if case .failure(let e) = ClientMessage.decodeReviewBody(
            proposal: "p1", body: ["revision": 2, "verdict": "maybe"])
        {
            #expect(e.message.hasPrefix("field 'verdict' must be one of"))
        } else {
            Issue.record("accepted verdict 'maybe'")
        }
        if case .failure(let e) = ClientMessage.decodeReviewBody(
            proposal: "p1", body: ["revision": 2, "verdict": "reject"])
        {
            #expect(e.message == "missing field 'comment' (a string)")
        } else {
            Issue.record("accepted reject without comment")
        }
    }

    @Test func restErrorBodyAndStatus() throws {
        let error = ProtocolError(code: .staleRevision, message: "m")
        #expect(try JSONValue.parse(error.restBody) == ["error": ["code": "stale_revision", "message": "m"]])
        #expect(error.code.httpStatus == 409)
        #expect(ErrorCode.tooLarge.httpStatus == 413 && ErrorCode.unauthenticated.httpStatus == 401)
    }
}
