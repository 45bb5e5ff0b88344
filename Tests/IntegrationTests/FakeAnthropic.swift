// FakeAnthropic: the loopback fake of the Anthropic Messages API (fixtures/fake_anthropic.py) as a child process.
import Foundation
import Glibc
import Protocol
import TestSupport

/// fixtures/fake_anthropic.py as a child process on a free loopback port (used by HTTPClientTests and
/// LLMEndToEndTests). Tests queue the
/// answers its /v1/messages gives (`script`) and read back every request it received (`requests`).
final class FakeAnthropic {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    let port: UInt16

    init() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("fixtures/fake_anthropic.py")
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path]
        process.standardInput = input  // the server exits when this closes
        process.standardOutput = output
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let more = output.fileHandleForReading.availableData
            if more.isEmpty { break }  // EOF: the script died before printing its port
            line.append(more)
        }
        guard let port = UInt16(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            Self.kill(process)
            throw TestClientError("fake_anthropic.py printed no port: \(String(decoding: line, as: UTF8.self))")
        }
        self.port = port
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    func url(_ path: String) -> String { baseURL + path }

    /// Appends answers to the queue that /v1/messages serves in order (see the fixture's docstring for the forms).
    func script(_ entries: [JSONValue]) throws {
        _ = try call("POST", "/control/script", body: .array(entries))
    }

    /// Adds content-matched answers, used once the queue is empty: a request gets `entry` of the first route whose
    /// `system` is a substring of its system prompt and whose `user` is a substring of its messages' text (nil:
    /// any). Routes are not consumed, so parallel work gets its answers in whatever order it asks.
    func route(_ routes: [(system: String?, user: String?, entry: JSONValue)]) throws {
        let list: [JSONValue] = routes.map { route in
            var object: JSONObject = ["entry": route.entry]
            if let system = route.system { object["system"] = .string(system) }
            if let user = route.user { object["user"] = .string(user) }
            return .object(object)
        }
        _ = try call("POST", "/control/routes", body: .array(list))
    }

    /// Drops the answers not served yet.
    func clearScript() throws {
        _ = try call("DELETE", "/control/script", body: nil)
    }

    /// Every /v1/messages request received so far: `{"time", "headers", "body"}`, oldest first.
    func requests() throws -> [JSONValue] {
        try call("GET", "/control/requests", body: nil).arrayValue ?? []
    }

    func stop() {
        Self.kill(process)
        try? input.fileHandleForWriting.close()
        _ = waitForExit(process)
    }

    /// SIGKILL, not `terminate()`'s SIGTERM: a child inherits the spawning thread's signal mask, and a test
    /// thread that ran an EventLoop has SIGTERM blocked (the loop takes it through signalfd) — the script then
    /// never sees SIGTERM and `waitUntilExit` waits forever (seen: the whole suite hung in `stop`).
    static func kill(_ process: Process) {
        if process.isRunning { _ = Glibc.kill(process.processIdentifier, SIGKILL) }
    }

    private func call(_ method: String, _ path: String, body: JSONValue?) throws -> JSONValue {
        let client = try TestClient(port: port, timeoutSeconds: 10)
        let payload = body.map { Array($0.jsonString.utf8) } ?? []
        let head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(payload.count)\r\nConnection: close\r\n\r\n"
        try client.write(Array(head.utf8) + payload)
        let response = try client.readHTTPResponse()
        guard response.head.hasPrefix("HTTP/1.1 200") else { throw TestClientError("fake answered \(response.head)") }
        return try JSONValue.parse(response.body, limits: JSONParseLimits(maxBytes: 16 << 20))
    }
}
