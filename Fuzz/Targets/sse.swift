// Fuzz target `sse`: the server-sent-events parser (WHATWG HTML §9.2.6) and the Anthropic stream reader over it.
//
// Invariants: the same events (or the same limit error) whether the body arrives whole, split at a fuzzer-chosen
// point, or a byte at a time; an event's name has no line break; the stream reader's text and end state do not
// depend on the split either.
import Pipeline

private struct Outcome: Equatable {
    var events: [SSEEvent] = []
    var error: SSEError?
}

private func parse(_ chunks: [[UInt8]], maxLine: Int, maxEvent: Int) -> Outcome {
    var parser = SSEParser(maxLineBytes: maxLine, maxEventBytes: maxEvent)
    var outcome = Outcome()
    for chunk in chunks {
        do throws(SSEError) {
            outcome.events += try parser.feed(chunk)
        } catch {
            outcome.error = error
            return outcome
        }
    }
    return outcome
}

private struct StreamOutcome: Equatable {
    var events: [AnthropicStreamEvent] = []
    var text = ""
    var finished = false
    var stopReason: String?
}

private func read(_ chunks: [[UInt8]], maxLine: Int, maxEvent: Int) -> StreamOutcome {
    var stream = AnthropicStream(parser: SSEParser(maxLineBytes: maxLine, maxEventBytes: maxEvent))
    var outcome = StreamOutcome()
    for chunk in chunks {
        outcome.events += stream.feed(chunk)
        // The first error ends the reply (the caller stops reading there); what comes after it is not compared.
        if let end = outcome.events.firstIndex(where: { if case .error = $0 { true } else { false } }) {
            outcome.events.removeSubrange((end + 1)...)
            return outcome
        }
    }
    outcome.text = stream.text
    outcome.finished = stream.finished
    outcome.stopReason = stream.stopReason
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSSE(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let maxLine = 1 + input.int(below: 2048)
    let maxEvent = 1 + input.int(below: 4096)
    let point = input.int(below: 1 << 16)
    let drip = input.bool()
    let body = input.rest
    let chunks = pieces(body, cuts(count: body.count, at: point, drip: drip))

    let whole = parse([body], maxLine: maxLine, maxEvent: maxEvent)
    let split = parse(chunks, maxLine: maxLine, maxEvent: maxEvent)
    // Events completed in the chunk that hit a limit are not returned, so only the error is compared then.
    require(whole.error == split.error, "whole and split disagree on the error")
    if whole.error == nil {
        require(whole.events == split.events, "whole and split bodies give different events")
    }
    for event in whole.events {
        require(!event.event.contains("\n") && !event.event.contains("\r"), "an event name with a line break")
        require(!event.data.contains("\r"), "event data with a CR")
        require(!event.event.isEmpty, "an unnamed event")
    }

    let streamWhole = read([body], maxLine: maxLine, maxEvent: maxEvent)
    let streamSplit = read(chunks, maxLine: maxLine, maxEvent: maxEvent)
    if whole.error == nil {
        let first = zip(streamWhole.events, streamSplit.events).first(where: { $0.0 != $0.1 })
        require(streamWhole == streamSplit, "the stream reader depends on the split: \(streamWhole.events.count) vs "
            + "\(streamSplit.events.count) events, first difference \(String(describing: first)), "
            + "last \(String(describing: streamWhole.events.last)) / \(String(describing: streamSplit.events.last)), finished "
            + "\(streamWhole.finished)/\(streamSplit.finished), text \(streamWhole.text.count)/\(streamSplit.text.count)")
    }
    return 0
}
