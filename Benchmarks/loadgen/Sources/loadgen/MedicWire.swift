// MedicWire: the few medic.v1 messages the load generator sends, and a byte-level look at what it receives.

/// medic.v1 (protocol/README.md) without a JSON decoder: the load generator only needs the message type,
/// the ack's `proposal`, and the payload marker inside event text.
enum MedicWire {
    enum Kind { case welcome, ack, error, event, presence, other }

    static func kind(of message: UnsafeRawBufferPointer) -> Kind {
        if Bytes.contains(message, "\"type\":\"event\"") { return .event }
        if Bytes.contains(message, "\"type\":\"ack\"") { return .ack }
        if Bytes.contains(message, "\"type\":\"presence\"") { return .presence }
        if Bytes.contains(message, "\"type\":\"welcome\"") { return .welcome }
        if Bytes.contains(message, "\"type\":\"error\"") { return .error }
        return .other
    }

    static func text(_ message: UnsafeRawBufferPointer, limit: Int = 300) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: message.prefix(limit)), as: UTF8.self)
    }

    /// `subscribe` (since omitted = live only).
    static func subscribe(topic: String, since: Int?) -> String {
        if let since { return "{\"type\":\"subscribe\",\"topic\":\"\(topic)\",\"since\":\(since)}" }
        return "{\"type\":\"subscribe\",\"topic\":\"\(topic)\"}"
    }

    /// `propose` of a one-file change; `repo` names the target repository when the server has several.
    static func propose(id: String, repo: String?, content: String = "x") -> String {
        let repoField = repo.map { ",\"repo\":\"\($0)\"" } ?? ""
        return "{\"type\":\"propose\",\"id\":\"\(id)\",\"title\":\"bench\",\"description\":\"benchmark run\"\(repoField),"
            + "\"changes\":[{\"path\":\"bench-\(id).txt\",\"action\":\"create\",\"content\":\"\(content)\"}]}"
    }
}
