// TLSContext: one configured OpenSSL SSL_CTX (server certificate or client trust), shared by many engines.
internal import COpenSSL

/// The highest protocol version a client context may offer (tests, load generators).
public enum TLSVersion: Sendable, Hashable {
    case tlsv12
    case tlsv13

    var openSSLValue: Int32 {
        switch self {
        case .tlsv12: COPENSSL_TLS1_2_VERSION
        case .tlsv13: COPENSSL_TLS1_3_VERSION
        }
    }
}

/// A configured `SSL_CTX`. Create one per listener (server) or per target (client) and give it
/// to every `TLSEngine`.
///
/// Thread safety: OpenSSL documents an `SSL_CTX` as safe to share between threads once it is
/// configured, because `SSL_new` only reads it (and bumps its reference count atomically). This
/// type configures the context entirely inside its factory methods and exposes no mutation
/// afterwards, hence `@unchecked Sendable`: several loop threads may create engines from one
/// context at the same time.
public final class TLSContext: @unchecked Sendable {
    /// The owned `SSL_CTX *`; each `SSL` made from it holds its own reference, so engines may
    /// outlive this object.
    let pointer: OpaquePointer
    /// Whether engines made from this context accept (server) or connect (client).
    public let isServer: Bool
    /// Client only: whether the peer's chain (and, with a server name, its name) is verified.
    public let verifiesPeer: Bool

    private init(pointer: OpaquePointer, isServer: Bool, verifiesPeer: Bool) {
        self.pointer = pointer
        self.isServer = isServer
        self.verifiesPeer = verifiesPeer
    }

    deinit { SSL_CTX_free(pointer) }

    /// Server: PEM certificate chain (leaf first) and PEM private key files.
    ///
    /// Policy: TLS 1.2 minimum (RFC 8996 deprecates 1.0/1.1), renegotiation refused
    /// (`SSL_OP_NO_RENEGOTIATION`: a renegotiation is a CPU-cost lever for a peer and a source of
    /// past CVEs), compression off (CRIME), `SSL_MODE_RELEASE_BUFFERS` so an idle connection holds
    /// no 16 KiB record buffers, no server-side session cache (TLS 1.3 and 1.2 resumption still
    /// work through stateless tickets, and the cache would be per-process memory that grows with
    /// clients). ALPN: "http/1.1" is selected when the client offers it; a client offering only
    /// other protocols is still served, without ALPN (RFC 7301 §3.2 allows the server to ignore it).
    public static func server(certificatePath: String, keyPath: String) throws(TLSError) -> TLSContext {
        let ctx = try makeContext(method: TLS_server_method())
        let context = TLSContext(pointer: ctx, isServer: true, verifiesPeer: false)
        try context.applyCommonPolicy()
        // Stateless tickets only; one ticket per TLS 1.3 handshake is enough for a browser.
        _ = copenssl_ctx_set_session_cache_mode(ctx, COPENSSL_SESS_CACHE_OFF)
        _ = SSL_CTX_set_num_tickets(ctx, 1)
        _ = copenssl_ctx_set_options(ctx, COPENSSL_OP_CIPHER_SERVER_PREFERENCE)

        ERR_clear_error()
        guard SSL_CTX_use_certificate_chain_file(ctx, certificatePath) == 1 else {
            throw .drainingQueue(.configuration, operation: "SSL_CTX_use_certificate_chain_file(\(certificatePath))")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, keyPath, SSL_FILETYPE_PEM) == 1 else {
            throw .drainingQueue(.configuration, operation: "SSL_CTX_use_PrivateKey_file(\(keyPath))")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw .drainingQueue(.configuration, operation: "SSL_CTX_check_private_key(\(keyPath))")
        }
        SSL_CTX_set_alpn_select_cb(
            ctx,
            { _, out, outLength, offered, offeredLength, _ in
                // `offered` is the client's ALPN list: length-prefixed names (RFC 7301 §3.1).
                guard let out, let outLength, let offered else { return SSL_TLSEXT_ERR_NOACK }
                let wanted = Array("http/1.1".utf8)
                var index = 0
                let end = Int(offeredLength)
                while index < end {
                    let length = Int(offered[index])
                    let start = index + 1
                    guard start + length <= end else { break }  // malformed list: ignore ALPN
                    if length == wanted.count && (0..<length).allSatisfy({ offered[start + $0] == wanted[$0] }) {
                        out.pointee = offered + start  // points into OpenSSL's copy, which outlives the call
                        outLength.pointee = UInt8(length)
                        return SSL_TLSEXT_ERR_OK
                    }
                    index = start + length
                }
                return SSL_TLSEXT_ERR_NOACK
            }, nil)
        return context
    }

    /// Client (tests, benchmark load generator). With `verifyPeer`, the server's chain must lead
    /// to a certificate in `trustedCAPath` (a PEM file), or to the system store when it is nil;
    /// an engine given a `serverName` also checks that name (or IP literal) against the
    /// certificate. Without `verifyPeer` anything is accepted — for loopback tests only.
    /// `maximumVersion` caps the offered version (e.g. `.tlsv12` to exercise TLS 1.2).
    public static func client(
        trustedCAPath: String?, verifyPeer: Bool, maximumVersion: TLSVersion? = nil
    ) throws(TLSError) -> TLSContext {
        let ctx = try makeContext(method: TLS_client_method())
        let context = TLSContext(pointer: ctx, isServer: false, verifiesPeer: verifyPeer)
        try context.applyCommonPolicy()
        if let maximumVersion {
            guard copenssl_ctx_set_max_proto(ctx, maximumVersion.openSSLValue) == 1 else {
                throw .drainingQueue(.configuration, operation: "SSL_CTX_set_max_proto_version")
            }
        }
        if verifyPeer {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            ERR_clear_error()
            if let trustedCAPath {
                guard SSL_CTX_load_verify_file(ctx, trustedCAPath) == 1 else {
                    throw .drainingQueue(.configuration, operation: "SSL_CTX_load_verify_file(\(trustedCAPath))")
                }
            } else {
                guard SSL_CTX_set_default_verify_paths(ctx) == 1 else {
                    throw .drainingQueue(.configuration, operation: "SSL_CTX_set_default_verify_paths")
                }
            }
        } else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
        try context.offerHTTP11()
        return context
    }

    /// Test only: a client that offers at most TLS 1.1, with OpenSSL's security level lowered to 0
    /// so that it really sends a TLS 1.1 ClientHello (at the default level it would refuse to
    /// start). Used to prove that a server context rejects it.
    @_spi(Testing) public static func legacyTLS11Client() throws(TLSError) -> TLSContext {
        let ctx = try makeContext(method: TLS_client_method())
        let context = TLSContext(pointer: ctx, isServer: false, verifiesPeer: false)
        SSL_CTX_set_security_level(ctx, 0)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        ERR_clear_error()
        guard SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0") == 1,
            copenssl_ctx_set_min_proto(ctx, 0) == 1,
            copenssl_ctx_set_max_proto(ctx, COPENSSL_TLS1_1_VERSION) == 1
        else { throw .drainingQueue(.configuration, operation: "legacy client protocol settings") }
        return context
    }

    private static func makeContext(method: OpaquePointer?) throws(TLSError) -> OpaquePointer {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(method) else { throw .drainingQueue(.configuration, operation: "SSL_CTX_new") }
        return ctx
    }

    /// Settings both sides share: TLS 1.2 floor, no renegotiation, no compression, small idle memory.
    private func applyCommonPolicy() throws(TLSError) {
        guard copenssl_ctx_set_min_proto(pointer, COPENSSL_TLS1_2_VERSION) == 1 else {
            throw .drainingQueue(.configuration, operation: "SSL_CTX_set_min_proto_version")
        }
        _ = copenssl_ctx_set_options(pointer, COPENSSL_OP_NO_RENEGOTIATION | COPENSSL_OP_NO_COMPRESSION)
        _ = copenssl_ctx_set_mode(pointer, COPENSSL_MODE_RELEASE_BUFFERS)
    }

    /// Client ALPN offer: just "http/1.1" (RFC 7301 §3.1 wire format: length-prefixed names).
    private func offerHTTP11() throws(TLSError) {
        let list: [UInt8] = [8] + Array("http/1.1".utf8)
        // Note the inverted convention: SSL_CTX_set_alpn_protos returns 0 on success.
        guard SSL_CTX_set_alpn_protos(pointer, list, UInt32(list.count)) == 0 else {
            throw .drainingQueue(.configuration, operation: "SSL_CTX_set_alpn_protos")
        }
    }
}
