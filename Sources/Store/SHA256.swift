// SHA256: token hashing through OpenSSL (only a token's hash is ever stored).
import COpenSSL

/// Lowercase hex SHA-256 of the UTF-8 bytes of `text` (FIPS 180-4): how a token is keyed in the store.
public func sha256Hex(_ text: String) -> String { sha256Hex(bytes: Array(text.utf8)) }

/// Lowercase hex SHA-256 of `bytes` (the code index's file hashes).
public func sha256Hex(bytes: [UInt8]) -> String {
    var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
    var length: UInt32 = 0
    let ok = bytes.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &digest, &length, EVP_sha256(), nil) }
    precondition(ok == 1 && length == 32, "EVP_Digest(SHA-256) failed")
    let hex = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(64)
    for b in digest.prefix(32) {
        out.append(hex[Int(b >> 4)])
        out.append(hex[Int(b & 0xf)])
    }
    return String(decoding: out, as: UTF8.self)
}
