// TLSEngineTests: two engines handshake and talk entirely in memory.
@_spi(Testing) import TLS
import TestSupport
import Testing

@Suite struct TLSEngineTests {
    @Test func handshakeNegotiatesTLS13AndALPN() throws {
        let pair = try EnginePair.make()
        #expect(!pair.client.isHandshakeComplete)
        #expect(pair.client.hasPendingCiphertext, "a client queues its ClientHello at init")
        #expect(!pair.server.hasPendingCiphertext)
        pair.pump()
        #expect(pair.client.isHandshakeComplete)
        #expect(pair.server.isHandshakeComplete)
        #expect(pair.client.negotiatedProtocolVersion == "TLSv1.3")
        #expect(pair.server.negotiatedProtocolVersion == "TLSv1.3")
        #expect(pair.client.negotiatedALPN == "http/1.1")
        #expect(pair.server.negotiatedALPN == "http/1.1")
        #expect(pair.clientOutcome == nil && pair.serverOutcome == nil)
        // An idle, drained connection keeps no more than the retention limit in its BIOs.
        #expect(pair.server.bufferCapacity <= pair.server.bufferRetentionLimit)
    }

    @Test func clientCappedAtTLS12NegotiatesTLS12() throws {
        let clientContext = try TLSContext.client(trustedCAPath: nil, verifyPeer: false, maximumVersion: .tlsv12)
        let pair = try EnginePair.make(clientContext: clientContext)
        pair.pump()
        #expect(pair.server.negotiatedProtocolVersion == "TLSv1.2")
        #expect(pair.client.negotiatedProtocolVersion == "TLSv1.2")
        #expect(pair.client.write(Array("over 1.2".utf8)) == nil)
        #expect(pair.server.write(Array("back".utf8)) == nil)
        pair.pump()
        #expect(pair.serverReceived == Array("over 1.2".utf8))
        #expect(pair.clientReceived == Array("back".utf8))
    }

    @Test(arguments: [TLSVersion.tlsv12, .tlsv13])
    func handshakeAndDataOneByteAtATime(version: TLSVersion) throws {
        let clientContext = try TLSContext.client(trustedCAPath: nil, verifyPeer: false, maximumVersion: version)
        let pair = try EnginePair.make(clientContext: clientContext)
        pair.pump(chunk: 1)
        #expect(pair.client.isHandshakeComplete && pair.server.isHandshakeComplete)
        let request = Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
        let response = Array("HTTP/1.1 204 No Content\r\n\r\n".utf8)
        #expect(pair.client.write(request) == nil)
        pair.pump(chunk: 1)
        #expect(pair.server.write(response) == nil)
        pair.pump(chunk: 1)
        #expect(pair.serverReceived == request)
        #expect(pair.clientReceived == response)
        #expect(pair.clientOutcome == nil && pair.serverOutcome == nil)
    }

    @Test func plaintextWrittenBeforeHandshakeIsSentAfterIt() throws {
        let pair = try EnginePair.make()
        #expect(pair.client.write(Array("early".utf8)) == nil)
        #expect(pair.server.write(Array("eager".utf8)) == nil)
        pair.pump()
        #expect(pair.serverReceived == Array("early".utf8))
        #expect(pair.clientReceived == Array("eager".utf8))
    }

    @Test func oneMebibyteBothWaysArrivesIntactAndBuffersShrinkAfterwards() throws {
        let pair = try EnginePair.make()
        pair.pump()
        let up = patternBytes(count: 1 << 20, seed: 0x1234)
        let down = patternBytes(count: 1 << 20, seed: 0xBEEF)
        #expect(pair.client.write(up) == nil)
        #expect(pair.server.write(down) == nil)
        // Uneven chunks (not a multiple of the record size) exercise partial records.
        pair.pump(chunk: 7_001)
        #expect(pair.serverReceived.count == up.count)
        #expect(pair.serverReceived == up)
        #expect(pair.clientReceived == down)
        // The 1 MiB bursts grew both memory BIOs; once drained they are replaced.
        #expect(pair.client.bufferCapacity <= pair.client.bufferRetentionLimit * 2)
        #expect(pair.server.bufferCapacity <= pair.server.bufferRetentionLimit * 2)
        #expect(!pair.client.hasPendingCiphertext && !pair.server.hasPendingCiphertext)
    }

    @Test func closeNotifyIsSeenAsPeerClosedInBothDirections() throws {
        let pair = try EnginePair.make()
        pair.pump()
        #expect(pair.client.write(Array("last words".utf8)) == nil)
        pair.client.shutdown()
        #expect(pair.client.hasPendingCiphertext)
        pair.pump()
        #expect(pair.serverReceived == Array("last words".utf8), "data before close_notify is delivered")
        #expect(pair.serverOutcome?.isPeerClosed == true)
        // Reading again keeps reporting the closure.
        var more: [UInt8] = []
        #expect(pair.server.readPlaintext(into: &more).isPeerClosed)
        #expect(more.isEmpty)

        let afterShutdown = pair.client.write(Array("too late".utf8))
        #expect(afterShutdown?.code == .closed)

        pair.server.shutdown()
        pair.pump()
        #expect(pair.clientOutcome?.isPeerClosed == true)
    }

    @Test func garbageBytesFailTheServerHandshake() throws {
        let pair = try EnginePair.make()
        let garbage: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00]
        garbage.withUnsafeBytes { pair.server.feedCiphertext($0) }
        var plaintext: [UInt8] = []
        guard case .failed(let error) = pair.server.readPlaintext(into: &plaintext) else {
            Issue.record("garbage was accepted")
            return
        }
        #expect(error.code == .handshake)
        #expect(error.operation == "SSL_do_handshake")
        #expect(!error.openSSLErrors.isEmpty)
        #expect(plaintext.isEmpty)
        // The failure is sticky, and writes report it too.
        #expect(pair.server.write([1, 2, 3])?.code == .handshake)
        guard case .failed = pair.server.readPlaintext(into: &plaintext) else {
            Issue.record("failure was not sticky")
            return
        }
    }

    @Test func plainHTTPSentToTheServerIsNamedInTheError() throws {
        let pair = try EnginePair.make()
        Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8).withUnsafeBytes { pair.server.feedCiphertext($0) }
        var plaintext: [UInt8] = []
        guard case .failed(let error) = pair.server.readPlaintext(into: &plaintext) else {
            Issue.record("plain HTTP was accepted")
            return
        }
        #expect(error.description.contains("http request"), "\(error)")
    }

    @Test func corruptedRecordAfterHandshakeFailsWithProtocolFailure() throws {
        let pair = try EnginePair.make()
        pair.pump()
        #expect(pair.client.write(Array("hello".utf8)) == nil)
        var wire: [UInt8] = []
        pair.client.drainCiphertext(into: &wire)
        wire[wire.count - 1] ^= 0xff  // flip bits in the AEAD tag
        wire.withUnsafeBytes { pair.server.feedCiphertext($0) }
        var plaintext: [UInt8] = []
        guard case .failed(let error) = pair.server.readPlaintext(into: &plaintext) else {
            Issue.record("a corrupted record was accepted")
            return
        }
        #expect(error.code == .protocolFailure)
        #expect(plaintext.isEmpty)
        #expect(pair.server.hasPendingCiphertext, "a bad_record_mac alert is queued for the peer")
    }

    @Test func clientOfferingAtMostTLS11IsRejected() throws {
        let pair = try EnginePair.make(clientContext: try TLSContext.legacyTLS11Client())
        pair.pump()
        let serverError = try #require(pair.serverFailure)
        #expect(serverError.code == .handshake)
        #expect(serverError.description.contains("unsupported protocol"), "\(serverError)")
        #expect(!pair.server.isHandshakeComplete)
        let clientError = try #require(pair.clientFailure)
        #expect(clientError.description.contains("protocol version"), "\(clientError)")
    }

    @Test func closedEngineRefusesWorkAndCloseIsIdempotent() throws {
        let pair = try EnginePair.make()
        pair.pump()
        pair.client.close()
        pair.client.close()
        #expect(pair.client.write([1])?.code == .closed)
        var plaintext: [UInt8] = []
        guard case .failed(let error) = pair.client.readPlaintext(into: &plaintext) else {
            Issue.record("closed engine read")
            return
        }
        #expect(error.code == .closed)
        #expect(!pair.client.hasPendingCiphertext)
        #expect(pair.client.drainCiphertext(into: &plaintext) == 0)
    }
}
