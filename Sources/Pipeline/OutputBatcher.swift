// OutputBatcher: how a run's output lines become `test_output` events — at most 64 KiB of lines per event (a
// tick's batch can be large, and every watcher parses each event), never splitting a line, every line in
// exactly one event, in order.

public enum OutputBatcher {
    /// Bytes of line text one `test_output` event carries at most (a single longer line goes alone).
    public static let maxEventBytes = 64 << 10

    /// The lines cut into consecutive batches of at most `maxBytes` (by UTF-8 length).
    public static func batches(_ lines: [String], maxBytes: Int = maxEventBytes) -> [ArraySlice<String>] {
        var out: [ArraySlice<String>] = []
        var start = 0
        while start < lines.count {
            var end = start
            var bytes = 0
            while end < lines.count && (end == start || bytes + lines[end].utf8.count <= maxBytes) {
                bytes += lines[end].utf8.count
                end += 1
            }
            out.append(lines[start..<end])
            start = end
        }
        return out
    }
}
