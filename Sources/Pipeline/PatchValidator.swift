// PatchValidator: refuses patches whose paths could leave the repository or whose sizes are unbounded (DESIGN invariant 6).
public import Protocol

/// Bounds on one patch. Every limit has a documented default.
public struct PatchLimits: Sendable, Hashable {
    /// Most files in one patch (default `ProtocolLimits.defaultMaxChanges`, 100: the wire limit).
    public var maxFiles: Int
    /// Largest content of one file in UTF-8 bytes (default 1 MiB).
    public var maxFileBytes: Int
    /// Largest sum of all contents in UTF-8 bytes (default 8 MiB).
    public var maxTotalBytes: Int
    /// Longest path in UTF-8 bytes (default 1024; Linux PATH_MAX is 4096, repositories rarely need a quarter).
    public var maxPathBytes: Int

    public init(maxFiles: Int = ProtocolLimits.defaultMaxChanges, maxFileBytes: Int = 1 << 20, maxTotalBytes: Int = 8 << 20, maxPathBytes: Int = 1024) {
        self.maxFiles = maxFiles
        self.maxFileBytes = maxFileBytes
        self.maxTotalBytes = maxTotalBytes
        self.maxPathBytes = maxPathBytes
    }
}

/// Why a patch was refused. `description` names the offending path.
public struct PatchError: Error, Sendable, Hashable, CustomStringConvertible {
    fileprivate enum Kind: Sendable, Hashable {
        case empty
        case tooManyFiles(count: Int, limit: Int)
        case emptyPath
        case absolutePath
        case parentSegment
        case emptySegment
        case dotSegment
        case controlCharacter
        case backslash
        case gitDirectory
        case pathTooLong(limit: Int)
        case duplicatePath
        case missingContent(FileChange.Action)
        case contentOnDelete
        case fileTooLarge(bytes: Int, limit: Int)
        case totalTooLarge(bytes: Int, limit: Int)
    }

    fileprivate let kind: Kind
    /// The path the error is about (empty for whole-patch errors).
    public let path: String

    fileprivate init(_ kind: Kind, path: String = "") {
        self.kind = kind
        self.path = path
    }

    public var description: String {
        switch kind {
        case .empty: "the patch changes no files"
        case .tooManyFiles(let count, let limit): "the patch changes \(count) files; at most \(limit) are allowed"
        case .emptyPath: "a change has an empty path"
        case .absolutePath: "path \"\(path)\" is absolute; paths must be relative to the repository root"
        case .parentSegment: "path \"\(path)\" contains a '..' segment that could leave the repository"
        case .emptySegment: "path \"\(path)\" contains an empty segment ('//' or a trailing '/')"
        case .dotSegment: "path \"\(path)\" contains a '.' segment; write the path without it"
        case .controlCharacter: "path \"\(printable)\" contains a NUL or control character"
        case .backslash: "path \"\(path)\" contains a backslash; use '/' as the separator"
        case .gitDirectory: "path \"\(path)\" is inside a .git directory, which patches may not touch"
        case .pathTooLong(let limit): "path \"\(path.prefix(64))…\" is longer than \(limit) bytes"
        case .duplicatePath: "path \"\(path)\" appears more than once in the patch"
        case .missingContent(let action): "\(action.rawValue) of \"\(path)\" has no content"
        case .contentOnDelete: "delete of \"\(path)\" must not carry content"
        case .fileTooLarge(let bytes, let limit): "content of \"\(path)\" is \(bytes) bytes; the limit is \(limit)"
        case .totalTooLarge(let bytes, let limit): "the patch's contents total \(bytes) bytes; the limit is \(limit)"
        }
    }

    /// The path with control characters shown as escapes, so the message itself stays printable.
    private var printable: String {
        String(path.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined())
    }

    fileprivate static func make(_ kind: Kind, path: String = "") -> PatchError { PatchError(kind, path: path) }
}

/// Validates patches from untrusted sources (LLM replies, propose commands). Symlink escapes cannot be seen
/// from path text; the sandbox executor checks them on disk.
public enum PatchValidator {
    /// Returns the changes unchanged if every rule holds, else the first violation.
    public static func validate(_ changes: [FileChange], limits: PatchLimits = PatchLimits()) -> Result<[FileChange], PatchError> {
        guard !changes.isEmpty else { return .failure(.make(.empty)) }
        guard changes.count <= limits.maxFiles else {
            return .failure(.make(.tooManyFiles(count: changes.count, limit: limits.maxFiles)))
        }
        var seen = Set<String>()
        var total = 0
        for change in changes {
            if let error = pathError(change.path, limits: limits) { return .failure(error) }
            guard seen.insert(change.path).inserted else { return .failure(.make(.duplicatePath, path: change.path)) }
            switch change.action {
            case .create, .modify:
                guard let content = change.content else {
                    return .failure(.make(.missingContent(change.action), path: change.path))
                }
                let size = content.utf8.count
                guard size <= limits.maxFileBytes else {
                    return .failure(.make(.fileTooLarge(bytes: size, limit: limits.maxFileBytes), path: change.path))
                }
                total += size
                guard total <= limits.maxTotalBytes else {
                    return .failure(.make(.totalTooLarge(bytes: total, limit: limits.maxTotalBytes)))
                }
            case .delete:
                guard change.content == nil else { return .failure(.make(.contentOnDelete, path: change.path)) }
            }
        }
        return .success(changes)
    }

    /// Checks one path; nil when it is a clean repository-relative path.
    public static func pathError(_ path: String, limits: PatchLimits = PatchLimits()) -> PatchError? {
        guard !path.isEmpty else { return .make(.emptyPath) }
        guard path.utf8.count <= limits.maxPathBytes else { return .make(.pathTooLong(limit: limits.maxPathBytes), path: path) }
        if path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return .make(.controlCharacter, path: path)
        }
        if path.contains("\\") { return .make(.backslash, path: path) }
        if path.hasPrefix("/") || path.hasPrefix("~") { return .make(.absolutePath, path: path) }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        for segment in segments {
            if segment.isEmpty { return .make(.emptySegment, path: path) }
            if segment == ".." { return .make(.parentSegment, path: path) }
            if segment == "." { return .make(.dotSegment, path: path) }
            // Case-insensitive: on case-insensitive filesystems ".GIT" is the same directory.
            if segment.lowercased() == ".git" { return .make(.gitDirectory, path: path) }
        }
        return nil
    }
}
