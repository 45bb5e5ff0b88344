// FileChange: one file operation of a patch (create, modify or delete a repository-relative path).
public import Protocol

extension FileChange {
    /// The pipeline's name for what happens to the file.
    public typealias Action = ChangeAction

    /// Wire form `{path, action, content?}` (contract: revision.changes, fix_generated.changes).
    public var json: JSONValue {
        var o: JSONObject = ["path": .string(path), "action": .string(action.rawValue)]
        if let content { o["content"] = .string(content) }
        return .object(o)
    }
}

extension FileChange {
    /// Applies `fix` on top of `base` (both relative to the same repository snapshot) and returns the combined patch,
    /// so every revision is a full patch against the repository. Rules, by what `base` did to the path:
    /// created then deleted → no change at all; created then modified → still a create with the new content;
    /// deleted then created/modified → a modify of the original file; otherwise the later change wins.
    public static func merge(base: [FileChange], fix: [FileChange]) -> [FileChange] {
        var order: [String] = base.map(\.path)
        var byPath: [String: FileChange] = [:]
        for change in base { byPath[change.path] = change }
        for change in fix {
            guard let earlier = byPath[change.path] else {
                byPath[change.path] = change
                order.append(change.path)
                continue
            }
            switch (earlier.action, change.action) {
            case (.create, .delete): byPath[change.path] = nil
            case (.create, .create), (.create, .modify):
                byPath[change.path] = FileChange(path: change.path, action: .create, content: change.content)
            case (.delete, .create), (.delete, .modify):
                byPath[change.path] = FileChange(path: change.path, action: .modify, content: change.content)
            case (.modify, _), (.delete, .delete):
                byPath[change.path] = change
            }
        }
        var seen = Set<String>()
        return order.compactMap { path in
            guard seen.insert(path).inserted else { return nil }
            return byPath[path]
        }
    }
}
