// StructuredQuery: questions as filters instead of SQL (the plan's `query_users(filters)`) — `{table, where:
// {column: value | {min, max} | {in: [...]}}, group_by?, aggregate?: count|sum|avg|min|max, of?, order_by?,
// limit?}` compiled to parameterized SQL against the introspected schema. Every name must be a column of the
// table (so identifiers come from the schema, never from the request), every value is a bound parameter.
public import Protocol

public struct CompiledQuery: Sendable, Equatable {
    public var sql: String
    public var parameters: [JSONValue]
}

public enum StructuredQuery {
    public enum Dialect: Sendable { case sqlite, postgres }

    /// Compiles `request` for `tables` (allowed tables only, as `QuerySource.tables()` answers).
    public static func compile(_ request: JSONValue, tables: [TableInfo], dialect: Dialect, maxLimit: Int = 1000) -> Result<CompiledQuery, QueryRefusal> {
        do throws(QueryRefusal) {
            return .success(try build(request, tables: tables, dialect: dialect, maxLimit: maxLimit))
        } catch {
            return .failure(error)
        }
    }

    private static func build(_ request: JSONValue, tables: [TableInfo], dialect: Dialect, maxLimit: Int) throws(QueryRefusal) -> CompiledQuery {
        guard case .object(let o) = request else { throw QueryRefusal(.invalid, "the query must be a JSON object") }
        let known: Set<String> = ["table", "where", "group_by", "aggregate", "of", "order_by", "descending", "limit"]
        if let extra = o.keys.first(where: { !known.contains($0) }) { throw QueryRefusal(.invalid, "unknown field '\(extra.prefix(40))'") }
        guard let tableName = o["table"]?.stringValue, let table = tables.first(where: { $0.name == tableName }) else {
            throw QueryRefusal(.notAllowed, "table '\((o["table"]?.stringValue ?? "").prefix(64))' is not an allowed table")
        }
        func column(_ name: String?, _ role: String) throws(QueryRefusal) -> ColumnInfo {
            guard let name, let column = table.columns.first(where: { $0.name == name }) else {
                throw QueryRefusal(.invalid, "\(role) '\((name ?? "").prefix(64))' is not a column of \(table.name)")
            }
            guard !column.sensitive else { throw QueryRefusal(.sensitiveColumn, "\(column.name) is a sensitive column") }
            return column
        }
        var parameters: [JSONValue] = []
        func bind(_ value: JSONValue) throws(QueryRefusal) -> String {
            switch value {
            case .string, .int, .number, .bool:
                parameters.append(value)
                return dialect == .sqlite ? "?\(parameters.count)" : "$\(parameters.count)"
            default:
                throw QueryRefusal(.invalid, "a filter value must be a string, number or boolean")
            }
        }
        var conditions: [String] = []
        for member in o["where"]?.objectValue?.members ?? [] {
            let name = quote(try column(member.key, "filter").name)
            switch member.value {
            case .object(let range) where range["in"] != nil:
                guard let values = range["in"]?.arrayValue, (1...100).contains(values.count) else { throw QueryRefusal(.invalid, "'in' takes 1…100 values") }
                var marks: [String] = []
                for value in values { marks.append(try bind(value)) }
                conditions.append("\(name) IN (\(marks.joined(separator: ", ")))")
            case .object(let range):
                guard range["min"] != nil || range["max"] != nil, range.keys.allSatisfy({ $0 == "min" || $0 == "max" }) else {
                    throw QueryRefusal(.invalid, "a range is {min?, max?} or {in: [...]}")
                }
                // min inclusive, max exclusive: "above 500 but less than 1950" is {min: 500, max: 1950} up to the
                // one value 500 itself (documented; the caller picks the bound it means).
                if let min = range["min"] { conditions.append("\(name) >= \(try bind(min))") }
                if let max = range["max"] { conditions.append("\(name) < \(try bind(max))") }
            case .null:
                conditions.append("\(name) IS NULL")
            default:
                conditions.append("\(name) = \(try bind(member.value))")
            }
        }
        var select: [String] = []
        var resultNames: [String] = []
        var groupBy: String?
        if let group = o["group_by"] {
            let c = try column(group.stringValue, "group_by")
            groupBy = quote(c.name)
            select.append(quote(c.name))
            resultNames.append(c.name)
        }
        switch o["aggregate"]?.stringValue {
        case nil where groupBy == nil:
            break
        case nil, "count":
            select.append("count(*) AS count")
            resultNames.append("count")
        case let function? where ["sum", "avg", "min", "max"].contains(function):
            let c = try column(o["of"]?.stringValue, "of")
            let alias = function + "_" + c.name.filter { $0.isLetter || $0.isNumber || $0 == "_" }
            select.append("\(function)(\(quote(c.name))) AS \(alias)")
            resultNames.append(alias)
        default:
            throw QueryRefusal(.invalid, "aggregate must be count, sum, avg, min or max")
        }
        if select.isEmpty {
            let visible = table.columns.filter { !$0.sensitive }
            select = visible.map { quote($0.name) }
            resultNames = visible.map(\.name)
        }
        var sql = "SELECT \(select.joined(separator: ", ")) FROM \(quote(table.name))"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        if let groupBy { sql += " GROUP BY \(groupBy)" }
        if let order = o["order_by"]?.stringValue {
            guard resultNames.contains(order) else { throw QueryRefusal(.invalid, "order_by '\(order.prefix(64))' is not a column of the result") }
            sql += " ORDER BY \(quote(order))\(o["descending"]?.boolValue == true ? " DESC" : "")"
        }
        let limit = o["limit"]?.intValue.map { Int($0) } ?? maxLimit
        guard (1...maxLimit).contains(limit) else { throw QueryRefusal(.invalid, "limit must be 1…\(maxLimit)") }
        sql += " LIMIT \(limit)"
        return CompiledQuery(sql: sql, parameters: parameters)
    }

    static func quote(_ identifier: String) -> String { "\"" + identifier.replacingAll("\"", with: "\"\"") + "\"" }
}

