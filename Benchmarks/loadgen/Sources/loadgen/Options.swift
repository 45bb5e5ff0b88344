// Options: the load generator's command line (`--key value` pairs; see main.swift for the list).

/// Parsed command line with defaults sized for a short run on a 2-core machine.
struct Options {
    var mode = "echo"
    var port: UInt16 = 9001
    var serverPID: Int32 = 0
    /// Other nodes' ports (subscribers round-robin over `port` and these) and pids (their CPU added to the server's).
    var spread: [UInt16] = []
    var alsoPIDs: [Int32] = []

    /// The port subscriber `index` connects to.
    func subscriberPort(_ index: Int) -> UInt16 {
        let ports = [port] + spread
        return ports[index % ports.count]
    }
    /// `plain` (medic-echo, the NIO peer: any path, no subprotocol) or `medic` (`/ws`, medic.v1, bearer token).
    var target = "plain"
    var token: String?
    var label = "server"
    var subscribers = 1000
    var window = 16
    /// Messages per second for rate-driven fan-out; 0 means window-driven.
    var rate = 0.0
    var duration = 5.0
    var connections = 100
    var concurrency = 64
    var payload = 100
    var lines = 100_000
    var repo: String?
    /// Seconds allowed for setting up connections before the scenario gives up.
    var setupTimeout = 60.0
    /// Offer permessage-deflate (RFC 7692) in the upgrade, as browsers do (`--deflate`); compressed messages
    /// are inflated (zlib) before they are read.
    var deflate = false

    init(arguments: [String]) throws(UsageError) {
        var i = 0
        func value() throws(UsageError) -> String {
            i += 1
            guard i < arguments.count else { throw UsageError(text: "\(arguments[i - 1]) needs a value") }
            return arguments[i]
        }
        func number<T: LosslessStringConvertible>(_ type: T.Type) throws(UsageError) -> T {
            let text = try value()
            guard let n = T(text) else { throw UsageError(text: "\(arguments[i - 1]): not a number: \(text)") }
            return n
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--mode": mode = try value()
            case "--port": port = try number(UInt16.self)
            case "--spread":
                // More nodes of one cluster: subscribers are spread round-robin over --port and these.
                let parts = try value().split(separator: ",")
                spread = parts.compactMap { UInt16($0) }
                guard spread.count == parts.count else { throw UsageError(text: "--spread takes ports separated by commas") }
            case "--also-pids":
                // More server processes (the other nodes) whose CPU counts as the server's.
                let parts = try value().split(separator: ",")
                alsoPIDs = parts.compactMap { Int32($0) }
                guard alsoPIDs.count == parts.count else { throw UsageError(text: "--also-pids takes pids separated by commas") }
            case "--server-pid": serverPID = try number(Int32.self)
            case "--target": target = try value()
            case "--token": token = try value()
            case "--label": label = try value()
            case "--subscribers": subscribers = try number(Int.self)
            case "--window": window = try number(Int.self)
            case "--rate": rate = try number(Double.self)
            case "--duration": duration = try number(Double.self)
            case "--connections": connections = try number(Int.self)
            case "--concurrency": concurrency = try number(Int.self)
            case "--payload": payload = max(Payload.headerLength, try number(Int.self))
            case "--lines": lines = try number(Int.self)
            case "--repo": repo = try value()
            case "--setup-timeout": setupTimeout = try number(Double.self)
            case "--deflate": deflate = true
            default: throw UsageError(text: "unknown option \(arguments[i])")
            }
            i += 1
        }
        guard ["plain", "medic"].contains(target) else { throw UsageError(text: "--target is plain or medic") }
        if target == "medic" && token == nil { throw UsageError(text: "--target medic needs --token") }
    }

    var isMedic: Bool { target == "medic" }

    var serverTarget: Target {
        isMedic
            ? Target(port: port, path: "/ws", subprotocol: "medic.v1", bearer: token, offersDeflate: deflate)
            : Target(port: port, path: "/", subprotocol: nil, bearer: nil, offersDeflate: deflate)
    }
}

/// A command-line mistake.
struct UsageError: Error {
    var text: String
}
