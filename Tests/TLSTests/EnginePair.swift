// EnginePair: a client and a server engine joined by an in-memory "network" for tests.
@_spi(Testing) import TLS
import TestSupport

/// A client and a server engine plus everything each side has read so far. `pump` plays the
/// network: it moves drained ciphertext from one engine into the other, optionally in small
/// chunks, running `readPlaintext` after every chunk as an event loop would.
final class EnginePair {
    let client: TLSEngine
    let server: TLSEngine
    var clientReceived: [UInt8] = []
    var serverReceived: [UInt8] = []
    /// The last non-`.ok` result each side reported (nil while all were `.ok`).
    var clientOutcome: TLSReadResult?
    var serverOutcome: TLSReadResult?

    init(client: TLSEngine, server: TLSEngine) {
        self.client = client
        self.server = server
    }

    /// A pair using the cached localhost certificate; the client verifies nothing unless given a context.
    static func make(clientContext: TLSContext? = nil, serverName: String? = nil) throws -> EnginePair {
        let files = try TestCertificates.localhost()
        let serverContext = try TLSContext.server(certificatePath: files.certificatePath, keyPath: files.keyPath)
        let clientContext = try clientContext ?? TLSContext.client(trustedCAPath: nil, verifyPeer: false)
        return EnginePair(
            client: try TLSEngine(context: clientContext, serverName: serverName),
            server: try TLSEngine(context: serverContext))
    }

    /// Shuttles ciphertext both ways until a round moves nothing (or a side fails), feeding at most
    /// `chunk` bytes at a time. Returns the number of rounds, bounded so a bug cannot hang a test.
    @discardableResult
    func pump(chunk: Int = .max, maxRounds: Int = 10_000) -> Int {
        for round in 1...maxRounds {
            let toServer = transfer(
                from: client, to: server, chunk: chunk, received: &serverReceived, outcome: &serverOutcome)
            let toClient = transfer(
                from: server, to: client, chunk: chunk, received: &clientReceived, outcome: &clientOutcome)
            if toServer == 0 && toClient == 0 { return round }
        }
        return maxRounds
    }

    private func transfer(
        from sender: TLSEngine, to receiver: TLSEngine, chunk: Int, received: inout [UInt8],
        outcome: inout TLSReadResult?
    ) -> Int {
        var wire: [UInt8] = []
        sender.drainCiphertext(into: &wire)
        var offset = 0
        while offset < wire.count {
            let end = min(wire.count, offset + min(chunk, wire.count - offset))
            wire[offset..<end].withUnsafeBytes { receiver.feedCiphertext($0) }
            offset = end
            let result = receiver.readPlaintext(into: &received)
            if case .ok = result {} else { outcome = result }
        }
        return wire.count
    }

    var clientFailure: TLSError? {
        if case .failed(let error) = clientOutcome { error } else { nil }
    }
    var serverFailure: TLSError? {
        if case .failed(let error) = serverOutcome { error } else { nil }
    }
}

extension TLSEngine {
    /// Writes a byte array, returning the error if any.
    func write(_ bytes: [UInt8]) -> TLSError? {
        bytes.withUnsafeBytes { writePlaintext($0) }
    }
}

extension TLSReadResult {
    var isPeerClosed: Bool {
        if case .peerClosed = self { true } else { false }
    }
}

/// Deterministic pseudo-random bytes (a xorshift), so large-transfer tests see varied content.
func patternBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed | 1
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}
