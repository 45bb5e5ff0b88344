// DemoUsersTests: the Ask demo's users database (issue 14, "Demo") — 50,000 rows with the issue's columns, the same
// rows on every run (fixed-seed splitmix64), and non-trivial answers to the four example questions, checked here with
// SQL of the test's own over a plain connection.
import CSQLite
import Foundation
import Testing

@testable import MedicHost

@Suite struct DemoUsersTests {
    /// A connection of the test's own (read-only) and a helper returning every row as text.
    final class Database {
        var db: OpaquePointer?
        init(_ path: String) throws {
            guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, nil) == SQLITE_OK else { throw DemoUsers.Failure(description: "open \(path)") }
        }
        deinit { sqlite3_close_v2(db) }

        func rows(_ sql: String) -> [[String?]] {
            var statement: OpaquePointer?
            guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK else {
                Issue.record("prepare \(sql): \(String(cString: sqlite3_errmsg(db)))")
                return []
            }
            defer { sqlite3_finalize(statement) }
            var result: [[String?]] = []
            while sqlite3_step(statement) == SQLITE_ROW {
                result.append((0..<sqlite3_column_count(statement)).map { i in
                    sqlite3_column_text(statement, i).map { String(cString: $0) }
                })
            }
            return result
        }

        func int(_ sql: String) -> Int { Int(rows(sql).first?.first.flatMap { $0 } ?? "") ?? -1 }

        /// FNV-1a over every cell of every row in id order, each cell followed by 0x1F; the balance as
        /// printf('%.2f') so Tests/interop/demo_users.py (the same rows built in Python) computes the same value.
        func checksum() -> UInt64 {
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325
            let sql = """
                SELECT id, wallet_address, email, gender, age, country, region, city, printf('%.2f', wallet_balance_usd),
                  last_active, is_active, activity_score, kyc_verified, kyc_level, created_at, updated_at FROM users ORDER BY id
                """
            for row in rows(sql) {
                for cell in row {
                    for byte in (cell ?? "∅").utf8 + [0x1F] {
                        hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
                    }
                }
            }
            return hash
        }
    }

    static func temporaryPath(_ name: String) -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("demo-users-\(UUID().uuidString)").path
        return (directory as NSString).appendingPathComponent(name)
    }

    @Test func fiftyThousandUsersWithTheIssuesColumnsTheSameOnEveryRunAndTheExampleQuestionsHaveAnswers() throws {
        let first = Self.temporaryPath("demo-users.sqlite")
        let second = Self.temporaryPath("again.sqlite")
        defer {
            for path in [first, second] { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        }
        let made = try createDemoUsers(path: first)
        #expect(made.rows == 50_000)
        #expect(made.milliseconds < 30_000)  // a debug build on a busy machine; release takes well under 2 s
        #expect(!FileManager.default.fileExists(atPath: first + ".tmp"))
        _ = try createDemoUsers(path: second)

        let db = try Database(first)
        #expect(db.int("SELECT count(*) FROM users") == 50_000)
        #expect(db.rows("SELECT name FROM pragma_table_info('users') ORDER BY cid").map { $0[0] ?? "" } == [
            "id", "wallet_address", "email", "gender", "age", "country", "region", "city", "wallet_balance_usd", "last_active",
            "is_active", "activity_score", "kyc_verified", "kyc_level", "created_at", "updated_at",
        ])
        // Determinism: a second file built from the same seed holds the same rows.
        let sum = db.checksum()
        #expect(sum == (try Database(second)).checksum())
        // …and the value Tests/interop/demo_users.py pins (its Python generator draws the same rows).
        #expect(sum == 0x49FB_68BB_57B1_AF9D)

        // Plausible distributions.
        #expect(db.int("SELECT count(DISTINCT country) FROM users") >= 10)
        #expect(db.int("SELECT count(*) FROM users WHERE wallet_balance_usd < 0 OR wallet_balance_usd > 10000") == 0)
        #expect(db.int("SELECT count(*) FROM users WHERE last_active < '2026-10-02 00:00:00' OR last_active > '2026-12-01 00:00:00'") == 0)
        #expect(db.int("SELECT count(*) FROM users WHERE is_active != (last_active >= '2026-11-01 00:00:00')") == 0)
        let verified = db.int("SELECT count(*) FROM users WHERE kyc_verified = 1")
        #expect((27_000...33_000).contains(verified))  // ~60 %
        #expect(db.int("SELECT count(*) FROM users WHERE (kyc_verified = 1) != (kyc_level > 0)") == 0)
        #expect(db.int("SELECT count(*) FROM users WHERE created_at > last_active OR updated_at < created_at") == 0)
        #expect(db.int("SELECT count(DISTINCT email) FROM users") == 50_000)

        // The four example questions, answered with SQL written here.
        let tokyo = db.int("""
            SELECT count(*) FROM users WHERE gender = 'female' AND is_active = 1 AND city = 'Tokyo' AND country = 'Japan'
              AND wallet_balance_usd > 500 AND wallet_balance_usd < 1950
            """)
        #expect((1...1000).contains(tokyo))
        let week = db.rows("""
            SELECT id, activity_score FROM users WHERE last_active >= '2026-11-24 00:00:00' ORDER BY activity_score DESC, id LIMIT 10
            """)
        #expect(week.count == 10)
        let regions = db.rows("SELECT region, avg(wallet_balance_usd) FROM users GROUP BY region")
        #expect(regions.count >= 10)
        #expect(Set(regions.compactMap { $0[1].flatMap(Double.init).map { Int($0 / 250) } }).count > 3)  // the regions differ
        #expect((1...49_999).contains(verified))
    }

    @Test func timestampsAreUTCCivilDates() {
        #expect(DemoUsers.timestamp(DemoUsers.referenceEpoch) == "2026-12-01 00:00:00")
        #expect(DemoUsers.timestamp(0) == "1970-01-01 00:00:00")
        #expect(DemoUsers.timestamp(951_782_400 + 3661) == "2000-02-29 01:01:01")
        #expect(DemoUsers.timestamp(1_672_531_199) == "2022-12-31 23:59:59")
    }

    @Test func splitmix64IsTheReferenceSequence() {
        // splitmix64 seeded with 0: the published first outputs.
        var rng = DemoUsers.SplitMix64(seed: 0)
        #expect(rng.next() == 0xE220_A839_7B1D_CDAF)
        #expect(rng.next() == 0x6E78_9E6A_A1B9_65F4)
    }
}
