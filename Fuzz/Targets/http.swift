// Fuzz target `http`: HTTPRequestParser (RFC 9112) on arbitrary bytes under fuzzer-chosen limits.
//
// Invariants: the same requests and the same error whether the stream arrives whole, split at a fuzzer-chosen
// point, or a byte at a time; every request respects the limits; a Content-Length body has exactly that length.
import HTTP1

private struct Outcome: Equatable {
    var requests: [HTTPRequest] = []
    var error: HTTPParseError?
}

private func parse(_ chunks: [[UInt8]], limits: HTTPLimits) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var outcome = Outcome()
    for chunk in chunks {
        parser.feed(chunk)
        while true {
            do {
                guard let request = try parser.next() else { break }
                outcome.requests.append(request)
            } catch {
                outcome.error = error
                // Poisoned: the same error again, and nothing more.
                do {
                    _ = try parser.next()
                    require(false, "a failed parser produced a request")
                } catch let again {
                    require(again == error, "a failed parser changed its error: \(error) then \(again)")
                }
                return outcome
            }
        }
    }
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let limits = HTTPLimits(
        maxRequestLineBytes: 16 + input.int(below: 1024), maxHeaderBytes: 16 + input.int(below: 2048),
        maxHeaderCount: 1 + input.int(below: 32), maxBodyBytes: input.int(below: 4096),
        maxChunkLineBytes: 4 + input.int(below: 128))
    let point = input.int(below: 1 << 16)
    let drip = input.bool()
    let stream = input.rest

    let whole = parse([stream], limits: limits)
    let split = parse(pieces(stream, cuts(count: stream.count, at: point, drip: drip)), limits: limits)
    require(whole == split, "whole and split streams disagree: \(whole.requests.count) vs \(split.requests.count) requests, "
        + "\(String(describing: whole.error)) vs \(String(describing: split.error))")

    for request in whole.requests {
        require(!request.method.isEmpty && !request.target.isEmpty, "empty method or target")
        require(request.method.utf8.count + request.target.utf8.count < limits.maxRequestLineBytes,
                "request-line over its limit")
        require(request.headers.count <= limits.maxHeaderCount, "more headers than the limit")
        require(request.body.count <= limits.maxBodyBytes, "body over its limit")
        if !request.headers.contains("Transfer-Encoding"), let length = request.headers["Content-Length"].flatMap({ Int($0) }) {
            require(length == request.body.count, "Content-Length \(length) but a body of \(request.body.count)")
        }
        require(request.versionMajor == 1, "HTTP/\(request.versionMajor) accepted")
    }
    if let error = whole.error {
        require([400, 413, 414, 431, 501, 505].contains(error.status), "unexpected status \(error.status)")
    }
    return 0
}
