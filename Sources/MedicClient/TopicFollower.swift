// TopicFollower: a medic.v1 subscription that survives disconnects — reconnects with backoff and resumes
// from the last seq it delivered, so its events arrive exactly once and in order (protocol/README.md §3).
public import EventLoop
public import Protocol
public import TLS

/// Follows one topic on a Medic server. Loop-bound; callbacks run on the loop thread.
public final class TopicFollower {
    /// Each event, in seq order, never twice (ephemeral events, which have no seq, pass through).
    public var onEvent: ((Event) -> Void)?
    /// A connection ended and another attempt follows after `delaySeconds`.
    public var onReconnecting: ((_ reason: String, _ delaySeconds: Double) -> Void)?
    /// Retrying cannot help (bad, revoked or re-roled token: close 4001/4003; a refused subscription).
    /// The follower has stopped.
    public var onFatal: ((_ message: String, _ closeCode: UInt16?) -> Void)?

    private let loop: EventLoop
    private let endpoint: ClientEndpoint
    private let tls: TLSContext?
    private let token: String
    private let topic: Topic
    /// The last seq delivered.
    public private(set) var last: Int64
    private var client: WebSocketClient?
    private var delay = 0.5
    private var stopped = false
    private var lastError: ProtocolError?

    public init(loop: EventLoop, endpoint: ClientEndpoint, tls: TLSContext?, token: String, topic: Topic, since: Int64) {
        self.loop = loop
        self.endpoint = endpoint
        self.tls = tls
        self.token = token
        self.topic = topic
        self.last = since
    }

    public func start() {
        guard !stopped, client == nil else { return }
        lastError = nil
        let client = WebSocketClient(
            loop: loop, endpoint: endpoint, tls: tls, headers: [("Authorization", "Bearer \(token)")], subprotocols: [medicSubprotocol])
        self.client = client
        client.onOpen = { [weak self, weak client] in
            guard let self, let client else { return }
            self.delay = 0.5
            client.send(text: ClientRequest(id: "sub", message: .subscribe(topic: self.topic, since: self.last)).encode())
        }
        client.onText = { [weak self] text in self?.received(text) }
        client.onClose = { [weak self] closed in self?.closed(closed) }
        client.connect()
    }

    /// Stops for good (closes the connection; no callback follows).
    public func stop() {
        stopped = true
        let client = self.client
        self.client = nil
        client?.onClose = nil
        client?.close()
    }

    private func received(_ text: String) {
        switch ServerMessage.decode(Array(text.utf8)) {
        case .success(.event(let event)):
            if let seq = event.seq {
                guard seq > last else { return }  // never twice
                last = seq
            }
            onEvent?(event)
        case .success(.error(let error)):
            lastError = error
            // `unauthenticated` is followed by close 4001, which ends the follower with its code.
            if error.code == .forbidden || error.code == .sinceBeyondHead {
                fatal("server refused: \(error.code.rawValue): \(error.message)", closeCode: nil)
            }
        default:
            break
        }
    }

    private func closed(_ closed: ClientClosed) {
        client = nil
        guard !stopped else { return }
        if closed.code == CloseCode.authenticationFailed.rawValue || closed.code == CloseCode.credentialsChanged.rawValue {
            let meaning = closed.code == CloseCode.authenticationFailed.rawValue
                ? "authentication failed: unknown or revoked token" : "the token was revoked or its role changed"
            let detail = lastError.map { "\($0.code.rawValue): \($0.message)" } ?? closed.description
            return fatal("\(meaning) (close \(closed.code!); \(detail))", closeCode: closed.code)
        }
        let wait = delay
        delay = min(delay * 2, 10)
        onReconnecting?("\(closed.description); reconnecting from seq \(last)", wait)
        _ = loop.schedule(afterNanoseconds: UInt64(wait * 1_000_000_000)) { [weak self] in self?.start() }
    }

    private func fatal(_ message: String, closeCode: UInt16?) {
        guard !stopped else { return }
        stop()
        onFatal?(message, closeCode)
    }
}
