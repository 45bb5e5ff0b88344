// Ranking: turns the full-text engine's candidates into answers — the engine's text rank blended with the
// kind of definition and the file's place in the import graph, each hit saying why it matched.

import Foundation  // log1p

/// A document the engine matched: a symbol, or a whole file (`kind == "file"`).
public struct SearchCandidate: Sendable, Equatable {
    public var path: String
    public var kind: String
    public var name: String
    public var line: Int
    /// Higher is better (the engine's rank, sign-normalised).
    public var textRank: Double
    public var nameTerms: String
    public var pathTerms: String
    public var docTerms: String

    public init(path: String, kind: String, name: String, line: Int, textRank: Double, nameTerms: String, pathTerms: String, docTerms: String) {
        self.path = path
        self.kind = kind
        self.name = name
        self.line = line
        self.textRank = textRank
        self.nameTerms = nameTerms
        self.pathTerms = pathTerms
        self.docTerms = docTerms
    }
}

/// One answer: where, how good, and why.
public struct SearchHit: Sendable, Equatable {
    public var path: String
    public var line: Int
    /// The symbol's name; nil for a whole-file hit.
    public var symbol: String?
    public var kind: String
    public var score: Double
    /// Which query terms matched where, e.g. ["password: name", "validation: doc"].
    public var why: [String]
}

public enum Ranking {
    /// Weight of a definition kind: types and functions are what people look for.
    public static func kindWeight(_ kind: String) -> Double {
        switch kind {
        case "class", "struct", "interface", "protocol", "enum", "actor", "type": 1.15
        case "function", "method", "member", "initializer", "func": 1.1
        case "file": 0.9
        case "variable", "constant", "field", "property": 0.7
        case "module", "namespace", "package": 0.8
        default: 0.85
        }
    }

    /// Ranks candidates: normalised text rank × kind weight × (0.5 + share of query terms matched) ×
    /// (1 + 0.15·ln(1 + importers of the file)); at most `perFile` hits per file, `limit` in all.
    public static func rank(
        _ candidates: [SearchCandidate], terms: [String], importers: [String: Int], limit: Int, perFile: Int = 3
    ) -> [SearchHit] {
        guard let best = candidates.map(\.textRank).max(), best > 0 else { return [] }
        var hits: [SearchHit] = candidates.map { candidate in
            let why = explain(candidate, terms: terms)
            let coverage = terms.isEmpty ? 1 : Double(why.count) / Double(terms.count)
            let centrality = 1 + 0.15 * log1p(Double(importers[candidate.path] ?? 0))
            let score = (candidate.textRank / best) * kindWeight(candidate.kind) * (0.5 + coverage) * centrality
            return SearchHit(
                path: candidate.path, line: candidate.line, symbol: candidate.kind == "file" ? nil : candidate.name, kind: candidate.kind,
                score: (score * 1000).rounded() / 1000, why: why)
        }
        hits.sort { ($0.score, $1.path, $1.line) > ($1.score, $0.path, $0.line) }
        var perPath: [String: Int] = [:]
        var out: [SearchHit] = []
        for hit in hits where out.count < limit {
            let count = perPath[hit.path, default: 0]
            guard count < perFile else { continue }
            perPath[hit.path] = count + 1
            out.append(hit)
        }
        return out
    }

    /// For each query term, the first place it matched (name, path, doc), compared on stems as the engines
    /// do (a shared prefix of the shorter word's length minus a suffix, at least 4 letters).
    public static func explain(_ candidate: SearchCandidate, terms: [String]) -> [String] {
        var why: [String] = []
        let places = [("name", candidate.nameTerms), ("path", candidate.pathTerms), ("doc", candidate.docTerms)]
        for term in terms {
            for (place, text) in places where text.split(separator: " ").contains(where: { sameStem(term, $0) }) {
                why.append("\(term): \(place)")
                break
            }
        }
        return why
    }

    static func sameStem(_ a: some StringProtocol, _ b: some StringProtocol) -> Bool {
        if a == b { return true }
        let shorter = min(a.count, b.count)
        guard shorter >= 4 else { return false }
        let stem = max(4, shorter - 2)
        return a.prefix(stem) == b.prefix(stem)
    }

}
