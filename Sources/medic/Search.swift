// medic search: ask a running Medic's code navigator (`search_code` over the WebSocket, MedicClient's
// connection on the project's own loop and codecs) and print the results.
import ArgumentParser
import EventLoop
import Foundation
import Logging
import MedicClient
import Protocol
import TLS

struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Search a repository's code through a running Medic.")

    @Argument(help: "Repository name (as configured).") var repo: String
    @Argument(help: "What to look for: a description, bug text with stack traces (--mode locate), or a file path.") var query: String
    @Option(help: "find, locate, related, outline or analyze.") var mode: String = "find"
    @Option(help: "Results wanted (1–100).") var limit: Int = 10
    @Option(help: "Server URL: http(s)://HOST:PORT or ws(s)://HOST:PORT.") var url: String = "http://127.0.0.1:8080"
    @Option(help: "Access token (or MEDIC_TOKEN).") var token: String?
    @Option(help: "CA certificate file to trust for wss/https (default: the system's).") var caFile: String?
    @Flag(help: "Skip TLS certificate verification (testing only).") var insecure = false
    @Flag(help: "Print the answer as JSON.") var json = false

    func run() throws {
        guard let token = token ?? ProcessInfo.processInfo.environment["MEDIC_TOKEN"] else { throw ValidationError("--token or MEDIC_TOKEN is required") }
        guard let endpoint = ClientEndpoint(url: url) else { throw ValidationError("--url must be http(s):// or ws(s)://HOST:PORT") }
        let tls = endpoint.secure ? try TLSContext.client(trustedCAPath: caFile, verifyPeer: !insecure) : nil
        var logger = Logger(label: "medic.search")
        logger.logLevel = .warning
        let loop = try EventLoop(logger: logger)
        let client = WebSocketClient(
            loop: loop, endpoint: endpoint, tls: tls, headers: [("Authorization", "Bearer \(token)")], subprotocols: ["medic.v1"])
        var failure: String?
        var answered = false
        let request = ClientRequest(id: "search", message: .feature(type: "search_code", fields: [
            "repo": .string(repo), "query": .string(query), "mode": .string(mode), "limit": .int(Int64(limit)),
        ]))
        let json = self.json
        client.onText = { text in
            guard let message = try? JSONValue.parse(text) else { return }
            switch message["type"]?.stringValue {
            case "welcome":
                client.send(text: request.encode())
            case "ack" where message["id"] == "search":
                Self.print(message, json: json)
                answered = true
                client.close()
                loop.stop()
            case "error" where message["id"] == "search" || message["id"] == nil:
                answered = true
                failure = "\(message["code"]?.stringValue ?? "error"): \(message["message"]?.stringValue ?? "")"
                client.close()
                loop.stop()
            default:
                break
            }
        }
        client.onClose = { closed in
            if !answered { failure = "connection closed before an answer: \(closed.description)" }
            loop.stop()
        }
        client.connect()
        loop.run()
        if let failure { throw ValidationError(failure) }
    }

    static func print(_ answer: JSONValue, json: Bool) {
        if json {
            Swift.print(answer.jsonString)
            return
        }
        Swift.print("\(answer["repo"]?.stringValue ?? "") at \(answer["commit"]?.stringValue?.prefix(12) ?? "(no commit)"), \(answer["mode"]?.stringValue ?? ""):")
        for hit in answer["results"]?.arrayValue ?? [] {
            let place = (hit["path"]?.stringValue ?? hit["name"]?.stringValue ?? "?") + (hit["line"]?.intValue.map { ":\($0)" } ?? "")
            let detail = hit["why"]?.arrayValue?.compactMap(\.stringValue).joined(separator: ", ")
                ?? hit["edge"]?.stringValue ?? hit["kind"]?.stringValue ?? ""
            Swift.print("  \(place)  \(hit["symbol"]?.stringValue ?? "")  \(detail)")
            for finding in hit["findings"]?.arrayValue ?? [] {
                Swift.print("    \(finding["line"]?.intValue ?? 0) \(finding["severity"]?.stringValue ?? "") \(finding["kind"]?.stringValue ?? ""): \(finding["message"]?.stringValue ?? "")")
            }
        }
    }
}
