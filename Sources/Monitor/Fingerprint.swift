// Fingerprint: what makes two errors "the same" — the message with its variable parts normalised (numbers,
// hex, UUIDs, quoted values, paths, emails, IPs) plus the innermost stack frame in the repository.

public enum Fingerprint {
    /// The normalised message: variable parts replaced by placeholders, whitespace collapsed, at most 300
    /// characters. `User 42 'bob' not found at /srv/x.py` → `User <n> <q> not found at <path>`.
    ///
    /// Works on UTF-8 bytes: every delimiter is ASCII, and Character iteration (grapheme breaking, Unicode
    /// property lookups per character) was half the ingest profile. Non-ASCII whitespace is made a space first
    /// so it still separates words.
    public static func normalise(_ message: String) -> String {
        var bytes = Array(message.utf8.prefix(8000))
        if bytes.contains(where: { $0 >= 0x80 }) {
            let spaced = String(String.UnicodeScalarView(message.unicodeScalars.prefix(2000).map { $0.properties.isWhitespace ? " " : $0 }))
            bytes = Array(spaced.utf8)
        } else if bytes.count > 2000 {
            bytes.removeLast(bytes.count - 2000)
        }
        var out: [UInt8] = []
        out.reserveCapacity(min(bytes.count, 400))
        var wordStart = 0
        var quote: UInt8 = 0
        func flush(_ end: Int) {
            guard wordStart < end else { return }
            if out.last == UInt8(ascii: "="), isIdentityKey(out) {
                out += Array("<v>".utf8)
            } else {
                appendPlaceholder(bytes[wordStart..<end], to: &out)
            }
        }
        for (i, c) in bytes.enumerated() {
            if quote != 0 {
                if c == quote { quote = 0; out += Array("<q>".utf8); wordStart = i + 1 }
                continue
            }
            switch c {
            case UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "`"):
                flush(i)
                quote = c
            case 0x09...0x0D, 0x20:
                flush(i)
                if out.last != 0x20 { out.append(0x20) }
                wordStart = i + 1
            case UInt8(ascii: ","), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "{"),
                UInt8(ascii: "}"), UInt8(ascii: "="), UInt8(ascii: ";"):
                flush(i)
                out.append(c)
                wordStart = i + 1
            default:
                continue
            }
        }
        if quote != 0 { out += Array("<q>".utf8) } else { flush(bytes.count) }
        while out.first == 0x20 { out.removeFirst() }
        while out.last == 0x20 { out.removeLast() }
        return String(String(decoding: out, as: UTF8.self).prefix(300))
    }

    /// Keys whose values name who or where (`user=bob`, `ip=…`): the value is never part of the fingerprint.
    static let identityKeys: Set<[UInt8]> = Set([
        "user", "username", "user_id", "uid", "email", "ip", "client_ip", "remote_addr", "session", "session_id", "request_id", "req_id",
        "trace_id", "span_id", "account", "account_id", "customer", "customer_id", "id",
    ].map { Array($0.utf8) })

    /// Whether `text` (normalised so far, ending in `=`) ends with an identity key (ASCII case-insensitive).
    static func isIdentityKey(_ text: [UInt8]) -> Bool {
        var start = text.count - 1
        while start > 0, !isKeyBoundary(text[start - 1]) { start -= 1 }
        guard text.count - 1 - start <= 16 else { return false }
        return identityKeys.contains(text[start..<(text.count - 1)].map(asciiLower))
    }

    static func isKeyBoundary(_ c: UInt8) -> Bool {
        switch c {
        case 0x20, UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "("), UInt8(ascii: "["), UInt8(ascii: "{"): true
        default: false
        }
    }

    static func asciiLower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c | 0x20 : c }
    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    static func isHexDigit(_ c: UInt8) -> Bool { isDigit(c) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x66) }
    static func isTrailingPunctuation(_ c: UInt8) -> Bool {
        c == UInt8(ascii: ".") || c == UInt8(ascii: ":") || c == UInt8(ascii: "!") || c == UInt8(ascii: "?")
    }

    /// One word → itself or a placeholder (`<path>`, `<email>`, `<ip>`, `<uuid>`, `<hex>`, `<n>`, digits inside
    /// ids as `<n>`), appended to `out`. Leading `.:!?` are dropped and trailing ones kept, as punctuation.
    static func appendPlaceholder(_ word: ArraySlice<UInt8>, to out: inout [UInt8]) {
        var lower = word.startIndex
        var upper = word.endIndex
        while lower < upper, isTrailingPunctuation(word[lower]) { lower += 1 }
        while upper > lower, isTrailingPunctuation(word[upper - 1]) { upper -= 1 }
        let trimmed = word[lower..<upper]
        let suffix = word[upper...]
        guard !trimmed.isEmpty else { out += word; return }
        func put(_ tag: String) { out += Array(tag.utf8); out += suffix }
        if trimmed.count > 1, trimmed.contains(UInt8(ascii: "/")) { return put("<path>") }
        if trimmed.contains(UInt8(ascii: "@")), trimmed.contains(UInt8(ascii: ".")) { return put("<email>") }
        if isIPv4(trimmed) { return put("<ip>") }
        if let colon = trimmed.firstIndex(of: UInt8(ascii: ":")), isIPv4(trimmed[..<colon]) {
            out += Array("<ip>:".utf8)
            appendPlaceholder(trimmed[(colon + 1)...], to: &out)
            out += suffix
            return
        }
        if trimmed.count >= 32, trimmed.count(where: { $0 == UInt8(ascii: "-") }) == 4,
            trimmed.allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: "-") })
        {
            return put("<uuid>")
        }
        if trimmed.count > 2, trimmed.first == UInt8(ascii: "0"), trimmed[trimmed.startIndex + 1] == UInt8(ascii: "x"),
            trimmed.dropFirst(2).allSatisfy(isHexDigit)
        {
            return put("<hex>")
        }
        let digits = trimmed.count(where: isDigit)
        if trimmed.count >= 8, digits > 0, trimmed.allSatisfy(isHexDigit) { return put("<hex>") }
        if digits > 0,
            trimmed.allSatisfy({ isDigit($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") })
        {
            return put("<n>")
        }
        // Words with digits inside ids (user_12345, req-8f3a…, #12): the digits are the variable part.
        if digits >= 3 || (digits > 0 && !trimmed.contains(where: { asciiLower($0) >= 0x61 && asciiLower($0) <= 0x7A })) {
            var inRun = false
            for c in trimmed {
                if isDigit(c) {
                    if !inRun { out += Array("<n>".utf8) }
                    inRun = true
                } else {
                    out.append(c)
                    inRun = false
                }
            }
            out += suffix
            return
        }
        out += word
    }

    static func isIPv4(_ s: ArraySlice<UInt8>) -> Bool {
        var parts = 1
        var run = 0
        for c in s {
            if c == UInt8(ascii: ".") {
                guard run > 0 else { return false }
                parts += 1
                run = 0
            } else if isDigit(c) {
                run += 1
                guard run <= 3 else { return false }
            } else {
                return false
            }
        }
        return parts == 4 && run > 0
    }

    /// The key: the normalised message and the innermost frame (`path:function`, no line: a line number moves
    /// with every edit) when one is known.
    public static func key(message: String, innermostFrame: String?) -> String {
        let normalised = normalise(message)
        guard let innermostFrame else { return normalised }
        return normalised + " @ " + innermostFrame
    }

    /// The innermost frame of a stack that belongs to the application (`path:function`): Python's
    /// `File "…/app/auth.py", line 45, in check` and `at fn (path:line:col)` (JavaScript, Java-like) lines,
    /// skipping library frames (site-packages, dist-packages, /usr/lib, node_modules). The path is cut to its
    /// last two components so the same code deployed under different roots fingerprints the same.
    public static func innermostFrame(_ stack: String?) -> String? {
        guard let stack else { return nil }
        var found: String?
        for line in stack.split(separator: "\n").prefix(400) {
            let text = String(line).trimmingCharacters(in: " \t")
            var path: Substring?
            var function = ""
            if text.hasPrefix("File \""), let close = text.dropFirst(6).firstIndex(of: "\"") {
                path = text[text.index(text.startIndex, offsetBy: 6)..<close]
                if let comma = text.split(separator: ",").last, comma.hasPrefix(" in ") { function = String(comma.dropFirst(4)) }
            } else if text.hasPrefix("at "), let open = text.lastIndex(of: "("), let close = text.lastIndex(of: ")"), open < close {
                let location = text[text.index(after: open)..<close]
                path = location.split(separator: ":").first
                function = String(text.dropFirst(3)[..<open]).trimmingSpaces()
            }
            guard let path, !path.isEmpty else { continue }
            if ["site-packages", "dist-packages", "/usr/lib", "node_modules", "<frozen"].contains(where: { path.contains($0) }) { continue }
            let tail = path.split(separator: "/").suffix(2).joined(separator: "/")
            found = tail + ":" + String(function.prefix(128))
        }
        return found
    }

    /// A short stable id of a key (FNV-1a 64, hex): what topics, rows and URLs use.
    public static func id(_ key: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return "f-" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }

    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let first = s.first, set.contains(first) { s = s.dropFirst() }
        while let last = s.last, set.contains(last) { s = s.dropLast() }
        return String(s)
    }
}
