// Tests for the connection state machine: header rules, fragmentation, control frames, close, limits.

import Testing
@testable import WebSocket

@Suite struct WebSocketConnectionHeaderTests {
    @Test func lengthWithMostSignificantBitSetIsRejected() {
        // §5.2: 64-bit length with MSB set (a header claiming 2^63 bytes).
        let (actions, connection) = drive(rawFrame(firstByte: 0x82, lengthBytes: [127, 0x80, 0, 0, 0, 0, 0, 0, 0], payload: []))
        #expect(actions == failure(1002))
        #expect(connection.state == .closed)
        #expect(connection.failure?.closeCode == 1002)
    }

    @Test func hugeLengthWithinRangeIsTooBig() {
        let (actions, _) = drive(rawFrame(firstByte: 0x82, lengthBytes: [127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], payload: []))
        #expect(actions == failure(1009))
    }

    @Test func nonMinimalLengthsAreRejected() {
        // 124 bytes encoded as 126 + 16-bit (the RFC's own example), and 65535 in the 64-bit form.
        let (short, _) = drive(rawFrame(firstByte: 0x82, lengthBytes: [126, 0, 124], payload: bytes(count: 124)))
        #expect(short == failure(1002))
        let (zero, _) = drive(rawFrame(firstByte: 0x82, lengthBytes: [126, 0, 0], payload: []))
        #expect(zero == failure(1002))
        let (medium, _) = drive(rawFrame(firstByte: 0x82, lengthBytes: [127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF], payload: []))
        #expect(medium == failure(1002))
        // The smallest lengths of each form are accepted.
        let (ok16, _) = drive(rawFrame(firstByte: 0x82, lengthBytes: [126, 0, 126], payload: bytes(count: 126)))
        #expect(ok16 == [.message(.binary, bytes(count: 126))])
        let (ok64, _) = drive(rawFrame(firstByte: 0x82, lengthBytes: [127, 0, 0, 0, 0, 0, 1, 0, 0], payload: bytes(count: 65536)))
        #expect(ok64 == [.message(.binary, bytes(count: 65536))])
    }

    @Test func serverRejectsUnmaskedFrames() {
        let (actions, connection) = drive(WebSocketFrame.encode(.text, payload: Array("hi".utf8)))
        #expect(actions == failure(1002))
        #expect(connection.failure?.description.contains("unmasked") == true)
    }

    @Test func clientRejectsMaskedFrames() {
        var actions: [WebSocketAction] = []
        var connection = WebSocketConnection(role: .client)
        connection.receive(clientFrame(.text, Array("hi".utf8)), into: &actions)
        // The client's own close frame is masked with a random key: check its shape, then unmask it.
        #expect(actions.count == 2)
        guard case .send(let frame) = actions.first else {
            Issue.record("expected a close frame, got \(actions)")
            return
        }
        #expect(frame.count == 8)
        #expect(Array(frame[0...1]) == [0x88, 0x82])
        let code = [frame[6] ^ frame[2], frame[7] ^ frame[3]]
        #expect(code == [0x03, 0xEA])
        #expect(Act(actions[1]) == .close)
        #expect(connection.state == .closed)
    }

    @Test(arguments: [UInt8(0x40), 0x20, 0x10, 0x70])
    func reservedBitsAreRejected(bits: UInt8) {
        let (actions, _) = drive(rawFrame(firstByte: 0x81 | bits, lengthBytes: [2], payload: Array("hi".utf8)))
        #expect(actions == failure(1002))
    }

    @Test(arguments: [UInt8(3), 4, 5, 6, 7, 11, 12, 13, 14, 15])
    func unknownOpcodesAreRejected(opcode: UInt8) {
        let (actions, _) = drive(rawFrame(firstByte: 0x80 | opcode, lengthBytes: [0], payload: []))
        #expect(actions == failure(1002))
    }

    @Test func fragmentedControlFrameIsRejected() {
        let (actions, _) = drive(rawFrame(firstByte: 0x09, lengthBytes: [1], payload: [1]))
        #expect(actions == failure(1002))
    }

    @Test func controlFramePayloadLimitIs125() {
        let (ok, _) = drive(clientFrame(.ping, bytes(count: 125)))
        #expect(ok == [.send(WebSocketFrame.encode(.pong, payload: bytes(count: 125)))])
        let (tooLong, _) = drive(rawFrame(firstByte: 0x89, lengthBytes: [126, 0, 126], payload: bytes(count: 126)))
        #expect(tooLong == failure(1002))
    }

    @Test func inputAfterFailureIsIgnored() {
        var connection = WebSocketConnection(role: .server)
        var actions: [WebSocketAction] = []
        connection.receive(rawFrame(firstByte: 0xC1, lengthBytes: [0], payload: []), into: &actions)
        #expect(actions.map(Act.init) == failure(1002))
        actions.removeAll()
        connection.receive(clientFrame(.text, Array("late".utf8)), into: &actions)
        #expect(actions.isEmpty)
    }

    @Test func errorStopsProcessingTheRestOfTheBuffer() {
        let input = rawFrame(firstByte: 0x83, lengthBytes: [0], payload: []) + clientFrame(.text, Array("x".utf8))
        let (actions, _) = drive(input)
        #expect(actions == failure(1002))
    }
}

@Suite struct WebSocketFragmentationTests {
    @Test func fragmentsReassemble() {
        let input = clientFrame(.text, Array("Hel".utf8), fin: false) + clientFrame(.continuation, [], fin: false)
            + clientFrame(.continuation, Array("lo".utf8))
        let (actions, _) = drive(input)
        #expect(actions == [.message(.text, Array("Hello".utf8))])
    }

    @Test func severalMessagesInOneBuffer() {
        let input = clientFrame(.text, Array("a".utf8)) + clientFrame(.binary, [1, 2]) + clientFrame(.text, [])
        let (actions, _) = drive(input)
        #expect(actions == [.message(.text, [0x61]), .message(.binary, [1, 2]), .message(.text, [])])
    }

    @Test func continuationWithoutMessageIsRejected() {
        let (actions, _) = drive(clientFrame(.continuation, [1]))
        #expect(actions == failure(1002))
        // Also after a message has completed.
        let (after, _) = drive(clientFrame(.binary, [1]) + clientFrame(.continuation, [2]))
        #expect(after == [.message(.binary, [1])] + failure(1002))
    }

    @Test func newDataFrameInsideFragmentedMessageIsRejected() {
        let (text, _) = drive(clientFrame(.text, [0x61], fin: false) + clientFrame(.text, [0x62]))
        #expect(text == failure(1002))
        let (binary, _) = drive(clientFrame(.binary, [1], fin: false) + clientFrame(.binary, [2], fin: false))
        #expect(binary == failure(1002))
    }

    @Test func pingInsideFragmentedMessageIsAnsweredImmediately() {
        let input = clientFrame(.text, Array("ab".utf8), fin: false) + clientFrame(.ping, Array("p".utf8))
            + clientFrame(.pong, [7]) + clientFrame(.continuation, Array("cd".utf8))
        let (actions, _) = drive(input)
        #expect(actions == [.send([0x8A, 0x01, 0x70]), .pong([7]), .message(.text, Array("abcd".utf8))])
    }

    @Test func closeInsideFragmentedMessageIsAnsweredCleanly() {
        let input = clientFrame(.text, Array("ab".utf8), fin: false) + clientFrame(.close, [0x03, 0xE8])
            + clientFrame(.continuation, Array("cd".utf8))
        let (actions, connection) = drive(input)
        #expect(actions == [.send(serverClose(1000)), .close])
        #expect(connection.state == .closed)
        #expect(connection.failure == nil)
    }

    @Test func emptyPingAndPong() {
        let (actions, _) = drive(clientFrame(.ping, []) + clientFrame(.pong, []))
        #expect(actions == [.send([0x8A, 0x00]), .pong([])])
    }
}

@Suite struct WebSocketUTF8Tests {
    @Test func multiByteCharacterSplitAcrossFragments() {
        let euro: [UInt8] = [0xE2, 0x82, 0xAC]
        let emoji: [UInt8] = [0xF0, 0x9F, 0x98, 0x80]
        for character in [euro, emoji] {
            for split in 1..<character.count {
                let input = clientFrame(.text, [0x61] + character[..<split], fin: false)
                    + clientFrame(.continuation, Array(character[split...]) + [0x62])
                let (actions, _) = drive(input)
                #expect(actions == [.message(.text, [0x61] + character + [0x62])])
            }
        }
        // One byte per fragment.
        let perByte = emoji.enumerated().flatMap { index, byte in
            clientFrame(index == 0 ? .text : .continuation, [byte], fin: index == emoji.count - 1)
        }
        #expect(drive(perByte).0 == [.message(.text, emoji)])
    }

    @Test func invalidUTF8InLastFragment() {
        let input = clientFrame(.text, Array("ok".utf8), fin: false) + clientFrame(.continuation, [0x61, 0xFF])
        let (actions, connection) = drive(input)
        #expect(actions == failure(1007))
        #expect(connection.failure?.closeCode == 1007)
    }

    @Test func invalidUTF8FailsFastBeforeTheMessageEnds() {
        // A non-final fragment with a bad byte fails without waiting for the rest.
        let (fragment, _) = drive(clientFrame(.text, [0x61, 0xC0, 0x80], fin: false))
        #expect(fragment == failure(1007))
        // Even mid-frame: only part of a 100-byte frame has arrived.
        let frame = clientFrame(.text, [0x61, 0xFE] + [UInt8](repeating: 0x61, count: 98))
        let (partial, _) = drive(Array(frame.prefix(10)))
        #expect(partial == failure(1007))
    }

    @Test func incompleteSequenceAtEndOfMessage() {
        let (actions, _) = drive(clientFrame(.text, [0x61, 0xE2, 0x82]))
        #expect(actions == failure(1007))
        let (fragmented, _) = drive(clientFrame(.text, [0xF0, 0x9F], fin: false) + clientFrame(.continuation, [0x98]))
        #expect(fragmented == failure(1007))
    }

    @Test(arguments: [
        [UInt8(0xC0), 0x80],  // overlong NUL
        [0xC1, 0xBF],  // overlong 2-byte
        [0xE0, 0x80, 0x80],  // overlong 3-byte
        [0xE0, 0x9F, 0xBF],  // overlong U+07FF
        [0xF0, 0x80, 0x80, 0x80],  // overlong 4-byte
        [0xF0, 0x8F, 0xBF, 0xBF],  // overlong U+FFFF
        [0xED, 0xA0, 0x80],  // U+D800 surrogate
        [0xED, 0xBF, 0xBF],  // U+DFFF surrogate
        [0xF4, 0x90, 0x80, 0x80],  // U+110000
        [0xF5, 0x80, 0x80, 0x80],  // lead byte out of range
        [0xFF],
        [0x80],  // stray continuation
        [0xE2, 0x28, 0xA1],  // bad continuation
    ])
    func invalidSequencesAreRejected(sequence: [UInt8]) {
        let (actions, _) = drive(clientFrame(.text, [0x61] + sequence + [0x62]))
        #expect(actions == failure(1007))
    }

    @Test(arguments: [
        [UInt8(0x00)], [0x7F], [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF],
        [0xEE, 0x80, 0x80], [0xEF, 0xBF, 0xBF], [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],
    ])
    func boundarySequencesAreAccepted(sequence: [UInt8]) {
        let (actions, _) = drive(clientFrame(.text, sequence))
        #expect(actions == [.message(.text, sequence)])
    }

    @Test func binaryMessagesAreNotValidated() {
        let (actions, _) = drive(clientFrame(.binary, [0xFF, 0xC0, 0x80]))
        #expect(actions == [.message(.binary, [0xFF, 0xC0, 0x80])])
    }

    @Test func validatorAgreesWithStandardLibrary() {
        // Differential check against the standard library on random, mostly-valid-looking input.
        var random = TestRandom(seed: 42)
        let pieces: [[UInt8]] = [
            [0x61], [0xC3, 0xA9], [0xE2, 0x82, 0xAC], [0xF0, 0x9F, 0x98, 0x80], [0xED, 0xA0, 0x80], [0xC0],
            [0x80], [0xF4, 0x90], [0xE0, 0xA0], [0xBF], [0xF4, 0x8F, 0xBF, 0xBF],
        ]
        for _ in 0..<3000 {
            var input: [UInt8] = []
            for _ in 0..<Int.random(in: 0...12, using: &random) {
                input += pieces[Int.random(in: 0..<pieces.count, using: &random)]
            }
            let expected = String(validating: input, as: UTF8.self) != nil
            let whole = input.withUnsafeBytes { UTF8Validator.isValid($0) }
            #expect(whole == expected, "\(input)")
            // The same verdict when fed in two arbitrary pieces.
            let split = Int.random(in: 0...input.count, using: &random)
            var validator = UTF8Validator()
            let first = input[..<split].withUnsafeBytes { validator.consume($0) }
            let second = first && input[split...].withUnsafeBytes { validator.consume($0) }
            #expect((second && validator.isComplete) == expected, "\(input) split \(split)")
        }
    }

    @Test func longASCIIWithLateErrorIsCaught() {
        // Exercises the 8-byte ASCII fast path right up to an error.
        for position in 0..<24 {
            var text = [UInt8](repeating: 0x41, count: 24)
            text[position] = 0xFF
            let (actions, _) = feed([clientFrame(.text, text)[...]])
            #expect(actions == failure(1007), "bad byte at \(position)")
        }
    }
}

@Suite struct WebSocketCloseTests {
    @Test func emptyCloseIsAnsweredWithEmptyClose() {
        let (actions, connection) = drive(clientFrame(.close, []))
        #expect(actions == [.send([0x88, 0x00]), .close])
        #expect(connection.state == .closed)
        #expect(connection.peerCloseCode == nil)
    }

    @Test func closeEchoesTheStatusCode() {
        let (actions, connection) = drive(clientFrame(.close, [0x03, 0xE9] + Array("going".utf8)))
        #expect(actions == [.send(serverClose(1001)), .close])
        #expect(connection.peerCloseCode == 1001)
    }

    @Test func closeWithOneBytePayloadIsAProtocolError() {
        let (actions, _) = drive(clientFrame(.close, [0x03]))
        #expect(actions == failure(1002))
    }

    @Test(arguments: [UInt16(1000), 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4001, 4999])
    func validCloseCodesAreEchoed(code: UInt16) {
        #expect(WebSocketCloseCode.isValidOnWire(code))
        let (actions, _) = drive(clientFrame(.close, [UInt8(code >> 8), UInt8(code & 0xFF)]))
        #expect(actions == [.send(serverClose(code)), .close])
    }

    @Test(arguments: [UInt16(0), 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
    func invalidCloseCodesAreRejected(code: UInt16) {
        #expect(!WebSocketCloseCode.isValidOnWire(code))
        let (actions, _) = drive(clientFrame(.close, [UInt8(code >> 8), UInt8(code & 0xFF)]))
        #expect(actions == failure(1002))
    }

    @Test func closeReasonMustBeUTF8() {
        let (bad, _) = drive(clientFrame(.close, [0x03, 0xE8, 0x61, 0xFF]))
        #expect(bad == failure(1007))
        let (truncated, _) = drive(clientFrame(.close, [0x03, 0xE8, 0xE2, 0x82]))
        #expect(truncated == failure(1007))
        let (good, _) = drive(clientFrame(.close, [0x03, 0xE8] + Array("é€😀".utf8)))
        #expect(good == [.send(serverClose(1000)), .close])
    }

    @Test func maximalClosePayload() {
        let payload = WebSocketFrame.closePayload(code: 1000, reason: String(repeating: "z", count: 123))
        #expect(payload.count == 125)
        let (actions, _) = drive(clientFrame(.close, payload))
        #expect(actions == [.send(serverClose(1000)), .close])
    }

    @Test func inputAfterCloseIsIgnored() {
        let (actions, _) = drive(clientFrame(.close, []) + clientFrame(.text, [0x61]) + [0xFF, 0xFF])
        #expect(actions == [.send([0x88, 0x00]), .close])
    }

    @Test func initiatedCloseWaitsForPeerClose() {
        var connection = WebSocketConnection(role: .server)
        let frame = connection.initiateClose(code: 1001, reason: "bye")
        #expect(frame == [0x88, 0x05, 0x03, 0xE9] + Array("bye".utf8))
        #expect(connection.state == .closeSent)
        #expect(connection.initiateClose(code: 1000, reason: "") == [], "only one Close is sent")

        // Data and pings are ignored while we wait; pongs are still reported.
        var actions: [WebSocketAction] = []
        connection.receive(clientFrame(.text, Array("ignored".utf8)) + clientFrame(.ping, [1]) + clientFrame(.pong, [2]), into: &actions)
        #expect(actions.map(Act.init) == [.pong([2])])
        #expect(connection.state == .closeSent)

        actions.removeAll()
        connection.receive(clientFrame(.close, [0x03, 0xE9]), into: &actions)
        #expect(actions.map(Act.init) == [.close])
        #expect(connection.state == .closed)
        #expect(connection.peerCloseCode == 1001)
    }

    @Test func initiatedCloseDuringFragmentedMessage() {
        var connection = WebSocketConnection(role: .server)
        var actions: [WebSocketAction] = []
        connection.receive(clientFrame(.text, Array("ab".utf8), fin: false), into: &actions)
        _ = connection.initiateClose(code: 1008, reason: "")
        // The peer may still finish its message; that is not an error, and it is not delivered.
        let rest = clientFrame(.continuation, Array("cd".utf8)) + clientFrame(.close, [0x03, 0xF0])
        for byte in rest { connection.receive([byte], into: &actions) }
        #expect(actions.map(Act.init) == [.close])
    }

    @Test func protocolErrorAfterInitiatedCloseOnlyCloses() {
        var connection = WebSocketConnection(role: .server)
        _ = connection.initiateClose(code: 1001, reason: "")
        var actions: [WebSocketAction] = []
        connection.receive(rawFrame(firstByte: 0x8B, lengthBytes: [0], payload: []), into: &actions)
        #expect(actions.map(Act.init) == [.close])
        #expect(connection.failure?.closeCode == 1002)
    }

    @Test func clientRoleInitiatedCloseIsMaskedAndDecodable() {
        var client = WebSocketConnection(role: .client)
        let frame = client.initiateClose(code: 4001, reason: "auth")
        #expect(frame[1] & 0x80 != 0)
        let (actions, server) = drive(frame)
        #expect(actions == [.send(serverClose(4001)), .close])
        #expect(server.peerCloseCode == 4001)
    }

    @Test func clientRoleAnswersPingWithMaskedPong() {
        var client = WebSocketConnection(role: .client)
        var actions: [WebSocketAction] = []
        client.receive(WebSocketFrame.encode(.ping, payload: [9, 8, 7]), into: &actions)
        guard actions.count == 1, case .send(let pong) = actions[0] else {
            Issue.record("expected one pong, got \(actions)")
            return
        }
        // A server connection decodes the masked pong back to the same payload.
        #expect(drive(pong).0 == [.pong([9, 8, 7])])
    }

    @Test func errorMappingIsOnePlace() {
        #expect(WebSocketProtocolError(.reservedBitsSet(4)).closeCode == 1002)
        #expect(WebSocketProtocolError(.invalidUTF8).closeCode == 1007)
        #expect(WebSocketProtocolError(.invalidCloseReason).closeCode == 1007)
        #expect(WebSocketProtocolError(.messageTooBig(5)).closeCode == 1009)
        #expect(WebSocketProtocolError(.tooManyFragments(5)).closeCode == 1009)
    }
}

@Suite struct WebSocketLimitTests {
    let limits = WebSocketLimits(maxFrameSize: 100, maxMessageSize: 150, maxFragments: 3)

    @Test func frameSizeAtLimitMinusOneLimitAndPlusOne() {
        #expect(drive(clientFrame(.binary, bytes(count: 99)), limits: limits).0 == [.message(.binary, bytes(count: 99))])
        #expect(drive(clientFrame(.binary, bytes(count: 100)), limits: limits).0 == [.message(.binary, bytes(count: 100))])
        #expect(drive(clientFrame(.binary, bytes(count: 101)), limits: limits).0 == failure(1009))
    }

    @Test func frameLimitIsCheckedBeforeThePayloadArrives() {
        let header = Array(clientFrame(.binary, bytes(count: 101)).prefix(6))
        #expect(drive(header, limits: limits).0 == failure(1009))
    }

    @Test func messageSizeAtLimitMinusOneLimitAndPlusOne() {
        for (total, expectOK) in [(149, true), (150, true), (151, false)] {
            let payload = bytes(count: total, seed: 5)
            let fragmented = clientFrame(.binary, Array(payload[..<75]), fin: false)
                + clientFrame(.continuation, Array(payload[75...]))
            let (actions, _) = drive(fragmented, limits: limits)
            #expect(actions == (expectOK ? [.message(.binary, payload)] : failure(1009)), "total \(total)")
        }
    }

    @Test func fragmentCountAtLimitMinusOneLimitAndPlusOne() {
        for (count, expectOK) in [(2, true), (3, true), (4, false)] {
            var input: [UInt8] = []
            for index in 0..<count {
                input += clientFrame(index == 0 ? .text : .continuation, [0x61], fin: index == count - 1)
            }
            let (actions, _) = drive(input, limits: limits)
            #expect(actions == (expectOK ? [.message(.text, [UInt8](repeating: 0x61, count: count))] : failure(1009)))
        }
    }

    @Test func controlFramesDoNotCountAsFragments() {
        let input = clientFrame(.text, [0x61], fin: false) + clientFrame(.ping, []) + clientFrame(.ping, [])
            + clientFrame(.continuation, [0x62], fin: false) + clientFrame(.continuation, [0x63])
        let (actions, _) = drive(input, limits: limits)
        #expect(actions == [.send([0x8A, 0]), .send([0x8A, 0]), .message(.text, Array("abc".utf8))])
    }

    @Test func unlimitedFragments() {
        var input: [UInt8] = []
        for index in 0..<2000 { input += clientFrame(index == 0 ? .binary : .continuation, [], fin: index == 1999) }
        let (actions, _) = feed([input[...]], limits: WebSocketLimits(maxFragments: nil))
        #expect(actions == [.message(.binary, [])])
        let (limited, _) = feed([input[...]], limits: WebSocketLimits())
        #expect(limited == failure(1009), "the default allows 1024")
    }

    @Test func limitsResetBetweenMessages() {
        let input = clientFrame(.binary, bytes(count: 100)) + clientFrame(.binary, bytes(count: 100))
        let (actions, _) = drive(input, limits: limits)
        #expect(actions == [.message(.binary, bytes(count: 100)), .message(.binary, bytes(count: 100))])
    }

    /// A session starts small (before authentication) and is lifted later: the new limits apply from the next
    /// frame header, to the rest of a message in progress too.
    @Test func setLimitsAppliesFromTheNextFrame() {
        var connection = WebSocketConnection(role: .server, limits: WebSocketLimits(maxFrameSize: 10, maxMessageSize: 10))
        func receive(_ input: [UInt8]) -> [Act] {
            var actions: [WebSocketAction] = []
            return input.withUnsafeBytes { raw in
                connection.receive(raw, into: &actions)
                return actions.map { Act($0, input: raw) }
            }
        }
        #expect(receive(clientFrame(.binary, bytes(count: 8), fin: false)) == [])
        connection.setLimits(WebSocketLimits.Shared(limits))
        let rest = bytes(count: 90, seed: 2)
        #expect(receive(clientFrame(.continuation, rest) + clientFrame(.binary, bytes(count: 100)))
            == [.message(.binary, bytes(count: 8) + rest), .message(.binary, bytes(count: 100))])
        connection.setLimits(WebSocketLimits.Shared(WebSocketLimits(maxFrameSize: 10, maxMessageSize: 10)))
        #expect(receive(Array(clientFrame(.text, bytes(count: 11)).prefix(6))) == failure(1009))
    }

    @Test func defaults() {
        let defaults = WebSocketLimits()
        #expect(defaults.maxFrameSize == 1 << 20)
        #expect(defaults.maxMessageSize == 1 << 20)
        #expect(defaults.maxFragments == 1024)
    }
}

@Suite struct WebSocketInPlaceTests {
    /// Whole unfragmented messages inside the buffer are unmasked there and reported by range (no copy);
    /// a message cut by the end of the buffer, or fragmented, is assembled and reported as `.message`.
    @Test func wholeMessagesAreReportedInPlace() {
        let first = clientFrame(.text, Array("hello".utf8))
        let second = clientFrame(.binary, [1, 2, 3])
        let third = clientFrame(.text, Array("split".utf8))
        var buffer = first + second + Array(third.prefix(8))
        var connection = WebSocketConnection(role: .server)
        var actions: [WebSocketAction] = []
        buffer.withUnsafeMutableBytes { connection.receive(inPlace: $0, into: &actions) }
        guard actions.count == 2, case .messageInInput(.text, let a) = actions[0], case .messageInInput(.binary, let b) = actions[1]
        else {
            Issue.record("expected two in-place messages, got \(actions)")
            return
        }
        #expect(Array(buffer[a]) == Array("hello".utf8))  // unmasked in the caller's buffer
        #expect(a == 6..<11)
        #expect(Array(buffer[b]) == [1, 2, 3])
        var rest = Array(third.dropFirst(8))
        actions.removeAll()
        rest.withUnsafeMutableBytes { connection.receive(inPlace: $0, into: &actions) }
        #expect(actions.count == 1)
        guard case .message(.text, let payload) = actions.first else {
            Issue.record("a split message is assembled, got \(actions)")
            return
        }
        #expect(payload == Array("split".utf8))

        var fragmented = clientFrame(.text, Array("ab".utf8), fin: false) + clientFrame(.continuation, Array("c".utf8))
        actions.removeAll()
        fragmented.withUnsafeMutableBytes { connection.receive(inPlace: $0, into: &actions) }
        guard actions.count == 1, case .message(.text, let joined) = actions[0] else {
            Issue.record("a fragmented message is assembled, got \(actions)")
            return
        }
        #expect(joined == Array("abc".utf8))
    }

    /// In place, invalid UTF-8 in a text message still fails the connection with 1007 (RFC 6455 §8.1).
    @Test func invalidTextFailsInPlace() {
        var buffer = clientFrame(.text, [0x61, 0xC0, 0x80])
        var connection = WebSocketConnection(role: .server)
        var actions: [WebSocketAction] = []
        buffer.withUnsafeMutableBytes { connection.receive(inPlace: $0, into: &actions) }
        #expect(actions.map { Act($0) } == failure(1007))
    }
}
