// StoreThroughputTests: append throughput per backend (prints figures; runs only with MEDIC_STORE_BENCH=1).
import Foundation
import Testing

@testable import Store

@Suite("Store throughput", .serialized, .enabled(if: ProcessInfo.processInfo.environment["MEDIC_STORE_BENCH"] == "1"))
struct StoreThroughputTests {
    /// 50,000 one-event writes from 8 threads. "pipelined": each thread submits all its writes without
    /// waiting (group commit batches whatever is queued); "acked": each thread waits for every ack before
    /// the next write, as a command handler would. No assertion on speed, only on completeness.
    @Test("append throughput", arguments: BackendKind.all)
    func appendThroughput(_ kind: BackendKind) throws {
        for mode in ["pipelined", "acked"] {
            let f = try StoreFixture(kind)
            let store = try f.open()
            defer { store.close() }
            let threads = 8
            let total = mode == "pipelined" ? 50_000 : 8_000
            let perThread = total / threads
            let failures = Locked(0)
            let start = Date()
            concurrently(threads) { t in
                let group = DispatchGroup()
                for i in 0..<perThread {
                    let w = StoreWrite(events: [event("bench\(t % 4)", data: "{\"t\":\(t),\"i\":\(i)}")])
                    if mode == "pipelined" {
                        group.enter()
                        store.write(w) { r in
                            if case .failure = r { failures.withLock { $0 += 1 } }
                            group.leave()
                        }
                    } else if (try? store.sync({ store.write(w, completion: $0) })) == nil {
                        failures.withLock { $0 += 1 }
                    }
                }
                group.wait()
            }
            let seconds = Date().timeIntervalSince(start)
            #expect(failures.get == 0)
            var stored: Int64 = 0
            for topic in 0..<4 { stored += try store.sync { store.head(topic: "bench\(topic)", completion: $0) } }
            #expect(stored == Int64(total))
            print(
                "store throughput [\(kind.rawValue), \(mode)]: \(total) events from \(threads) threads in "
                    + String(format: "%.2f s = %.0f events/s", seconds, Double(total) / seconds))
        }
    }
}
