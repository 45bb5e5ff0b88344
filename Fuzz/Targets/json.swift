// Fuzz target `json`: the strict JSON parser (RFC 8259) and client-message decoding (protocol/README.md §3).
//
// Invariants: a parsed value written back parses to an equal value and writes the same bytes again (the writer is
// canonical); the writer emits valid UTF-8; the size limit is exact; a decoded command re-encoded decodes to the
// same command, under the same limits.
import Protocol

private func parsed(_ bytes: [UInt8], _ limits: JSONParseLimits) -> Result<JSONValue, JSONParseError> {
    do throws(JSONParseError) { return .success(try JSONValue.parse(bytes, limits: limits)) } catch { return .failure(error) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let depth = 1 + input.int(below: 64)
    let small = input.bool()
    let bytes = input.rest
    let limits = JSONParseLimits(maxBytes: 1 << 20, maxDepth: depth)

    if case .success(let value) = parsed(bytes, limits) {
        let written = value.bytes
        require(String(validating: written, as: UTF8.self) != nil, "the writer emitted invalid UTF-8")
        switch parsed(written, JSONParseLimits(maxBytes: 1 << 22, maxDepth: depth)) {
        case .success(let again):
            require(again == value, "write → parse changed the value")
            require(again.bytes == written, "the writer is not canonical")
        case .failure(let error):
            require(false, "the writer's output does not parse: \(error)")
        }
        if !bytes.isEmpty {
            // Limits are inclusive: exactly the size parses, one byte less is refused before parsing.
            guard case .failure = parsed(bytes, JSONParseLimits(maxBytes: bytes.count - 1, maxDepth: depth)) else {
                require(false, "a document over maxBytes was accepted")
                return 0
            }
        }
    }

    let protocolLimits = small
        ? ProtocolLimits(maxMessageBytes: 512, maxDepth: 4, maxIDBytes: 8, maxTokenBytes: 16)
        : ProtocolLimits()
    if case .success(let request) = ClientMessage.decode(bytes, limits: protocolLimits) {
        let encoded = request.encode()
        switch ClientMessage.decode(encoded, limits: ProtocolLimits(maxMessageBytes: 1 << 22, maxDepth: protocolLimits.maxDepth,
                                                                     maxIDBytes: protocolLimits.maxIDBytes,
                                                                     maxTokenBytes: protocolLimits.maxTokenBytes)) {
        case .success(let again): require(again == request, "encode → decode changed the command \(request.message.type)")
        case .failure(let error): require(false, "a decoded command does not decode again: \(error)")
        }
    }
    return 0
}
