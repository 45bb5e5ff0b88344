// Fuzz target `patch`: patch validation and the LLM fix-reply parser (everything in a reply is untrusted).
//
// Mode 0: arbitrary text as a reply — an accepted patch passes the validator again, stays inside the repository
// (no absolute path, no `..`, `.`, empty or `.git` segment, no backslash or control character) and within the
// limits. Mode 1: fuzzer-built changes — when the validator accepts them, the same patch written as a reply (in a
// fence, with prose around it) parses back to exactly those changes; when it refuses, so does the reply parser.
import Protocol
import Pipeline

private func checkInside(_ changes: [FileChange], _ limits: PatchLimits) {
    require(!changes.isEmpty && changes.count <= limits.maxFiles, "\(changes.count) files")
    require(Set(changes.map(\.path)).count == changes.count, "a path twice")
    var total = 0
    for change in changes {
        let path = change.path
        require(PatchValidator.pathError(path, limits: limits) == nil, "an accepted path the validator refuses")
        require(!path.isEmpty && !path.hasPrefix("/") && !path.hasPrefix("~") && !path.contains("\\"), "path '\(path)'")
        require(path.utf8.count <= limits.maxPathBytes, "a path over the limit")
        require(!path.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "a control character in a path")
        for segment in path.split(separator: "/", omittingEmptySubsequences: false) {
            require(!segment.isEmpty && segment != "." && segment != "..", "segment '\(segment)' in '\(path)'")
            require(segment.lowercased() != ".git", "a .git segment in '\(path)'")
        }
        switch change.action {
        case .create, .modify:
            let size = change.content?.utf8.count ?? -1
            require(size >= 0 && size <= limits.maxFileBytes, "content of \(size) bytes")
            total += size
        case .delete:
            require(change.content == nil, "content on a delete")
        }
    }
    require(total <= limits.maxTotalBytes, "\(total) bytes in all")
}

private func reply(_ text: String, _ limits: PatchLimits) -> Result<FixReply, FixReplyError> {
    do throws(FixReplyError) { return .success(try FixReply.parse(text, limits: limits)) } catch { return .failure(error) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPatch(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte() & 1
    let limits = PatchLimits(maxFiles: 1 + input.int(below: 8), maxFileBytes: input.int(below: 256),
                             maxTotalBytes: input.int(below: 512), maxPathBytes: 1 + input.int(below: 64))
    if mode == 0 {
        let text = String(decoding: input.rest, as: UTF8.self)
        if case .success(let parsed) = reply(text, limits) {
            if parsed.unfixable {
                require(parsed.changes.isEmpty, "an unfixable reply with changes")
            } else {
                checkInside(parsed.changes, limits)
                require(PatchValidator.validate(parsed.changes, limits: limits) == .success(parsed.changes), "revalidation failed")
            }
        }
        return 0
    }

    // Mode 1: NUL-separated records "<action byte><path>\u{1}<content>".
    var changes: [FileChange] = []
    for record in input.rest.split(separator: 0, omittingEmptySubsequences: false).prefix(12) {
        guard let first = record.first else { continue }
        let action: ChangeAction = [.create, .modify, .delete][Int(first) % 3]
        let body = record.dropFirst()
        let parts = body.split(separator: 1, maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(decoding: parts.first ?? [], as: UTF8.self)
        let content = parts.count > 1 ? String(decoding: parts[1], as: UTF8.self) : nil
        changes.append(FileChange(path: path, action: action, content: action == .delete && first & 4 == 0 ? nil : content))
    }
    let verdict = PatchValidator.validate(changes, limits: limits)
    let json = JSONValue.object(["unfixable": .bool(false), "explanation": .string("fuzz"),
                                 "changes": .array(changes.map(\.json))])
    let text = "Here is the fix.\n```json\n" + String(decoding: json.bytes, as: UTF8.self) + "\n```\nDone."
    let parsed = reply(text, limits)
    switch verdict {
    case .success(let valid):
        checkInside(valid, limits)
        require(parsed == .success(FixReply(unfixable: false, explanation: "fuzz", changes: changes)),
                "a valid patch written as a reply did not parse back: \(parsed)")
    case .failure:
        if case .success = parsed { require(false, "the reply parser accepted a patch the validator refuses") }
    }
    return 0
}
