// Report: readings of the server process and of the load generator, and the one-line RESULT format.
import CLoadgen

/// CPU of the server (from /proc/PID/stat utime+stime) and of this process (getrusage), and the clock.
struct Probe {
    var serverCPU: Int64
    var serverSys: Int64
    var serverWrites: Int64
    var selfCPU: Int64
    var time: UInt64

    static func take(pid: Int32, also: [Int32] = []) -> Probe {
        let pids = ([pid] + also).filter { $0 > 0 }
        return Probe(
            serverCPU: pids.reduce(0) { $0 + lg_proc_cpu_us($1) }, serverSys: pids.reduce(0) { $0 + lg_proc_sys_us($1) },
            serverWrites: pids.reduce(0) { $0 + lg_proc_write_calls($1) }, selfCPU: lg_self_cpu_us(), time: lg_now_ns())
    }
}

/// The measured figures of one scenario, printed as `RESULT key=value …` for Benchmarks/run to tabulate.
struct Report {
    private var fields: [(String, String)] = []

    init(mode: String, label: String) {
        add("mode", mode)
        add("server", label)
    }

    mutating func add(_ key: String, _ value: String) { fields.append((key, value)) }
    mutating func add(_ key: String, _ value: Int) { add(key, String(value)) }
    mutating func add(_ key: String, _ value: Double, digits: Int = 2) { add(key, format(value, digits: digits)) }

    /// CPU per unit of work for the server and for the load generator over [start, end].
    mutating func addCPU(from start: Probe, to end: Probe, per units: Int, unit: String) {
        let server = Double(end.serverCPU - start.serverCPU)
        let me = Double(end.selfCPU - start.selfCPU)
        let seconds = Double(end.time - start.time) / 1e9
        add("server_cpu_us_per_\(unit)", units > 0 ? server / Double(units) : 0, digits: 3)
        add("loadgen_cpu_us_per_\(unit)", units > 0 ? me / Double(units) : 0, digits: 3)
        add("server_cpu_util", server / 1e6 / max(seconds, 1e-9), digits: 2)
        // The kernel's share of the server's CPU (stime / (utime + stime)): syscalls and TCP on loopback.
        add("server_sys_share", server > 0 ? Double(end.serverSys - start.serverSys) / server : 0, digits: 2)
        // Write-type syscalls per unit: how well the server batches frames into one write per connection.
        let writes = Double(end.serverWrites - start.serverWrites)
        add("server_writes_per_\(unit)", units > 0 ? writes / Double(units) : 0, digits: 3)
        add("loadgen_cpu_util", me / 1e6 / max(seconds, 1e-9), digits: 2)
    }

    mutating func addLatency(_ histogram: Histogram, prefix: String = "") {
        add("\(prefix)p50_us", Int(histogram.percentile(0.50)))
        add("\(prefix)p99_us", Int(histogram.percentile(0.99)))
        add("\(prefix)p999_us", Int(histogram.percentile(0.999)))
        add("\(prefix)max_us", Int(histogram.maximum))
    }

    func print() {
        Swift.print("RESULT " + fields.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
    }
}

/// Fixed-point formatting without Foundation.
func format(_ value: Double, digits: Int) -> String {
    guard value.isFinite else { return "nan" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let whole = Int(scaled / scale)
    let frac = Int(scaled - Double(whole) * scale)
    var text = String(whole)
    if digits > 0 {
        var f = String(frac)
        while f.count < digits { f = "0" + f }
        text += "." + f
    }
    return value < 0 ? "-" + text : text
}
