// TestCertificates: self-signed P-256 certificates for TLS tests, made with OpenSSL's C API.
internal import COpenSSL
internal import Foundation

/// Generates throwaway certificates for tests (never for production: the keys are written
/// unencrypted to the temp directory).
public enum TestCertificates {
    /// A failure while generating or writing a test certificate: the OpenSSL call and its
    /// error-queue text.
    public struct GenerationError: Error, CustomStringConvertible {
        public let operation: String
        public let openSSLErrors: [String]
        public var description: String {
            "test certificate generation failed in \(operation): " + openSSLErrors.joined(separator: "; ")
        }
    }

    /// Generated once per process (Swift initializes a static `let` exactly once, thread-safely).
    private static let cachedLocalhost = Result { () throws -> PEMFiles in try generateSelfSigned() }

    /// The paths of a PEM certificate and its PEM private key.
    public typealias PEMFiles = (certificatePath: String, keyPath: String)

    /// Generates (once per process, cached) a self-signed P-256 certificate for CN=localhost with
    /// subjectAltName DNS:localhost, IP:127.0.0.1, valid now-1h..now+1d, written as PEM files in a
    /// fresh temp directory.
    public static func localhost() throws -> PEMFiles {
        try cachedLocalhost.get()
    }

    /// Generates a new (uncached) self-signed certificate like `localhost()`, with the given
    /// common name, in its own fresh temp directory. Two calls give two unrelated "CAs", which
    /// is what a test of a client trusting the wrong CA needs.
    public static func generateSelfSigned(commonName: String = "localhost") throws -> PEMFiles {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("medic-test-certs-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificatePath = directory.appendingPathComponent("cert.pem").path
        let keyPath = directory.appendingPathComponent("key.pem").path

        ERR_clear_error()
        guard let key = copenssl_ec_keygen("P-256") else { throw failure("EVP_EC_gen(P-256)") }
        defer { EVP_PKEY_free(key) }
        guard let certificate = X509_new() else { throw failure("X509_new") }
        defer { X509_free(certificate) }

        // Version 3 (value 2) is required for extensions such as subjectAltName (RFC 5280 §4.1.2.1).
        guard X509_set_version(certificate, 2) == 1 else { throw failure("X509_set_version") }
        // A random positive serial so that two generated certificates never share issuer+serial.
        var serial: Int = 0
        _ = withUnsafeMutableBytes(of: &serial) { RAND_bytes($0.baseAddress, Int32($0.count)) }
        guard ASN1_INTEGER_set(X509_get_serialNumber(certificate), serial & 0x3fff_ffff) == 1 else {
            throw failure("ASN1_INTEGER_set")
        }
        guard X509_gmtime_adj(X509_getm_notBefore(certificate), -3600) != nil,
            X509_gmtime_adj(X509_getm_notAfter(certificate), 86_400) != nil
        else { throw failure("X509_gmtime_adj") }
        guard X509_set_pubkey(certificate, key) == 1 else { throw failure("X509_set_pubkey") }

        guard let name = X509_get_subject_name(certificate),
            X509_NAME_add_entry_by_txt(name, "CN", COPENSSL_MBSTRING_ASC, commonName, -1, -1, 0) == 1,
            X509_set_issuer_name(certificate, name) == 1
        else { throw failure("X509_NAME_add_entry_by_txt(CN=\(commonName))") }

        // Clients match the name against subjectAltName, not CN (RFC 6125 §6.4.4, RFC 2818 §3.1).
        var extensionContext = X509V3_CTX()
        X509V3_set_ctx(&extensionContext, certificate, certificate, nil, nil, 0)
        for (nid, value) in [
            (NID_subject_alt_name, "DNS:\(commonName),IP:127.0.0.1"), (NID_basic_constraints, "CA:TRUE"),
        ] {
            guard let ext = X509V3_EXT_conf_nid(nil, &extensionContext, nid, value) else {
                throw failure("X509V3_EXT_conf_nid(\(value))")
            }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(certificate, ext, -1) == 1 else { throw failure("X509_add_ext(\(value))") }
        }
        guard X509_sign(certificate, key, EVP_sha256()) > 0 else { throw failure("X509_sign") }

        try writePEM(to: keyPath) { PEM_write_bio_PrivateKey($0, key, nil, nil, 0, nil, nil) }
        try writePEM(to: certificatePath) { PEM_write_bio_X509($0, certificate) }
        return (certificatePath, keyPath)
    }

    private static func writePEM(to path: String, _ write: (OpaquePointer) -> Int32) throws {
        guard let bio = BIO_new_file(path, "w") else { throw failure("BIO_new_file(\(path))") }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { throw failure("PEM_write_bio(\(path))") }
    }

    private static func failure(_ operation: String) -> GenerationError {
        var messages: [String] = []
        while case let packed = ERR_get_error(), packed != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(packed, &buffer, buffer.count)
            messages.append(
                String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return GenerationError(operation: operation, openSSLErrors: messages)
    }
}
