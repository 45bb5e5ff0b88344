// TLSEngine: one TLS connection as a byte transform over two OpenSSL memory BIOs (no fds, no loop).
internal import COpenSSL

/// What `TLSEngine.readPlaintext` found.
public enum TLSReadResult {
    /// Progress was made or nothing was available yet; zero or more plaintext bytes were appended.
    case ok
    /// The peer sent close_notify (RFC 8446 §6.1): no more plaintext will come. Plaintext that
    /// preceded the alert was appended first.
    case peerClosed
    /// The connection is unusable. Drain ciphertext once more (OpenSSL may have queued a fatal
    /// alert for the peer), write it, then close the connection.
    case failed(TLSError)
}

/// One TLS connection, client or server, as an engine over memory: the owner feeds ciphertext
/// read from the network, takes plaintext out, puts plaintext in, and writes the ciphertext it
/// drains. It never touches a socket, so two engines can handshake inside a unit test.
///
/// Typical loop use, on readable: `feedCiphertext(bytes)`, `readPlaintext(into:)`, then
/// `drainCiphertext(into:)` (the handshake and TLS 1.3 tickets produce output while *reading*).
/// On application output: `writePlaintext`, then `drainCiphertext`.
///
/// Not Sendable: an engine belongs to the loop thread that owns its connection. OpenSSL's error
/// queue is thread-local, and every call clears it first, so one thread may drive many engines.
///
/// Memory: OpenSSL's record buffers are released between records (`SSL_MODE_RELEASE_BUFFERS`),
/// and a memory BIO whose buffer grew past `bufferRetentionLimit` (after a large write or read)
/// is replaced by a fresh, empty one as soon as it is drained, so an idle connection holds only
/// the `SSL` object itself.
public final class TLSEngine {
    /// Where the connection is. `failed` is sticky; `closed` means the `SSL` is freed.
    private enum State {
        case handshaking
        case established
        case failed(TLSError)
        case closed
    }

    /// Outcome of one OpenSSL call, after `SSL_get_error`.
    private enum Step {
        case wouldBlock
        case peerClosed
        case failed(TLSError)
    }

    /// The owned `SSL *` (which owns both BIOs); nil once closed.
    private var ssl: OpaquePointer?
    private var state: State = .handshaking
    /// Plaintext written before the handshake finished; sent as soon as it does. Empty (and so
    /// unallocated) in the common case.
    private var pendingPlaintext: [UInt8] = []
    private var sentCloseNotify = false
    private var receivedCloseNotify = false
    /// Client with verification on: a failure with a bad verify result is a certificate error.
    private let verifiesPeer: Bool
    /// A drained memory BIO whose buffer capacity exceeds this many bytes is replaced.
    public let bufferRetentionLimit: Int

    /// Size of the stack buffer `readPlaintext` decrypts into: one maximal TLS record
    /// (2^14 bytes, RFC 8446 §5.1), so each `SSL_read_ex` can return a whole record.
    private static let readChunk = 16 * 1024

    /// Creates an engine. A server context makes a server engine (`serverName` is ignored); a
    /// client context makes a client engine that sends `serverName` as SNI (RFC 6066 §3; IP
    /// literals are not sent, as that section requires) and, if the context verifies peers,
    /// checks the certificate against that name or IP address. A client engine queues its
    /// ClientHello immediately: drain ciphertext right after init.
    ///
    /// - Parameter bufferRetentionLimit: a memory BIO that grew beyond this many bytes is freed
    ///   once drained. Default 32 KiB: two maximal records, so steady traffic reuses its buffer.
    public init(context: TLSContext, serverName: String? = nil, bufferRetentionLimit: Int = 32 * 1024)
        throws(TLSError)
    {
        self.bufferRetentionLimit = bufferRetentionLimit
        self.verifiesPeer = !context.isServer && context.verifiesPeer
        ERR_clear_error()
        guard let ssl = SSL_new(context.pointer) else { throw .drainingQueue(.engineSetup, operation: "SSL_new") }
        guard let readBIO = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw .drainingQueue(.engineSetup, operation: "BIO_new(BIO_s_mem)")
        }
        guard let writeBIO = BIO_new(BIO_s_mem()) else {
            BIO_free(readBIO)
            SSL_free(ssl)
            throw .drainingQueue(.engineSetup, operation: "BIO_new(BIO_s_mem)")
        }
        // An empty memory BIO reports "retry" (not EOF) by default, which OpenSSL turns into
        // SSL_ERROR_WANT_READ: exactly "no more ciphertext yet". The SSL now owns both BIOs.
        SSL_set_bio(ssl, readBIO, writeBIO)
        // From here on failures go through close(): `self` is fully initialized, so its deinit
        // runs even when init throws, and close() makes the free happen exactly once.
        self.ssl = ssl

        if context.isServer {
            SSL_set_accept_state(ssl)
            return
        }
        SSL_set_connect_state(ssl)
        if let serverName {
            let isIPAddress = Self.isIPLiteral(serverName)
            if !isIPAddress && copenssl_set_tlsext_host_name(ssl, serverName) != 1 {
                close()
                throw .drainingQueue(.engineSetup, operation: "SSL_set_tlsext_host_name(\(serverName))")
            }
            if verifiesPeer {
                let ok =
                    isIPAddress
                    ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName) == 1
                    : SSL_set1_host(ssl, serverName) == 1
                if !ok {
                    close()
                    throw .drainingQueue(.engineSetup, operation: "SSL_set1_host(\(serverName))")
                }
            }
        }
        if case .failed(let error) = stepHandshake() {
            close()
            throw error
        }
    }

    deinit { close() }

    // MARK: Input

    /// Ciphertext received from the network. Buffered in the read BIO until `readPlaintext`.
    /// Ignored once the engine failed or was closed.
    public func feedCiphertext(_ bytes: UnsafeRawBufferPointer) {
        guard let ssl, !bytes.isEmpty else { return }
        switch state {
        case .handshaking, .established: Self.write(bytes, to: SSL_get_rbio(ssl))
        case .failed, .closed: return
        }
    }

    /// Runs the handshake as far as the fed ciphertext allows, then decrypts every complete
    /// record, appending plaintext to `plaintext`. Call `drainCiphertext` afterwards: handshake
    /// replies and alerts are produced here.
    public func readPlaintext(into plaintext: inout [UInt8]) -> TLSReadResult {
        guard let ssl else { return .failed(closedError("readPlaintext")) }
        switch state {
        case .failed(let error): return .failed(error)
        case .closed: return .failed(closedError("readPlaintext"))
        case .handshaking:
            switch stepHandshake() {
            case .failed(let error): return .failed(error)
            case .peerClosed: return .peerClosed
            case .wouldBlock: if case .handshaking = state { return .ok }
            }
        case .established: break
        }
        if receivedCloseNotify { return .peerClosed }

        var result = TLSReadResult.ok
        var reading = true
        while reading {
            withUnsafeTemporaryAllocation(byteCount: Self.readChunk, alignment: 1) { buffer in
                var count = 0
                ERR_clear_error()
                if SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &count) == 1 {
                    plaintext.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
                    return
                }
                reading = false
                // SSL_read_ex returns 0 on failure; SSL_get_error takes that return value.
                switch classify(ret: 0, ssl: ssl, operation: "SSL_read_ex", code: .protocolFailure) {
                case .wouldBlock: result = .ok
                case .peerClosed:
                    receivedCloseNotify = true
                    result = .peerClosed
                case .failed(let error):
                    state = .failed(error)
                    result = .failed(error)
                }
            }
        }
        releaseIdleBuffer(read: true)
        return result
    }

    // MARK: Output

    /// Encrypts `bytes`; all of it is accepted (the write BIO grows as needed). Before the
    /// handshake completes the plaintext is kept and sent once it does. Returns an error if the
    /// engine failed, was shut down, or is closed.
    public func writePlaintext(_ bytes: UnsafeRawBufferPointer) -> TLSError? {
        guard ssl != nil else { return closedError("writePlaintext") }
        if sentCloseNotify { return closedError("writePlaintext after shutdown") }
        switch state {
        case .failed(let error): return error
        case .closed: return closedError("writePlaintext")
        case .handshaking:
            pendingPlaintext.append(contentsOf: bytes)
            return nil
        case .established:
            if !pendingPlaintext.isEmpty {
                // Only after an (unexpected) want-read from SSL_write: keep the order.
                pendingPlaintext.append(contentsOf: bytes)
                return flushPendingPlaintext()
            }
            return encrypt(bytes)
        }
    }

    /// Moves every queued ciphertext byte (handshake messages, records, alerts, close_notify)
    /// to the end of `out`; returns how many were appended. Works after a failure too, so a
    /// fatal alert can still reach the peer.
    @discardableResult public func drainCiphertext(into out: inout [UInt8]) -> Int {
        guard let ssl, let writeBIO = SSL_get_wbio(ssl) else { return 0 }
        let pending = copenssl_bio_ctrl_pending(writeBIO)
        guard pending > 0 else { return 0 }
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: pending))
        var taken = 0
        out.withUnsafeMutableBytes { buffer in
            _ = BIO_read_ex(writeBIO, buffer.baseAddress! + start, pending, &taken)
        }
        if taken < pending { out.removeLast(pending - taken) }
        releaseIdleBuffer(read: false)
        return taken
    }

    /// Whether `drainCiphertext` would append anything.
    public var hasPendingCiphertext: Bool {
        guard let ssl, let writeBIO = SSL_get_wbio(ssl) else { return false }
        return copenssl_bio_ctrl_pending(writeBIO) > 0
    }

    /// Bytes `drainCiphertext` would append, plus plaintext held until the handshake completes (what this
    /// engine holds for the peer: counted against a connection's output limits).
    public var pendingOutputCount: Int {
        guard let ssl, let writeBIO = SSL_get_wbio(ssl) else { return 0 }
        return copenssl_bio_ctrl_pending(writeBIO) + pendingPlaintext.count
    }

    // MARK: State

    /// Whether the handshake finished (stays true after shutdown or a later failure).
    public private(set) var isHandshakeComplete = false

    /// The negotiated version, e.g. "TLSv1.3" or "TLSv1.2"; nil before the handshake completes
    /// or after `close()`.
    public var negotiatedProtocolVersion: String? {
        guard isHandshakeComplete, let ssl, let name = SSL_get_version(ssl) else { return nil }
        return String(cString: name)
    }

    /// The ALPN protocol both sides agreed on (RFC 7301), e.g. "http/1.1"; nil if none.
    public var negotiatedALPN: String? {
        guard isHandshakeComplete, let ssl else { return nil }
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// Bytes currently allocated by the two memory BIOs (a diagnostic for per-connection memory;
    /// OpenSSL's own record buffers are not included).
    public var bufferCapacity: Int {
        guard let ssl else { return 0 }
        return Int(copenssl_mem_bio_capacity(SSL_get_rbio(ssl)) + copenssl_mem_bio_capacity(SSL_get_wbio(ssl)))
    }

    // MARK: Closing

    /// Queues close_notify (RFC 8446 §6.1) via `SSL_shutdown`; drain ciphertext afterwards.
    /// Later `writePlaintext` calls fail; reading continues so the peer's close_notify can be
    /// seen. Before the handshake completes there is nothing to close: buffered plaintext is
    /// dropped and no alert is sent. Idempotent.
    public func shutdown() {
        guard let ssl, !sentCloseNotify else { return }
        sentCloseNotify = true
        pendingPlaintext = []
        guard case .established = state else { return }
        ERR_clear_error()
        // 0 means "sent, peer's not yet received", 1 "both done"; either way the alert is queued.
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }

    /// Frees the `SSL` and its BIOs. Idempotent; `deinit` calls it. Undrained ciphertext is lost.
    public func close() {
        guard let ssl else { return }
        SSL_free(ssl)
        self.ssl = nil
        pendingPlaintext = []
        state = .closed
    }

    // MARK: Internals

    /// One `SSL_do_handshake`; on completion sends plaintext written early.
    private func stepHandshake() -> Step {
        guard let ssl else { return .failed(closedError("SSL_do_handshake")) }
        ERR_clear_error()
        let ret = SSL_do_handshake(ssl)
        guard ret == 1 else {
            let step = classify(ret: ret, ssl: ssl, operation: "SSL_do_handshake", code: .handshake)
            switch step {
            case .failed(let error): state = .failed(error)
            case .peerClosed: receivedCloseNotify = true
            case .wouldBlock: break
            }
            return step
        }
        state = .established
        isHandshakeComplete = true
        if let error = flushPendingPlaintext() { return .failed(error) }
        return .wouldBlock
    }

    /// Sends plaintext that was written before the handshake finished.
    private func flushPendingPlaintext() -> TLSError? {
        guard !pendingPlaintext.isEmpty else { return nil }
        let queued = pendingPlaintext
        pendingPlaintext = []
        return queued.withUnsafeBytes { encrypt($0) }
    }

    /// `SSL_write_ex` of all of `bytes`. With an unbounded memory BIO and renegotiation off,
    /// OpenSSL writes everything; a want-read/write keeps the rest for the next read.
    private func encrypt(_ bytes: UnsafeRawBufferPointer) -> TLSError? {
        guard let ssl else { return closedError("SSL_write_ex") }
        var offset = 0
        while offset < bytes.count {
            var written = 0
            ERR_clear_error()
            let ret = SSL_write_ex(ssl, bytes.baseAddress! + offset, bytes.count - offset, &written)
            if ret == 1 {
                offset += written
                continue
            }
            switch classify(ret: ret, ssl: ssl, operation: "SSL_write_ex", code: .protocolFailure) {
            case .wouldBlock:
                pendingPlaintext.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset...]))
                return nil
            case .peerClosed:
                return closedError("SSL_write_ex after close_notify")
            case .failed(let error):
                state = .failed(error)
                return error
            }
        }
        return nil
    }

    /// Turns an OpenSSL failure into a step: want-read/want-write are normal (more bytes needed),
    /// zero-return is the peer's close_notify, everything else is fatal and carries the queue.
    private func classify(ret: Int32, ssl: OpaquePointer, operation: String, code: TLSError.Code) -> Step {
        let reason = SSL_get_error(ssl, ret)
        switch reason {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .wouldBlock
        case SSL_ERROR_ZERO_RETURN:
            return .peerClosed
        default:
            var queue = TLSError.takeErrorQueue()
            if queue.isEmpty {
                queue = [reason == SSL_ERROR_SYSCALL ? "unexpected end of input" : "SSL_get_error \(reason)"]
            }
            let verify = SSL_get_verify_result(ssl)
            if verifiesPeer && verify != Int(X509_V_OK) {
                let text = X509_verify_cert_error_string(verify).map { String(cString: $0) } ?? "code \(verify)"
                return .failed(
                    TLSError(
                        .certificateVerification, operation: operation, openSSLErrors: queue,
                        verificationResult: text))
            }
            return .failed(TLSError(code, operation: operation, openSSLErrors: queue))
        }
    }

    /// Replaces a drained memory BIO whose buffer grew past `bufferRetentionLimit`: memory BIOs
    /// never shrink, so one 1 MiB burst would otherwise stay allocated for the connection's life.
    private func releaseIdleBuffer(read: Bool) {
        guard let ssl, let bio = read ? SSL_get_rbio(ssl) : SSL_get_wbio(ssl) else { return }
        guard copenssl_bio_ctrl_pending(bio) == 0, copenssl_mem_bio_capacity(bio) > bufferRetentionLimit,
            let fresh = BIO_new(BIO_s_mem())
        else { return }
        // set0 transfers ownership of `fresh` and frees the old BIO.
        if read { SSL_set0_rbio(ssl, fresh) } else { SSL_set0_wbio(ssl, fresh) }
    }

    private static func write(_ bytes: UnsafeRawBufferPointer, to bio: OpaquePointer?) {
        var written = 0
        // A memory BIO accepts everything (it only fails on allocation failure).
        _ = BIO_write_ex(bio, bytes.baseAddress, bytes.count, &written)
    }

    private func closedError(_ operation: String) -> TLSError {
        TLSError(.closed, operation: operation, openSSLErrors: [])
    }

    /// Whether `name` is an IPv4 or IPv6 literal (so it is verified as an IP SAN, not sent as SNI).
    private static func isIPLiteral(_ name: String) -> Bool {
        guard let parsed = a2i_IPADDRESS(name) else {
            ERR_clear_error()
            return false
        }
        ASN1_OCTET_STRING_free(parsed)
        return true
    }
}
