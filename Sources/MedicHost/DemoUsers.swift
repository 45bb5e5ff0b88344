// DemoUsers: the demo's application database for Ask (issue 14, "Demo") — an SQLite file with the customer's
// `users` table (id, wallet_address, email, gender, age, country, region, city, wallet_balance_usd, last_active,
// is_active, activity_score, kyc_verified, kyc_level, created_at, updated_at), 50,000 rows drawn from a fixed-seed
// splitmix64, so every checkout builds the same rows and the scripted answers' numbers can be checked by tests.
// Written here (MedicHost, not the `medic` executable) so the test targets can call it.
import CSQLite
import Dispatch
import Foundation

public enum DemoUsers {
    /// Rows in the demo table.
    public static let rowCount = 50_000
    /// The generator's seed; changing it changes every row (and the numbers the tests expect).
    public static let seed: UInt64 = 0x4D45_4449_4331_3400  // "MEDIC14\0"
    /// "Now" for the data: 2026-12-01 00:00:00 UTC. Every `last_active` lies within 60 days before it;
    /// `is_active` is 1 exactly when `last_active` is within the last 30 days of it.
    public static let referenceEpoch: Int64 = 1_796_083_200
    /// The oldest `created_at`: 2023-01-01 00:00:00 UTC.
    static let firstSignupEpoch: Int64 = 1_672_531_200
    /// The configured source name and the columns Ask never returns unmasked.
    public static let sourceName = "users"
    public static let sensitiveColumns = ["email", "wallet_address"]

    /// Where the demo puts the database: `<data-dir>/demo-users.sqlite`.
    public static func path(for dataDirectory: String) -> String {
        (dataDirectory as NSString).appendingPathComponent("demo-users.sqlite")
    }

    /// The table, exactly the columns. Dates are UTC text `YYYY-MM-DD HH:MM:SS` (SQLite's own
    /// `datetime()` format, so `last_active >= datetime(…, '-7 days')` compares correctly).
    public static let createTable = """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            wallet_address TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL UNIQUE,
            gender TEXT NOT NULL,
            age INTEGER NOT NULL,
            country TEXT NOT NULL,
            region TEXT NOT NULL,
            city TEXT NOT NULL,
            wallet_balance_usd REAL NOT NULL,
            last_active TEXT NOT NULL,
            is_active INTEGER NOT NULL,
            activity_score INTEGER NOT NULL,
            kyc_verified INTEGER NOT NULL,
            kyc_level INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """

    /// (country, region, city, weight, wealth): the weights are relative (sum 100); wealth skews the balances
    /// (the exponent of the balance draw is 2 / wealth, so > 1 means fuller wallets) so regions differ.
    static let places: [(country: String, region: String, city: String, weight: Int, wealth: Double)] = [
        ("Japan", "Tokyo", "Tokyo", 7, 1.2), ("Japan", "Osaka", "Osaka", 3, 1.0), ("Japan", "Kanagawa", "Yokohama", 2, 1.0),
        ("United States", "California", "San Francisco", 6, 1.5), ("United States", "California", "Los Angeles", 6, 1.2),
        ("United States", "New York", "New York", 8, 1.4), ("United States", "Texas", "Austin", 4, 1.1),
        ("United Kingdom", "England", "London", 8, 1.2), ("United Kingdom", "Scotland", "Edinburgh", 2, 0.9),
        ("Germany", "Berlin", "Berlin", 5, 1.0), ("Germany", "Bavaria", "Munich", 3, 1.1),
        ("France", "Île-de-France", "Paris", 5, 1.0), ("Brazil", "São Paulo", "São Paulo", 6, 0.7),
        ("India", "Maharashtra", "Mumbai", 6, 0.6), ("India", "Karnataka", "Bengaluru", 5, 0.7),
        ("Singapore", "Singapore", "Singapore", 4, 1.6), ("Nigeria", "Lagos", "Lagos", 4, 0.5),
        ("Canada", "Ontario", "Toronto", 5, 1.0), ("Australia", "New South Wales", "Sydney", 5, 1.1),
        ("South Korea", "Seoul", "Seoul", 2, 1.2),
    ]
    static let firstNames = [
        "aiko", "akira", "alex", "amara", "ana", "ben", "carlos", "chen", "chloe", "david", "emma", "fatima", "hana",
        "hiro", "ines", "james", "jin", "kenji", "lea", "liam", "lucas", "maria", "mei", "noah", "olu", "priya", "raj",
        "sakura", "sam", "sofia", "tom", "yuki", "zara",
    ]
    static let domains = ["example.com", "example.org", "example.net", "mail.example", "wallet.example"]

    /// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and the same sequence on every platform — unlike
    /// `SystemRandomNumberGenerator`, which is seeded by the OS.
    public struct SplitMix64: RandomNumberGenerator {
        private var state: UInt64
        public init(seed: UInt64) { state = seed }
        public mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        /// Uniform in [0, 1) from the top 53 bits.
        public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
        /// Uniform in `range` (the bias of the modulo is below 2^-40 for these small ranges).
        public mutating func int(_ range: ClosedRange<Int>) -> Int {
            range.lowerBound + Int(next() % UInt64(range.upperBound - range.lowerBound + 1))
        }
    }

    /// `YYYY-MM-DD HH:MM:SS` for seconds since the epoch, UTC (days → civil date after Hinnant's algorithm;
    /// no DateFormatter, so 50,000 × 3 dates stay cheap and locale-free).
    public static func timestamp(_ epoch: Int64) -> String {
        let days = epoch >= 0 ? epoch / 86_400 : (epoch - 86_399) / 86_400
        let seconds = Int(epoch - days * 86_400)
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        func two(_ n: Int64) -> String { two(Int(n)) }
        return "\(year)-\(two(month))-\(two(day)) \(two(seconds / 3600)):\(two(seconds / 60 % 60)):\(two(seconds % 60))"
    }

    /// One row's values, in the table's column order.
    public enum Value: Equatable, Sendable {
        case int(Int64), real(Double), text(String)
    }

    /// Every row, in id order (the generator alone; `create` writes them).
    public static func rows() -> [[Value]] {
        var rng = SplitMix64(seed: seed)
        let totalWeight = places.reduce(0) { $0 + $1.weight }
        var rows: [[Value]] = []
        rows.reserveCapacity(rowCount)
        let hex = Array("0123456789abcdef".utf8)
        for id in 1...rowCount {
            var address = [UInt8]("0x".utf8)
            for _ in 0..<40 { address.append(hex[Int(rng.next() & 15)]) }
            let name = firstNames[rng.int(0...(firstNames.count - 1))]
            let email = "\(name).\(id)@\(domains[rng.int(0...(domains.count - 1))])"
            let g = rng.unit()
            let gender = g < 0.48 ? "female" : g < 0.96 ? "male" : "other"
            let age = 18 + Int(rng.unit() * rng.unit() * 62)  // skewed young: 18–79
            var pick = rng.int(0...(totalWeight - 1))
            var place = places[0]
            for candidate in places {
                if pick < candidate.weight { place = candidate; break }
                pick -= candidate.weight
            }
            // Balance: 10 % empty wallets, the rest skewed low (10,000 × u^(2/wealth)), in cents.
            let balance = rng.unit() < 0.10 ? 0 : (10_000 * pow(rng.unit(), 2 / place.wealth) * 100).rounded() / 100
            // Last activity within 60 days, more of it recent (60 × u^1.5 days ago).
            let idleSeconds = Int64(pow(rng.unit(), 1.5) * 60 * 86_400)
            let lastActive = referenceEpoch - idleSeconds
            let isActive: Int64 = idleSeconds < 30 * 86_400 ? 1 : 0
            let recency = 1 - Double(idleSeconds) / Double(60 * 86_400)
            let score = min(100, Int(recency * 70 + rng.unit() * 30))
            let verified = rng.unit() < 0.60
            let l = rng.unit()
            let level: Int64 = !verified ? 0 : l < 0.5 ? 1 : l < 0.85 ? 2 : 3
            let createdAt = firstSignupEpoch + Int64(rng.unit() * Double(lastActive - firstSignupEpoch))
            let updatedAt = max(createdAt, lastActive - Int64(rng.unit() * 10 * 86_400))
            rows.append([
                .int(Int64(id)), .text(String(decoding: address, as: UTF8.self)), .text(email), .text(gender), .int(Int64(age)),
                .text(place.country), .text(place.region), .text(place.city), .real(balance), .text(timestamp(lastActive)),
                .int(isActive), .int(Int64(score)), .int(verified ? 1 : 0), .int(level), .text(timestamp(createdAt)),
                .text(timestamp(updatedAt)),
            ])
        }
        return rows
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }
}

/// Writes the demo users database to `path` (its directory is created): the table and 50,000 rows in one
/// transaction into `path.tmp`, then renamed over `path`, so an interrupted run never leaves a half-filled
/// database that a later run would take for done. Returns the rows written and the time it took.
public func createDemoUsers(path: String) throws -> (rows: Int, milliseconds: Int) {
    let started = DispatchTime.now().uptimeNanoseconds
    let directory = (path as NSString).deletingLastPathComponent
    if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
    let temporary = path + ".tmp"
    try? FileManager.default.removeItem(atPath: temporary)
    var handle: OpaquePointer?
    guard sqlite3_open_v2(temporary, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil) == SQLITE_OK, let db = handle else {
        let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
        sqlite3_close_v2(handle)
        throw DemoUsers.Failure(description: "cannot create \(temporary): \(message)")
    }
    var statement: OpaquePointer?
    var isOpen = true
    defer {
        if isOpen {
            sqlite3_finalize(statement)
            sqlite3_close_v2(db)
            try? FileManager.default.removeItem(atPath: temporary)
        }
    }
    func fail(_ what: String) -> DemoUsers.Failure {
        DemoUsers.Failure(description: "\(what) in \(temporary): \(String(cString: sqlite3_errmsg(db)))")
    }
    func exec(_ sql: String) throws {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else { throw fail(sql.prefix(40) + "…") }
    }
    try exec("PRAGMA journal_mode=DELETE; PRAGMA synchronous=OFF")
    try exec("BEGIN")
    try exec(DemoUsers.createTable)
    let insert = "INSERT INTO users VALUES (" + Array(repeating: "?", count: 16).joined(separator: ", ") + ")"
    guard sqlite3_prepare_v2(db, insert, -1, &statement, nil) == SQLITE_OK else { throw fail("prepare insert") }
    // SQLITE_TRANSIENT: SQLite copies the text (our Swift strings do not outlive the call).
    let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    let rows = DemoUsers.rows()
    for row in rows {
        for (i, value) in row.enumerated() {
            let index = Int32(i + 1)
            switch value {
            case .int(let v): sqlite3_bind_int64(statement, index, v)
            case .real(let v): sqlite3_bind_double(statement, index, v)
            case .text(let v): sqlite3_bind_text(statement, index, v, -1, transient)
            }
        }
        guard sqlite3_step(statement) == SQLITE_DONE else { throw fail("insert") }
        sqlite3_reset(statement)
    }
    try exec("CREATE INDEX users_city ON users(country, city); CREATE INDEX users_last_active ON users(last_active)")
    try exec("COMMIT")
    sqlite3_finalize(statement)
    let closed = sqlite3_close_v2(db)
    isOpen = false
    guard closed == SQLITE_OK else { throw DemoUsers.Failure(description: "cannot close \(temporary) (code \(closed))") }
    if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
    try FileManager.default.moveItem(atPath: temporary, toPath: path)
    let milliseconds = Int((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000)
    return (rows.count, milliseconds)
}
