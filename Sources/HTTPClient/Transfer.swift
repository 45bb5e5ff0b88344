// Transfer: one curl easy handle and what it has received but not yet handed to the caller.
import CCurl

/// One in-flight request. curl's write/header callbacks only *append* here; the client hands the
/// bytes to the caller after `curl_multi_socket_action` returns, so caller code never runs inside
/// curl (where `cancel`/`execute` would be recursive multi calls that curl refuses).
final class Transfer {
    let id: TransferID
    let easy: UnsafeMutableRawPointer
    /// curl writes its human-readable error here (`CURLOPT_ERRORBUFFER`, `CURL_ERROR_SIZE` bytes).
    let errorBuffer: UnsafeMutablePointer<CChar>
    var headerList: UnsafeMutablePointer<curl_slist>?
    let maxBodyBytes: Int
    let maxHeaderBytes: Int

    let onHead: (HTTPClientResponseHead) -> Void
    let onBody: (UnsafeRawBufferPointer) -> Void
    let onComplete: (Result<HTTPClientResponseHead, HTTPClientError>) -> Void

    // Header block being parsed. A 1xx block (RFC 9110 §15.2) is discarded; the next block is the real one.
    var status = 0
    var headers: [(String, String)] = []
    var headerBytes = 0
    var headComplete = false
    var headDelivered = false

    var pendingBody: [UInt8] = []
    var bodyBytes = 0
    /// Set when we made curl abort (limit hit), so the resulting CURLcode maps to our reason.
    var abortReason: HTTPClientError?
    /// The owner, to queue delivery from curl's callbacks.
    weak var client: HTTPClient?
    /// In the client's "has something to deliver" list.
    var queued = false

    init(
        id: TransferID, easy: UnsafeMutableRawPointer, request: HTTPClientRequest,
        onHead: @escaping (HTTPClientResponseHead) -> Void,
        onBody: @escaping (UnsafeRawBufferPointer) -> Void,
        onComplete: @escaping (Result<HTTPClientResponseHead, HTTPClientError>) -> Void
    ) {
        self.id = id
        self.easy = easy
        self.errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        self.maxBodyBytes = request.maxResponseBodyBytes
        self.maxHeaderBytes = request.maxResponseHeaderBytes
        self.onHead = onHead
        self.onBody = onBody
        self.onComplete = onComplete
    }

    /// Frees the C resources. The easy handle must already be out of the multi handle.
    func release() {
        curl_easy_cleanup(easy)
        if let headerList { curl_slist_free_all(headerList) }
        headerList = nil
        errorBuffer.deallocate()
    }

    var head: HTTPClientResponseHead { HTTPClientResponseHead(status: status, headers: headers) }

    /// curl's error text, or `fallback` when curl left the buffer empty.
    func errorText(fallback: String) -> String {
        let text = String(cString: errorBuffer)
        return text.isEmpty ? fallback : text
    }

    /// One header line from `CURLOPT_HEADERFUNCTION` (status line, field, or the blank line ending the block).
    /// Returns false to make curl abort the transfer.
    func received(headerLine bytes: UnsafeRawBufferPointer) -> Bool {
        if headComplete { return true }  // trailer fields after a chunked body: not part of the head
        headerBytes += bytes.count
        if headerBytes > maxHeaderBytes {
            abortReason = HTTPClientError(code: .responseTooLarge, message: "response header block over \(maxHeaderBytes) bytes")
            return false
        }
        // Strip the line ending on bytes: as a String, "\r\n" is one Character and hasSuffix("\n") misses it.
        var end = bytes.count
        while end > 0, bytes[end - 1] == UInt8(ascii: "\n") || bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        let line = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<end]), as: UTF8.self)
        if line.isEmpty {
            // 101 switches protocols and is final for us; other 1xx are interim (RFC 9110 §15.2).
            if status >= 200 || status == 101 || status == 0 {
                headComplete = true
            } else {
                status = 0
                headers = []
                headerBytes = 0
            }
            return true
        }
        if line.hasPrefix("HTTP/") {
            // status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4); HTTP/2 has no reason.
            let parts = line.split(separator: " ", maxSplits: 2)
            status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            headers = []
            return true
        }
        if let colon = line.firstIndex(of: ":") {
            let name = String(line[..<colon]).trimmingWhitespace()
            let value = String(line[line.index(after: colon)...]).trimmingWhitespace()
            headers.append((name, value))
        }
        return true
    }

    /// Body bytes from `CURLOPT_WRITEFUNCTION`. Returns false to make curl abort the transfer.
    func received(body bytes: UnsafeRawBufferPointer) -> Bool {
        bodyBytes += bytes.count
        if bodyBytes > maxBodyBytes {
            abortReason = HTTPClientError(code: .responseTooLarge, message: "response body over \(maxBodyBytes) bytes")
            return false
        }
        pendingBody.append(contentsOf: bytes)
        return true
    }
}

extension String {
    /// Drops leading and trailing spaces and tabs (OWS, RFC 9110 §5.6.3).
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        return String(scalars)
    }
}
