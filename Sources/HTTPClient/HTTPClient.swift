// HTTPClient: outbound HTTP on libcurl's multi *socket* interface, driven by our event loop (never blocks).
import CCurl
public import EventLoop
import Logging

/// curl's process-wide setup, run once. A Swift global's initializer runs exactly once, thread-safely
/// (swift_once), which is what `curl_global_init`'s "call it once before any other thread uses curl" needs.
private let curlGlobalInitResult: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))

/// An HTTP client bound to one `EventLoop`. Not `Sendable`: use it on the loop thread only.
///
/// curl talks to the loop through exactly two callbacks (curl `docs/examples/ephiperfifo.c`):
/// - `CURLMOPT_SOCKETFUNCTION`: "watch this socket for IN/OUT, or stop" → loop `register`/`setInterest`/`unregister`;
/// - `CURLMOPT_TIMERFUNCTION`: "call me back in N ms" → one loop timer.
/// Readiness and timer expiry call `curl_multi_socket_action`; then finished transfers are drained with
/// `curl_multi_info_read`. The C callbacks find this object through `Unmanaged` user data, retained in
/// `init` and released by the idempotent `close()` — so a client lives until it is closed.
public final class HTTPClient {
    private let loop: EventLoop
    private let multi: UnsafeMutableRawPointer
    private var selfReference: Unmanaged<HTTPClient>?
    private var transfers: [TransferID: Transfer] = [:]
    private var sockets: [Int32: CurlSocket] = [:]
    private var curlTimer: TimerID?
    /// Transfers with a head or body bytes waiting to be handed to the caller.
    private var readyQueue: [Transfer] = []
    private var nextID: UInt64 = 1
    private var closed = false

    /// Creates a client and its curl multi handle. Throws if curl cannot initialise.
    public init(loop: EventLoop) throws(HTTPClientError) {
        guard curlGlobalInitResult == CURLE_OK else {
            throw HTTPClientError(code: .other, message: "curl_global_init failed", curlCode: Int(curlGlobalInitResult.rawValue))
        }
        guard let multi = curl_multi_init() else {
            throw HTTPClientError(code: .other, message: "curl_multi_init failed")
        }
        self.loop = loop
        self.multi = multi
        let me = Unmanaged.passRetained(self)
        selfReference = me
        _ = ccurl_multi_setopt_socket_cb(multi, curlSocketCallback)
        _ = ccurl_multi_setopt_pointer(multi, CURLMOPT_SOCKETDATA, me.toOpaque())
        _ = ccurl_multi_setopt_timer_cb(multi, curlTimerCallback)
        _ = ccurl_multi_setopt_pointer(multi, CURLMOPT_TIMERDATA, me.toOpaque())
    }

    /// Transfers started and not yet completed.
    public var activeTransfers: Int { transfers.count }

    /// Starts a transfer. `onHead`: once, when the final status line and header fields are in; `onBody`: each
    /// chunk as it arrives (the buffer is valid only during the call); `onComplete`: exactly once — success after
    /// the whole body (any HTTP status is a success here), or an error. All on the loop thread, never inside curl.
    /// If the transfer cannot even start (closed client, bad option), `onComplete` runs on the next loop tick.
    @discardableResult
    public func execute(
        _ request: HTTPClientRequest,
        onHead: @escaping (HTTPClientResponseHead) -> Void,
        onBody: @escaping (UnsafeRawBufferPointer) -> Void,
        onComplete: @escaping (Result<HTTPClientResponseHead, HTTPClientError>) -> Void
    ) -> TransferID {
        let id = TransferID(raw: nextID)
        nextID += 1
        let failLater = { (error: HTTPClientError) -> TransferID in
            self.loop.schedule(afterNanoseconds: 0) { onComplete(.failure(error)) }
            return id
        }
        if closed { return failLater(HTTPClientError(code: .aborted, message: "HTTP client is closed")) }
        guard let easy = curl_easy_init() else {
            return failLater(HTTPClientError(code: .other, message: "curl_easy_init failed"))
        }
        let transfer = Transfer(id: id, easy: easy, request: request, onHead: onHead, onBody: onBody, onComplete: onComplete)
        transfer.client = self
        if let error = configure(transfer, request) {
            transfer.release()
            return failLater(error)
        }
        let added = curl_multi_add_handle(multi, easy)
        guard added == CURLM_OK else {
            transfer.release()
            return failLater(HTTPClientError(code: .other, message: String(cString: curl_multi_strerror(added))))
        }
        transfers[id] = transfer
        return id
    }

    /// Aborts a transfer; its `onComplete` runs *synchronously, inside this call* with `.aborted`.
    /// Harmless for an unknown or finished id.
    public func cancel(_ id: TransferID) {
        guard let transfer = transfers[id] else { return }
        finish(transfer, .failure(HTTPClientError(code: .aborted, message: "cancelled")))
    }

    /// Aborts every transfer (each `onComplete` gets `.aborted`), stops watching curl's sockets, frees the multi
    /// handle and releases the self-reference the C callbacks used. Idempotent; later `execute` calls fail.
    public func close() {
        guard !closed else { return }
        closed = true
        for id in transfers.keys.sorted(by: { $0.raw < $1.raw }) {
            if let transfer = transfers[id] {
                finish(transfer, .failure(HTTPClientError(code: .aborted, message: "HTTP client closed")))
            }
        }
        // Cleanup may still call the socket callback (closing cached connections), so self must be alive here.
        curl_multi_cleanup(multi)
        for socket in sockets.values { socket.stop(loop) }
        sockets.removeAll()
        if let curlTimer { loop.cancel(curlTimer) }
        curlTimer = nil
        selfReference?.release()
        selfReference = nil
    }

    // MARK: configuring an easy handle

    /// Applies the request to the easy handle; returns an error for a request curl refuses.
    private func configure(_ transfer: Transfer, _ request: HTTPClientRequest) -> HTTPClientError? {
        let easy = transfer.easy
        var failed: (String, CURLcode)?
        func check(_ name: String, _ code: CURLcode) {
            if code != CURLE_OK, failed == nil { failed = (name, code) }
        }
        let me = Unmanaged.passUnretained(transfer).toOpaque()  // `transfers` keeps it alive while curl holds it
        // No SIGALRM-based resolver timeouts: signals and a multi-threaded server do not mix.
        check("NOSIGNAL", ccurl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1))
        check("ERRORBUFFER", ccurl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, transfer.errorBuffer))
        check("PRIVATE", ccurl_easy_setopt_pointer(easy, CURLOPT_PRIVATE, me))
        check("URL", ccurl_easy_setopt_string(easy, CURLOPT_URL, request.url))
        // Invariant 6: only web protocols, also after redirects (which we do not follow anyway).
        check("PROTOCOLS_STR", ccurl_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https"))
        check("TIMEOUT_MS", ccurl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, max(1, request.timeoutMilliseconds)))
        check("CONNECTTIMEOUT_MS", ccurl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, max(1, request.connectTimeoutMilliseconds)))
        check("ACCEPT_ENCODING", ccurl_easy_setopt_string(easy, CURLOPT_ACCEPT_ENCODING, ""))
        // A proxy's CONNECT reply must not be mistaken for the response head.
        check("SUPPRESS_CONNECT_HEADERS", ccurl_easy_setopt_long(easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1))
        check("WRITEFUNCTION", ccurl_easy_setopt_data_cb(easy, CURLOPT_WRITEFUNCTION, curlWriteCallback))
        check("WRITEDATA", ccurl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, me))
        check("HEADERFUNCTION", ccurl_easy_setopt_data_cb(easy, CURLOPT_HEADERFUNCTION, curlHeaderCallback))
        check("HEADERDATA", ccurl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, me))

        let method = request.method.uppercased()
        if !request.body.isEmpty || method == "POST" {
            // POSTFIELDSIZE before COPYPOSTFIELDS: curl copies exactly that many bytes (the body may contain NULs).
            check("POSTFIELDSIZE", ccurl_easy_setopt_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count)))
            let code = request.body.withUnsafeBytes { bytes -> CURLcode in
                // An empty body still needs a valid pointer, or curl would take strlen of a NULL.
                let empty: StaticString = ""
                let pointer = bytes.baseAddress ?? UnsafeRawPointer(empty.utf8Start)
                return ccurl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: pointer))
            }
            check("COPYPOSTFIELDS", code)
            if method != "POST" { check("CUSTOMREQUEST", ccurl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method)) }
        } else if method == "HEAD" {
            check("NOBODY", ccurl_easy_setopt_long(easy, CURLOPT_NOBODY, 1))
        } else if method != "GET" {
            check("CUSTOMREQUEST", ccurl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method))
        }

        var list: UnsafeMutablePointer<curl_slist>?
        var sawExpect = false
        for (name, value) in request.headers {
            // curl sends header lines verbatim: a CR or LF would split the field and let a value inject
            // fields or a whole request (RFC 9110 §5.5: CR, LF and NUL are invalid in field values).
            let forbidden: Set<Unicode.Scalar> = ["\r", "\n", "\0"]
            guard !name.isEmpty, !name.unicodeScalars.contains(where: { forbidden.contains($0) || $0 == ":" || $0 == " " }),
                  !value.unicodeScalars.contains(where: { forbidden.contains($0) })
            else {
                if let list { curl_slist_free_all(list) }
                return HTTPClientError(code: .other, message: "invalid request header field \(String(reflecting: name))")
            }
            if name.lowercased() == "expect" { sawExpect = true }
            // "Name;" is curl's spelling for a field with an empty value ("Name:" would remove the field).
            let line = value.isEmpty ? "\(name);" : "\(name): \(value)"
            list = curl_slist_append(list, line)
        }
        // curl would add `Expect: 100-continue` for large bodies and wait for the 100; our peers answer directly.
        if !sawExpect { list = curl_slist_append(list, "Expect:") }
        transfer.headerList = list
        check("HTTPHEADER", ccurl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list))

        if let (name, code) = failed {
            return HTTPClientError(code: .other, message: "CURLOPT_\(name): \(String(cString: curl_easy_strerror(code)))",
                                   curlCode: Int(code.rawValue))
        }
        return nil
    }

    // MARK: curl → loop (the two callbacks)

    /// `CURLMOPT_SOCKETFUNCTION`: curl says what it wants from `fd`. `known` is false for a socket curl has not
    /// told us about before (its `curl_multi_assign` pointer is still NULL).
    fileprivate func curlWantsSocket(_ fd: Int32, _ what: Int32, known: Bool) {
        if what == CURL_POLL_REMOVE {
            sockets.removeValue(forKey: fd)?.stop(loop)
            return
        }
        var interest: Interest = .none
        if what & CURL_POLL_IN != 0 { interest.insert(.read) }
        if what & CURL_POLL_OUT != 0 { interest.insert(.write) }
        if known, let socket = sockets[fd], let registration = socket.registration {
            loop.setInterest(registration, interest)
            socket.interest = interest
            return
        }
        // A new socket. A stale entry for the same number means curl closed the old one without telling us;
        // the generation in its registration makes any late event for it harmless.
        sockets.removeValue(forKey: fd)?.stop(loop)
        let socket = CurlSocket(client: self, fd: fd, interest: interest)
        do {
            socket.registration = try loop.register(fd: fd, interest: interest, handler: socket)
        } catch {
            // The transfer on this socket will hit its timeout; nothing else we can do from inside curl.
            loop.logger.error("curl socket registration failed", metadata: ["fd": "\(fd)", "error": "\(error)"])
            return
        }
        sockets[fd] = socket
        _ = ccurl_multi_assign(multi, fd, Unmanaged.passUnretained(socket).toOpaque())
    }

    /// `CURLMOPT_TIMERFUNCTION`: curl's single deadline. -1 removes it; 0 means "as soon as possible", which we
    /// still run from a loop timer rather than here, since curl must not be re-entered from its own callback.
    fileprivate func curlWantsTimer(_ milliseconds: Int) {
        if let curlTimer { loop.cancel(curlTimer) }
        curlTimer = nil
        guard milliseconds >= 0 else { return }
        curlTimer = loop.schedule(afterNanoseconds: UInt64(milliseconds) * 1_000_000) { [weak self] in
            guard let self else { return }
            self.curlTimer = nil
            self.drive(socket: ccurl_socket_timeout(), events: 0)
        }
    }

    /// The loop reports readiness on one of curl's sockets.
    fileprivate func socketReady(_ socket: CurlSocket, _ events: IOEvents) {
        var mask: Int32 = 0
        if events.contains(.readable) { mask |= CURL_CSELECT_IN }
        if events.contains(.writable) { mask |= CURL_CSELECT_OUT }
        // Hang-up or error: let curl read (it sees EOF or the socket error) rather than passing CURL_CSELECT_ERR,
        // which would fail the transfer even when a complete response is still buffered.
        if events.contains(.hangup) {
            mask |= CURL_CSELECT_IN
            if socket.interest.contains(.write) { mask |= CURL_CSELECT_OUT }
        }
        drive(socket: socket.fd, events: mask)
    }

    /// One step of curl's state machine for `socket`, then hands out what arrived and what finished.
    private func drive(socket fd: Int32, events: Int32) {
        guard !closed else { return }
        var running: Int32 = 0
        let code = curl_multi_socket_action(multi, fd, events, &running)
        if code != CURLM_OK {
            loop.logger.error("curl_multi_socket_action failed", metadata: ["error": "\(String(cString: curl_multi_strerror(code)))"])
        }
        deliverReady()
        drainFinished()
    }

    // MARK: curl → caller

    /// Marks a transfer as having a head or body bytes to hand out after curl returns.
    func enqueue(_ transfer: Transfer) {
        if !transfer.queued {
            transfer.queued = true
            readyQueue.append(transfer)
        }
    }

    /// Hands heads and body bytes to callers. Callers may cancel, start transfers or close the client meanwhile.
    private func deliverReady() {
        while !readyQueue.isEmpty {
            let batch = readyQueue
            readyQueue.removeAll()
            for transfer in batch {
                transfer.queued = false
                deliver(transfer)
            }
        }
    }

    /// Calls `onHead` (once) and `onBody` (with everything pending) for a still-active transfer.
    private func deliver(_ transfer: Transfer) {
        guard transfers[transfer.id] === transfer else { return }  // finished or cancelled meanwhile
        if transfer.headComplete, !transfer.headDelivered {
            transfer.headDelivered = true
            transfer.onHead(transfer.head)
            guard transfers[transfer.id] === transfer else { return }
        }
        if !transfer.pendingBody.isEmpty {
            let chunk = transfer.pendingBody
            transfer.pendingBody.removeAll(keepingCapacity: true)
            chunk.withUnsafeBytes { transfer.onBody($0) }
        }
    }

    /// Reads curl's "transfer done" messages and completes those transfers.
    private func drainFinished() {
        while !closed {
            var remaining: Int32 = 0
            guard let message = curl_multi_info_read(multi, &remaining) else { return }
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
            let code = ccurl_msg_result(message)  // read before the handle is removed: the message dies with it
            var raw: UnsafeMutableRawPointer?
            _ = ccurl_easy_getinfo_pointer(easy, CURLINFO_PRIVATE, &raw)
            guard let raw else { continue }
            let transfer = Unmanaged<Transfer>.fromOpaque(raw).takeUnretainedValue()
            guard transfers[transfer.id] === transfer else { continue }
            deliver(transfer)  // bytes that arrived in the same step as the end
            guard transfers[transfer.id] === transfer else { continue }
            finish(transfer, result(of: transfer, code))
        }
    }

    /// Maps curl's result for a finished transfer to ours.
    private func result(of transfer: Transfer, _ code: CURLcode) -> Result<HTTPClientResponseHead, HTTPClientError> {
        if code == CURLE_OK {
            if !transfer.headComplete {
                // No header callback ran (cannot happen for HTTP/1.x or 2); fall back to curl's view of the status.
                var status = 0
                _ = ccurl_easy_getinfo_long(transfer.easy, CURLINFO_RESPONSE_CODE, &status)
                transfer.status = status
            }
            return .success(transfer.head)
        }
        if let reason = transfer.abortReason { return .failure(reason) }
        let message = transfer.errorText(fallback: String(cString: curl_easy_strerror(code)))
        let kind: HTTPClientError.Code =
            switch code {
            case CURLE_OPERATION_TIMEDOUT: .timeout
            case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT: .connect
            case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
                CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
                CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CLIENTCERT, CURLE_SSL_CRL_BADFILE:
                .tls
            default: .other
            }
        return .failure(HTTPClientError(code: kind, message: message, curlCode: Int(code.rawValue)))
    }

    /// Takes a transfer out of curl, frees it and calls `onComplete` — the single exit of every transfer.
    private func finish(_ transfer: Transfer, _ result: Result<HTTPClientResponseHead, HTTPClientError>) {
        transfers[transfer.id] = nil
        // May call the socket callback (REMOVE) and the timer callback: both only touch our own tables.
        _ = curl_multi_remove_handle(multi, transfer.easy)
        transfer.release()
        transfer.onComplete(result)
    }
}

// MARK: C callbacks (global functions so they convert to C function pointers)

/// `CURLMOPT_SOCKETFUNCTION`.
private func curlSocketCallback(
    _ easy: UnsafeMutableRawPointer?, _ fd: curl_socket_t, _ what: Int32, _ user: UnsafeMutableRawPointer?,
    _ socketPointer: UnsafeMutableRawPointer?
) -> Int32 {
    guard let user else { return 0 }
    Unmanaged<HTTPClient>.fromOpaque(user).takeUnretainedValue().curlWantsSocket(fd, what, known: socketPointer != nil)
    return 0
}

/// `CURLMOPT_TIMERFUNCTION`.
private func curlTimerCallback(_ multi: UnsafeMutableRawPointer?, _ milliseconds: Int, _ user: UnsafeMutableRawPointer?) -> Int32 {
    guard let user else { return 0 }
    Unmanaged<HTTPClient>.fromOpaque(user).takeUnretainedValue().curlWantsTimer(milliseconds)
    return 0
}

/// `CURLOPT_WRITEFUNCTION`: returning less than `size * count` makes curl abort with `CURLE_WRITE_ERROR`.
private func curlWriteCallback(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ user: UnsafeMutableRawPointer?) -> Int {
    guard let user else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(user).takeUnretainedValue()
    let length = size * count
    guard transfer.received(body: UnsafeRawBufferPointer(start: data, count: length)) else { return 0 }
    transfer.client?.enqueue(transfer)
    return length
}

/// `CURLOPT_HEADERFUNCTION`: one header line per call.
private func curlHeaderCallback(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ user: UnsafeMutableRawPointer?) -> Int {
    guard let user else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(user).takeUnretainedValue()
    let length = size * count
    guard transfer.received(headerLine: UnsafeRawBufferPointer(start: data, count: length)) else { return 0 }
    if transfer.headComplete, !transfer.headDelivered { transfer.client?.enqueue(transfer) }
    return length
}

/// One of curl's sockets as the loop sees it.
private final class CurlSocket: IOHandler {
    weak var client: HTTPClient?
    let fd: Int32
    var interest: Interest
    var registration: Registration?

    init(client: HTTPClient, fd: Int32, interest: Interest) {
        self.client = client
        self.fd = fd
        self.interest = interest
    }

    func ioReady(_ events: IOEvents) { client?.socketReady(self, events) }

    /// Stops watching; curl owns (and closes) the fd.
    func stop(_ loop: EventLoop) {
        if let registration { loop.unregister(registration) }
        client = nil
    }
}
