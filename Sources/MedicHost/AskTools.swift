// AskTools: what the model may do while it answers a question — list_tables, describe_table, run_sql,
// structured_query, and the navigator's search_code when configured. Its input is untrusted (prompt
// injection): every field is checked, every statement runs through the source's engine-enforced safety, and
// answers are bounded (`CodeTools.bounded`). The final reply is one JSON object `{"answer", "sql"}`
// (`AskFinalReply`), parsed strictly.
import Pipeline
import Protocol

enum AskTools {
    static let maxRounds = 6

    static func definitions(search: Bool) -> [ModelTool] {
        func schema(_ properties: JSONObject, required: [String]) -> JSONValue {
            .object(["type": "object", "properties": .object(properties), "required": .array(required.map { .string($0) })])
        }
        let string: JSONValue = ["type": "string"]
        var tools = [
            ModelTool(name: "list_tables", description: "List the tables of the source with their row estimates.", inputSchema: schema([:], required: [])),
            ModelTool(
                name: "describe_table",
                description: "Columns of one table: name, type, nullable, primary key, whether it is sensitive (never readable), a few sample values.",
                inputSchema: schema(["table": string], required: ["table"])),
            ModelTool(
                name: "run_sql",
                description: "Run one read-only SELECT on the source (rows capped, sensitive columns masked or refused). Returns columns, rows, row_count.",
                inputSchema: schema(["sql": string], required: ["sql"])),
            ModelTool(
                name: "structured_query",
                description: "A query as filters: {table, where: {column: value | {min, max} | {in: [...]}}, group_by, aggregate: count|sum|avg|min|max, of, order_by, descending, limit}.",
                inputSchema: schema([
                    "table": string, "where": ["type": "object"], "group_by": string, "aggregate": string, "of": string, "order_by": string,
                    "descending": ["type": "boolean"], "limit": ["type": "integer"],
                ], required: ["table"])),
        ]
        if search {
            tools.append(ModelTool(
                name: "search_code",
                description: "Search the application's code index (mode find|locate|related|outline|analyze) — e.g. to see how a column is written.",
                inputSchema: schema(["query": string, "mode": ["type": "string", "enum": .array(CodeTools.modes.map { .string($0) })]], required: ["query"])))
        }
        return tools
    }

    /// The system prompt: the task, the source, the rules, and similar questions an admin marked.
    static func system(source: String, kind: String, memories: [(question: String, sql: String, correct: Bool, comment: String?)]) -> String {
        var text = """
            You answer an administrator's question from the database source "\(source)" (\(kind == "postgres" ? "PostgreSQL" : "SQLite") SQL).
            Use the tools: list_tables and describe_table to learn the schema, run_sql (one read-only SELECT) or structured_query to look at data.
            Everything is read-only; sensitive columns cannot be read. Write SQL for this dialect only.
            When you know the answer, reply with exactly one JSON object and nothing else:
            {"answer": "<the answer in plain language>", "sql": "<the single SELECT the answer comes from>"}
            Medic runs that SELECT again and shows its rows: the numbers the administrator sees come from the database, not from your text.
            """
        if !memories.isEmpty {
            text += "\n\nEarlier questions an administrator reviewed (use the correct ones as examples, avoid the mistakes of the wrong ones):"
            for m in memories {
                text += "\n- Question: \(m.question)\n  SQL: \(m.sql)\n  Marked: \(m.correct ? "correct" : "wrong")"
                if let comment = m.comment, !comment.isEmpty { text += " — \(comment)" }
            }
        }
        return text
    }
}

/// The model's final reply: `{"answer": "…", "sql": "…"}` (a ```json fence around it is tolerated).
struct AskFinalReply: Equatable {
    var answer: String
    var sql: String

    static func parse(_ text: String) -> Result<AskFinalReply, ReportRefusal> {
        guard let open = text.firstIndex(of: "{"), let close = text.lastIndex(of: "}"), open < close else {
            return .failure(ReportRefusal("the reply is not a JSON object"))
        }
        guard let value = try? JSONValue.parse(String(text[open...close]), limits: JSONParseLimits(maxBytes: 64 << 10, maxDepth: 8)),
            case .object(let object) = value
        else { return .failure(ReportRefusal("the reply is not a valid JSON object")) }
        guard let answer = object["answer"]?.stringValue?.trimmingWhitespace(), !answer.isEmpty, answer.count <= 4000 else {
            return .failure(ReportRefusal("'answer' must be a non-empty string of at most 4000 characters"))
        }
        guard let sql = object["sql"]?.stringValue?.trimmingWhitespace(), !sql.isEmpty else {
            return .failure(ReportRefusal("'sql' must be the SELECT the answer comes from"))
        }
        return .success(AskFinalReply(answer: answer, sql: sql))
    }
}
