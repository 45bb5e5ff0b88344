// Terms: how code and questions become search terms — identifiers split at case and separators
// (`validatePassword`, `validate_password`, `HTTPServer` → validate password, http server), paths split at
// `/` and `.`, everything lowercased. The databases' own full-text engines (SQLite FTS5, PostgreSQL tsvector)
// stem and rank what these produce; nothing here is an index.

public enum Terms {
    /// Words of a question that say nothing about where code is ("where is the logic for …").
    public static let questionNoise: Set<String> = [
        "a", "an", "the", "of", "in", "to", "for", "and", "or", "is", "are", "be", "been", "was", "were", "do", "does",
        "did", "how", "what", "where", "which", "who", "why", "when", "that", "this", "these", "those", "it", "its",
        "with", "on", "by", "from", "at", "as", "into", "about", "code", "logic", "function", "functions", "method",
        "methods", "file", "files", "class", "handled", "handles", "handling", "implemented", "implementation",
        "happens", "happen", "done", "there", "we", "our", "i", "my", "me", "you", "find", "show", "please", "any",
        "some", "all", "can", "should", "would", "could", "will", "not", "no", "users", "user's",
    ]

    /// The lowercase terms of identifiers, paths and prose, in order (duplicates kept). A term is a run of
    /// letters or digits; inside a run, a lower→upper or digit→upper change (`validatePassword`, `base64Encode`)
    /// and the last capital of a capital run before a lowercase letter (`HTTPServer` → HTTP, Server) start a
    /// new term.
    public static func split(_ text: some StringProtocol) -> [String] {
        var terms: [String] = []
        var current: [Character] = []
        func flush() {
            if !current.isEmpty { terms.append(String(current).lowercased()) }
            current.removeAll(keepingCapacity: true)
        }
        let characters = Array(text)
        for (i, c) in characters.enumerated() {
            guard c.isLetter || c.isNumber else {
                flush()
                continue
            }
            if let last = current.last {
                let next = i + 1 < characters.count ? characters[i + 1] : nil
                if last.isLowercase && c.isUppercase {
                    flush()
                } else if last.isUppercase && c.isUppercase, let next, next.isLowercase {
                    flush()
                } else if last.isNumber && c.isUppercase {
                    flush()  // base64Encode → base64, encode (utf8, sha256 stay whole)
                }
            }
            current.append(c)
        }
        flush()
        return terms
    }

    /// The terms to search for in a question: split, without noise words and one-letter terms, deduplicated
    /// in order, at most `limit`.
    public static func query(_ text: some StringProtocol, limit: Int = 24) -> [String] {
        var seen: Set<String> = []
        var out: [String] = []
        let all = split(text)
        for (i, term) in all.enumerated() {
            // "HTTP/2", "python 3": a short number after a word is also read joined to it (http2, python3).
            var candidates = [term]
            if i + 1 < all.count, all[i + 1].count <= 2, all[i + 1].allSatisfy(\.isNumber), term.first?.isLetter == true {
                candidates.append(term + all[i + 1])
            }
            for candidate in candidates where candidate.count > 1 && !questionNoise.contains(candidate) && seen.insert(candidate).inserted {
                out.append(candidate)
                if out.count == limit { return out }
            }
        }
        return out
    }

    /// The text a full-text engine indexes for an identifier: its split terms, plus the whole identifier
    /// lowercased when it is compound (so `validatepassword` and `validate_password` also match exactly).
    public static func document(identifier: String) -> String {
        let parts = split(identifier)
        let whole = identifier.lowercased().filter { $0.isLetter || $0.isNumber }
        return (parts.count > 1 && !whole.isEmpty ? parts + [whole] : parts).joined(separator: " ")
    }
}
