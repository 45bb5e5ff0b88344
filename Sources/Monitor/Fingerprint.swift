// Fingerprint: what makes two errors "the same" — the message with its variable parts normalised (numbers,
// hex, UUIDs, quoted values, paths, emails, IPs) plus the innermost stack frame in the repository.

public enum Fingerprint {
    /// The normalised message: variable parts replaced by placeholders, whitespace collapsed, at most 300
    /// characters. `User 42 'bob' not found at /srv/x.py` → `User <n> <q> not found at <path>`.
    public static func normalise(_ message: String) -> String {
        var out = ""
        var word = ""
        var quote: Character?
        func flush() {
            guard !word.isEmpty else { return }
            out += out.last == "=" && isIdentityKey(out) ? "<v>" : placeholder(word)
            word = ""
        }
        for c in message.prefix(2000) {
            if let open = quote {
                if c == open { quote = nil; out += "<q>" }
                continue
            }
            if c == "'" || c == "\"" || c == "`" {
                flush()
                quote = c
                continue
            }
            if c.isWhitespace || c == "," || c == "(" || c == ")" || c == "[" || c == "]" || c == "{" || c == "}" || c == "=" || c == ";" {
                flush()
                if c.isWhitespace { if out.last != " " { out.append(" ") } } else { out.append(c) }
                continue
            }
            word.append(c)
        }
        flush()
        if quote != nil { out += "<q>" }
        return String(out.trimmingSpaces().prefix(300))
    }

    /// Keys whose values name who or where (`user=bob`, `ip=…`): the value is never part of the fingerprint.
    static let identityKeys: Set<String> = [
        "user", "username", "user_id", "uid", "email", "ip", "client_ip", "remote_addr", "session", "session_id", "request_id", "req_id",
        "trace_id", "span_id", "account", "account_id", "customer", "customer_id", "id",
    ]

    /// Whether `text` (normalised so far, ending in `=`) ends with an identity key.
    static func isIdentityKey(_ text: String) -> Bool {
        let key = text.dropLast().reversed().prefix { !$0.isWhitespace && !",;([{".contains($0) }
        return identityKeys.contains(String(key.reversed()).lowercased())
    }

    /// One word → itself or a placeholder.
    static func placeholder(_ word: String) -> String {
        let trimmed = word.trimmingCharacters(in: ".:!?")
        let suffix = String(word.dropFirst(trimmed.count + word.prefix { ".:!?".contains($0) }.count))
        if trimmed.isEmpty { return word }
        // Byte tests, not `String.contains(String)` (its searcher builds a table per call: half the ingest profile).
        if trimmed.utf8.contains(UInt8(ascii: "/")) && trimmed.count > 1 { return "<path>" + suffix }
        if trimmed.utf8.contains(UInt8(ascii: "@")) && trimmed.utf8.contains(UInt8(ascii: ".")) { return "<email>" + suffix }
        if isIPv4(trimmed) { return "<ip>" + suffix }
        if let colon = trimmed.firstIndex(of: ":"), isIPv4(String(trimmed[..<colon])) {
            return "<ip>:" + placeholder(String(trimmed[trimmed.index(after: colon)...])) + suffix
        }
        if trimmed.count >= 32 && trimmed.filter({ $0 == "-" }).count == 4 && trimmed.allSatisfy({ $0.isHexDigit || $0 == "-" }) { return "<uuid>" + suffix }
        if trimmed.hasPrefix("0x"), trimmed.count > 2, trimmed.dropFirst(2).allSatisfy(\.isHexDigit) { return "<hex>" + suffix }
        if trimmed.count >= 8, trimmed.allSatisfy(\.isHexDigit), trimmed.contains(where: \.isNumber) { return "<hex>" + suffix }
        if trimmed.allSatisfy({ $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" }) && trimmed.contains(where: \.isNumber) { return "<n>" + suffix }
        // Words with digits inside ids (user_12345, req-8f3a…): the digits are the variable part.
        if trimmed.filter(\.isNumber).count >= 3 {
            return String(trimmed.map { $0.isNumber ? "#" : $0 }).replacingRuns(of: "#", with: "<n>") + suffix
        }
        return word
    }

    static func isIPv4(_ s: String) -> Bool {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) }
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

    /// Collapses runs of `target` into one `replacement`.
    func replacingRuns(of target: Character, with replacement: String) -> String {
        var out = ""
        var inRun = false
        for c in self {
            if c == target {
                if !inRun { out += replacement }
                inRun = true
            } else {
                out.append(c)
                inRun = false
            }
        }
        return out
    }
}
