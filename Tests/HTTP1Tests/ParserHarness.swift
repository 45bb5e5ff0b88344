// ParserHarness: feeds parser inputs whole, byte by byte and split at every point, and compares.

import HTTP1
import Testing

/// What a parser made of an input: the requests it returned, then either an error status
/// or whether bytes of an unfinished request remained buffered.
enum Outcome: Equatable, CustomStringConvertible {
    case parsed([HTTPRequest], partial: Bool)
    case failed(status: Int, after: [HTTPRequest])

    var requests: [HTTPRequest] {
        switch self {
        case .parsed(let r, _), .failed(_, let r): r
        }
    }

    var status: Int? {
        if case .failed(let status, _) = self { return status }
        return nil
    }

    var description: String {
        switch self {
        case .parsed(let r, let partial): "parsed \(r.count) request(s), partial: \(partial)"
        case .failed(let status, let r): "failed \(status) after \(r.count) request(s)"
        }
    }
}

/// Feeds `chunks` one after another, draining `next()` after each.
func parse(_ chunks: [[UInt8]], limits: HTTPLimits = .init()) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var requests: [HTTPRequest] = []
    for chunk in chunks {
        parser.feed(chunk)
        do {
            while let request = try parser.next() { requests.append(request) }
        } catch {
            return .failed(status: error.status, after: requests)
        }
    }
    return .parsed(requests, partial: parser.hasPartialRequest)
}

/// Parses `input` whole, one byte at a time, and split in two at every index; expects every
/// way to give the same outcome and returns it.
func parseEverySplit(
    _ input: String, limits: HTTPLimits = .init(), sourceLocation: SourceLocation = #_sourceLocation
) -> Outcome {
    parseEverySplit(Array(input.utf8), limits: limits, sourceLocation: sourceLocation)
}

func parseEverySplit(
    _ bytes: [UInt8], limits: HTTPLimits = .init(), sourceLocation: SourceLocation = #_sourceLocation
) -> Outcome {
    let whole = parse([bytes], limits: limits)
    let byteByByte = parse(bytes.map { [$0] }, limits: limits)
    #expect(byteByByte == whole, "byte by byte: \(byteByByte) vs whole: \(whole)", sourceLocation: sourceLocation)
    for split in 0...bytes.count {
        let two = parse([Array(bytes[..<split]), Array(bytes[split...])], limits: limits)
        if two != whole {
            Issue.record("split at \(split): \(two) vs whole: \(whole)", sourceLocation: sourceLocation)
            break
        }
    }
    return whole
}

/// Parses a single complete request (checked at every split) and returns it.
func parseOne(
    _ input: String, limits: HTTPLimits = .init(), sourceLocation: SourceLocation = #_sourceLocation
) -> HTTPRequest? {
    let outcome = parseEverySplit(input, limits: limits, sourceLocation: sourceLocation)
    guard case .parsed(let requests, partial: false) = outcome, requests.count == 1 else {
        Issue.record("expected one request, got \(outcome)", sourceLocation: sourceLocation)
        return nil
    }
    return requests[0]
}

/// The status an input fails with (checked at every split), nil if it did not fail.
func failureStatus(
    _ input: String, limits: HTTPLimits = .init(), sourceLocation: SourceLocation = #_sourceLocation
) -> Int? {
    parseEverySplit(input, limits: limits, sourceLocation: sourceLocation).status
}
