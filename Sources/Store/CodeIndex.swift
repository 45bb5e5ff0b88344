// CodeIndex: the navigator's index in the store — files, symbols, imports, and one search document per symbol
// and per file, searched by the engine's own full-text search: SQLite FTS5 (porter stemming, bm25 with
// column weights; common words bounded before ranking, see `sqliteSearch`) or PostgreSQL tsvector/GIN (english
// stemming, ts_rank_cd with weights A/B/C). The terms come already split by the caller (Navigator's `Terms`);
// nothing here builds an inverted index.
import Foundation  // log


/// What an index of one repository reflects.
public struct CodeIndexState: Sendable, Equatable {
    public var repo: String
    /// The commit the index reflects (nil: not a git repository, or never completed).
    public var commit: String?
    public var indexedAt: Int64
    public var files: Int
    public var symbols: Int
}

/// One indexed file, as stored.
public struct CodeFileRow: Sendable, Equatable {
    public var path: String
    public var language: String
    public var size: Int
    public var hash: String
    public var lines: Int
    /// Modification time (ns) when indexed: a file with the same size and mtime is not read again.
    public var mtime: Int64

    public init(path: String, language: String, size: Int, hash: String, lines: Int, mtime: Int64 = 0) {
        self.path = path
        self.language = language
        self.size = size
        self.hash = hash
        self.lines = lines
        self.mtime = mtime
    }
}

public struct CodeSymbolRow: Sendable, Equatable {
    public var path: String
    public var name: String
    public var kind: String
    public var scope: String?
    public var signature: String?
    public var line: Int
    public var endLine: Int?
    public var doc: String?

    public init(path: String, name: String, kind: String, scope: String?, signature: String?, line: Int, endLine: Int?, doc: String?) {
        self.path = path
        self.name = name
        self.kind = kind
        self.scope = scope
        self.signature = signature
        self.line = line
        self.endLine = endLine
        self.doc = doc
    }
}

public struct CodeImportRow: Sendable, Equatable {
    public var path: String
    public var module: String
    /// The repository file, or directory ending in `/`, it resolves to.
    public var resolved: String?
    public var line: Int

    public init(path: String, module: String, resolved: String?, line: Int) {
        self.path = path
        self.module = module
        self.resolved = resolved
        self.line = line
    }
}

/// A search document: a symbol, or the file itself (`kind == "file"`), with its terms by place.
public struct CodeDocRow: Sendable, Equatable {
    public var kind: String
    public var name: String
    public var line: Int
    public var nameTerms: String
    public var pathTerms: String
    public var docTerms: String

    public init(kind: String, name: String, line: Int, nameTerms: String, pathTerms: String, docTerms: String) {
        self.kind = kind
        self.name = name
        self.line = line
        self.nameTerms = nameTerms
        self.pathTerms = pathTerms
        self.docTerms = docTerms
    }
}

/// Everything the index holds of one file.
public struct IndexedFile: Sendable, Equatable {
    public var file: CodeFileRow
    public var symbols: [CodeSymbolRow]
    public var imports: [CodeImportRow]
    public var docs: [CodeDocRow]

    public init(file: CodeFileRow, symbols: [CodeSymbolRow], imports: [CodeImportRow], docs: [CodeDocRow]) {
        self.file = file
        self.symbols = symbols
        self.imports = imports
        self.docs = docs
    }
}

/// A matched search document with the engine's rank (higher is better on both engines).
public struct CodeSearchRow: Sendable, Equatable {
    public var path: String
    public var kind: String
    public var name: String
    public var line: Int
    public var nameTerms: String
    public var pathTerms: String
    public var docTerms: String
    public var rank: Double
}

enum CodeIndexOperations {
    static let migration = Migration(version: 3, name: "code index") { dialect in
        let serial = dialect == .sqlite ? "INTEGER PRIMARY KEY" : "BIGSERIAL PRIMARY KEY"
        let common = """
            CREATE TABLE code_indexes (
                repo TEXT PRIMARY KEY, commit_id TEXT, indexed_at BIGINT NOT NULL, files INTEGER NOT NULL, symbols INTEGER NOT NULL);
            CREATE TABLE code_files (
                repo TEXT NOT NULL, path TEXT NOT NULL, language TEXT NOT NULL, size BIGINT NOT NULL, hash TEXT NOT NULL,
                lines INTEGER NOT NULL, mtime BIGINT NOT NULL, PRIMARY KEY (repo, path));
            CREATE TABLE code_symbols (
                repo TEXT NOT NULL, path TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, scope TEXT, signature TEXT,
                line INTEGER NOT NULL, end_line INTEGER, doc TEXT);
            CREATE INDEX code_symbols_by_file ON code_symbols (repo, path, line);
            CREATE TABLE code_imports (
                repo TEXT NOT NULL, path TEXT NOT NULL, module TEXT NOT NULL, resolved TEXT, line INTEGER NOT NULL);
            CREATE INDEX code_imports_by_file ON code_imports (repo, path);
            CREATE INDEX code_imports_by_target ON code_imports (repo, resolved);
            """
        switch dialect {
        case .sqlite:
            // FTS5 over an external-content table: the documents live in code_docs (indexed by file, so a file's
            // documents are found without scanning the FTS table); code_search holds only the inverted index.
            return common + """
                CREATE TABLE code_docs (
                    id \(serial), repo TEXT NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
                    line INTEGER NOT NULL, name_terms TEXT NOT NULL, path_terms TEXT NOT NULL, doc_terms TEXT NOT NULL);
                CREATE INDEX code_docs_by_file ON code_docs (repo, path);
                CREATE VIRTUAL TABLE code_search USING fts5(
                    name_terms, path_terms, doc_terms, content='code_docs', content_rowid='id', tokenize='porter unicode61');
                """
        case .postgres:
            return common + """
                CREATE TABLE code_docs (
                    id \(serial), repo TEXT NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
                    line INTEGER NOT NULL, name_terms TEXT NOT NULL, path_terms TEXT NOT NULL, doc_terms TEXT NOT NULL,
                    document tsvector NOT NULL);
                CREATE INDEX code_docs_by_file ON code_docs (repo, path);
                CREATE INDEX code_docs_search ON code_docs USING GIN (document);
                """
        }
    }

    static func state(repo: String, on c: any SQLConnection) throws(StoreError) -> CodeIndexState? {
        try c.query("SELECT repo, commit_id, indexed_at, files, symbols FROM code_indexes WHERE repo = $1", [.text(repo)]).first.map {
            CodeIndexState(repo: $0[0].text, commit: $0[1].optionalText, indexedAt: $0[2].int, files: Int($0[3].int), symbols: Int($0[4].int))
        }
    }

    static func files(repo: String, on c: any SQLConnection) throws(StoreError) -> [CodeFileRow] {
        try c.query("SELECT path, language, size, hash, lines, mtime FROM code_files WHERE repo = $1 ORDER BY path", [.text(repo)]).map {
            CodeFileRow(path: $0[0].text, language: $0[1].text, size: Int($0[2].int), hash: $0[3].text, lines: Int($0[4].int), mtime: $0[5].int)
        }
    }

    /// Replaces the index rows of `files` and removes those of `removed`, in one transaction; when `commit` is
    /// given the index is marked as reflecting it (the indexer passes it with its last batch).
    static func update(
        repo: String, files: [IndexedFile], removed: [String], commit: String??, now: Int64, on c: any SQLConnection
    ) throws(StoreError) -> CodeIndexState {
        try StoreOperations.transaction(c) { () throws(StoreError) in
            for path in removed + files.map(\.file.path) { try delete(repo: repo, path: path, on: c) }
            for indexed in files {
                let f = indexed.file
                try c.query(
                    "INSERT INTO code_files (repo, path, language, size, hash, lines, mtime) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    [.text(repo), .text(f.path), .text(f.language), .int(Int64(f.size)), .text(f.hash), .int(Int64(f.lines)), .int(f.mtime)])
                for s in indexed.symbols {
                    try c.query(
                        """
                        INSERT INTO code_symbols (repo, path, name, kind, scope, signature, line, end_line, doc)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                        """,
                        [.text(repo), .text(f.path), .text(s.name), .text(s.kind), sqlText(s.scope), sqlText(s.signature), .int(Int64(s.line)),
                         s.endLine.map { .int(Int64($0)) } ?? .null, sqlText(s.doc)])
                }
                for i in indexed.imports {
                    try c.query(
                        "INSERT INTO code_imports (repo, path, module, resolved, line) VALUES ($1, $2, $3, $4, $5)",
                        [.text(repo), .text(f.path), .text(i.module), sqlText(i.resolved), .int(Int64(i.line))])
                }
                for d in indexed.docs {
                    let values: [SQLValue] = [
                        .text(repo), .text(f.path), .text(d.kind), .text(d.name), .int(Int64(d.line)), .text(d.nameTerms), .text(d.pathTerms),
                        .text(d.docTerms),
                    ]
                    switch c.dialect {
                    case .sqlite:
                        try c.query(
                            """
                            INSERT INTO code_docs (repo, path, kind, name, line, name_terms, path_terms, doc_terms)
                            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                            """, values)
                    case .postgres:
                        try c.query(
                            """
                            INSERT INTO code_docs (repo, path, kind, name, line, name_terms, path_terms, doc_terms, document)
                            VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
                                setweight(to_tsvector('english', $6), 'A') || setweight(to_tsvector('english', $7), 'B')
                                || setweight(to_tsvector('english', $8), 'C'))
                            """, values)
                    }
                }
                if c.dialect == .sqlite {
                    try c.query(
                        """
                        INSERT INTO code_search (rowid, name_terms, path_terms, doc_terms)
                        SELECT id, name_terms, path_terms, doc_terms FROM code_docs WHERE repo = $1 AND path = $2
                        """, [.text(repo), .text(f.path)])
                }
            }
            let counts = try c.query(
                "SELECT (SELECT COUNT(*) FROM code_files WHERE repo = $1), (SELECT COUNT(*) FROM code_symbols WHERE repo = $1)",
                [.text(repo)]
            ).first
            let fileCount = counts?[0].int ?? 0
            let symbolCount = counts?[1].int ?? 0
            let existing = try state(repo: repo, on: c)
            let commitValue: String? = switch commit {
            case .some(let value): value
            case .none: existing?.commit
            }
            try c.query("DELETE FROM code_indexes WHERE repo = $1", [.text(repo)])
            try c.query(
                "INSERT INTO code_indexes (repo, commit_id, indexed_at, files, symbols) VALUES ($1, $2, $3, $4, $5)",
                [.text(repo), sqlText(commitValue), .int(now), .int(fileCount), .int(symbolCount)])
            return CodeIndexState(repo: repo, commit: commitValue, indexedAt: now, files: Int(fileCount), symbols: Int(symbolCount))
        }
    }

    private static func delete(repo: String, path: String, on c: any SQLConnection) throws(StoreError) {
        let key: [SQLValue] = [.text(repo), .text(path)]
        if c.dialect == .sqlite {
            // External content: the FTS index is told which rows go, with their old values.
            try c.query(
                """
                INSERT INTO code_search (code_search, rowid, name_terms, path_terms, doc_terms)
                SELECT 'delete', id, name_terms, path_terms, doc_terms FROM code_docs WHERE repo = $1 AND path = $2
                """, key)
        }
        try c.query("DELETE FROM code_docs WHERE repo = $1 AND path = $2", key)
        try c.query("DELETE FROM code_symbols WHERE repo = $1 AND path = $2", key)
        try c.query("DELETE FROM code_imports WHERE repo = $1 AND path = $2", key)
        try c.query("DELETE FROM code_files WHERE repo = $1 AND path = $2", key)
    }

    /// Documents matching any of `terms` (letters and digits only — the caller's `Terms.query`; anything else
    /// is dropped here too, so no user text reaches the FTS5 or tsquery syntax), best first.
    static func search(repo: String, terms: [String], limit: Int, on c: any SQLConnection) throws(StoreError) -> [CodeSearchRow] {
        try search(repo: repo, terms: terms, limit: limit, bounds: .standard, on: c).rows
    }

    /// When the SQLite search ranks only a bounded candidate set (see `sqliteSearch`).
    struct SearchBounds: Sendable {
        /// A term matching more documents than this (and not the query's rarest term) is "common".
        var commonTermDocuments: Int64
        /// Up to this many matches in all (the sum of the terms' document counts), every match is ranked.
        var allDocuments: Int64
        /// At most this many terms get the pruned query (its expression grows with terms × common terms).
        var terms: Int

        static let standard = SearchBounds(commonTermDocuments: 2000, allDocuments: 4000, terms: 8)
    }

    /// How a search found its rows: every match ranked in one statement, every match ranked in the FTS table
    /// alone with the documents read for the best few, or only the candidates that can reach the top ranked.
    enum SearchPath: Sendable, Equatable { case exhaustive, ranked, pruned }

    /// `bounds` nil: every match ranked in one statement (the reference the others must equal).
    static func search(
        repo: String, terms: [String], limit: Int, bounds: SearchBounds?, on c: any SQLConnection
    ) throws(StoreError) -> (rows: [CodeSearchRow], path: SearchPath) {
        let clean = terms.map { String($0.filter { $0.isLetter || $0.isNumber }.prefix(64)) }.filter { !$0.isEmpty }.prefix(32)
        guard !clean.isEmpty else { return ([], .exhaustive) }
        let limit = Int64(max(1, min(limit, 1000)))
        let found: (rows: [[SQLValue]], path: SearchPath)
        switch c.dialect {
        case .sqlite:
            found = try sqliteSearch(repo: repo, terms: Array(clean), limit: limit, bounds: bounds, on: c)
        case .postgres:
            found = (try c.query(
                """
                SELECT path, kind, name, line, name_terms, path_terms, doc_terms, ts_rank_cd(document, q) AS r
                FROM code_docs, to_tsquery('english', $1) q
                WHERE repo = $2 AND document @@ q ORDER BY r DESC, path, line LIMIT $3
                """, [.text(clean.joined(separator: " | ")), .text(repo), .int(limit)]), .exhaustive)
        }
        let rows = found.rows.map {
            CodeSearchRow(
                path: $0[0].text, kind: $0[1].text, name: $0[2].text, line: Int($0[3].int), nameTerms: $0[4].text, pathTerms: $0[5].text,
                docTerms: $0[6].text, rank: Double($0[7].text) ?? 0)
        }
        return (rows, found.path)
    }

    /// The `limit` best documents by bm25 (name 10, path 4, doc 1) over `terms` OR'ed — the same rows, in the
    /// same order, as ranking every match, but without computing bm25 for most matches of common words.
    ///
    /// bm25 is a sum over the query's phrases of idf(t) · f(t, d), and f < k1 + 1 = 2.2 (FTS5's k1 = 1.2)
    /// whatever the column weights, so a document matching a single term t and no other scores below
    /// 2.2 · idf(t). Common terms (more than `commonTermDocuments` documents; never the rarest term) are
    /// therefore searched only together with another term: the expression is
    /// `(t1 OR … OR tn) NOT ((c1 NOT (the other terms)) OR …)`. The phrases on the right of NOT contribute
    /// nothing to a row that matches, so every candidate keeps its exact score (the contract test compares).
    /// The answer is kept only when it is provably the full ranking's: `limit` rows came back and the last
    /// scores above 2.2 · idf of every common term (idf from an upper bound of the row count, which only
    /// raises the bound); otherwise every match is ranked.
    static func sqliteSearch(
        repo: String, terms: [String], limit: Int64, bounds: SearchBounds?, on c: any SQLConnection
    ) throws(StoreError) -> (rows: [[SQLValue]], path: SearchPath) {
        func phrase(_ term: String) -> String { "\"\(term)\"" }
        let any = terms.map(phrase).joined(separator: " OR ")
        guard let bounds else { return (try sqliteExhaustive(repo: repo, match: any, limit: limit, on: c), .exhaustive) }
        if terms.count >= 2 && terms.count <= bounds.terms {
            var documents: [String: Int64] = [:]
            for term in terms where documents[term] == nil {
                documents[term] = try c.query("SELECT count(*) FROM code_search WHERE code_search MATCH $1", [.text(phrase(term))]).first?[0].int ?? 0
            }
            let byFrequency = documents.keys.sorted { (documents[$0]!, $0) < (documents[$1]!, $1) }
            let common = byFrequency.dropFirst().filter { documents[$0]! > bounds.commonTermDocuments }
            if !common.isEmpty, documents.values.reduce(0, +) > bounds.allDocuments {
                let alone = common.map { term in "(\(phrase(term)) NOT (\(terms.filter { $0 != term }.map(phrase).joined(separator: " OR "))))" }
                let match = "(\(any)) NOT (\(alone.joined(separator: " OR ")))"
                // ≥ the FTS table's row count (ids are distinct positive integers).
                let rowsBound = Double(try c.query("SELECT max(id) FROM code_docs", []).first?[0].int ?? 0)
                let bound = common.map { term in
                    let n = Double(documents[term]!)
                    return 2.2 * max(1e-6, log((rowsBound - n + 0.5) / (n + 0.5)))
                }.max() ?? 0
                if let rows = try sqliteRanked(repo: repo, match: match, limit: limit, on: c), rows.count == Int(limit),
                    let last = rows.last.flatMap({ Double($0[7].text) }), last > bound
                {
                    return (rows, .pruned)
                }
            }
        }
        if let rows = try sqliteRanked(repo: repo, match: any, limit: limit, on: c) { return (rows, .ranked) }
        return (try sqliteExhaustive(repo: repo, match: any, limit: limit, on: c), .exhaustive)
    }

    private static func sqliteExhaustive(repo: String, match: String, limit: Int64, on c: any SQLConnection) throws(StoreError) -> [[SQLValue]] {
        try c.query(
            """
            SELECT d.path, d.kind, d.name, d.line, d.name_terms, d.path_terms, d.doc_terms, -bm25(code_search, 10.0, 4.0, 1.0) AS r
            FROM code_search JOIN code_docs d ON d.id = code_search.rowid
            WHERE code_search MATCH $1 AND d.repo = $2 ORDER BY r DESC, d.path, d.line LIMIT $3
            """, [.text(match), .text(repo), .int(limit)])
    }

    /// The ranking over the FTS table alone (rowid and bm25; the documents are read only for the best
    /// 4 × `limit`), then the repository's rows among them. Nil when that may differ from ranking every
    /// match of `repo`: the inner limit was reached and either fewer than `limit` rows belong to `repo` or
    /// the last one ties with the inner list's last.
    private static func sqliteRanked(repo: String, match: String, limit: Int64, on c: any SQLConnection) throws(StoreError) -> [[SQLValue]]? {
        let inner = limit * 4
        let rows = try c.query(
            """
            WITH s AS MATERIALIZED (
                SELECT rowid AS id, -bm25(code_search, 10.0, 4.0, 1.0) AS r FROM code_search WHERE code_search MATCH $1 ORDER BY r DESC LIMIT $4)
            SELECT d.path, d.kind, d.name, d.line, d.name_terms, d.path_terms, d.doc_terms, s.r, (SELECT count(*) FROM s), (SELECT min(r) FROM s)
            FROM s JOIN code_docs d ON d.id = s.id
            WHERE d.repo = $2 ORDER BY s.r DESC, d.path, d.line LIMIT $3
            """, [.text(match), .text(repo), .int(limit), .int(inner)])
        guard let first = rows.first else {
            // Nothing of `repo` among the inner rows: exact only if there were no matches at all.
            return try c.query("SELECT 1 FROM code_search WHERE code_search MATCH $1 LIMIT 1", [.text(match)]).isEmpty ? [] : nil
        }
        if first[8].int < inner { return rows.map { Array($0.prefix(8)) } }
        if rows.count < Int(limit) || rows.last?[7] == first[9] { return nil }
        return rows.map { Array($0.prefix(8)) }
    }

    static func symbols(repo: String, path: String, on c: any SQLConnection) throws(StoreError) -> [CodeSymbolRow] {
        try c.query(
            "SELECT path, name, kind, scope, signature, line, end_line, doc FROM code_symbols WHERE repo = $1 AND path = $2 ORDER BY line, name",
            [.text(repo), .text(path)]
        ).map {
            CodeSymbolRow(
                path: $0[0].text, name: $0[1].text, kind: $0[2].text, scope: $0[3].optionalText, signature: $0[4].optionalText,
                line: Int($0[5].int), endLine: $0[6].optionalText.flatMap { Int($0) }, doc: $0[7].optionalText)
        }
    }

    static func imports(repo: String, on c: any SQLConnection) throws(StoreError) -> [CodeImportRow] {
        try c.query("SELECT path, module, resolved, line FROM code_imports WHERE repo = $1 ORDER BY path, line", [.text(repo)]).map {
            CodeImportRow(path: $0[0].text, module: $0[1].text, resolved: $0[2].optionalText, line: Int($0[3].int))
        }
    }

    /// Symbol name → the files defining it (sorted, deduplicated).
    static func definitions(repo: String, on c: any SQLConnection) throws(StoreError) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for row in try c.query("SELECT DISTINCT name, path FROM code_symbols WHERE repo = $1 ORDER BY name, path", [.text(repo)]) {
            out[row[0].text, default: []].append(row[1].text)
        }
        return out
    }
}
