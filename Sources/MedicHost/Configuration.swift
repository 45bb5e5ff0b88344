// Configuration: Medic's settings — defaults, then the JSON config file, then environment, then flags.
import Foundation

/// One target repository the pipeline deploys proposals into.
public struct RepositoryConfig: Codable, Sendable, Equatable {
    /// Name used in proposals (`repo`); defaults to the folder's name.
    public var name: String
    public var path: String
    public var testCommand: String
    public var setupCommand: String?
    /// Whether the sandbox may use the network (default false).
    public var allowNetwork: Bool
    /// Optional command run in the real repository after apply; its failure rolls the commit back.
    public var postApplyCommand: String?

    public init(name: String? = nil, path: String, testCommand: String, setupCommand: String? = nil, allowNetwork: Bool = false, postApplyCommand: String? = nil) {
        self.path = path
        self.name = name ?? URL(fileURLWithPath: path).lastPathComponent
        self.testCommand = testCommand
        self.setupCommand = setupCommand
        self.allowNetwork = allowNetwork
        self.postApplyCommand = postApplyCommand
    }

    enum CodingKeys: String, CodingKey {
        case name, path
        case testCommand = "test_command"
        case setupCommand = "setup_command"
        case allowNetwork = "allow_network"
        case postApplyCommand = "post_apply_command"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let path = try c.decode(String.self, forKey: .path)
        self.init(
            name: try c.decodeIfPresent(String.self, forKey: .name), path: path,
            testCommand: try c.decode(String.self, forKey: .testCommand),
            setupCommand: try c.decodeIfPresent(String.self, forKey: .setupCommand),
            allowNetwork: try c.decodeIfPresent(Bool.self, forKey: .allowNetwork) ?? false,
            postApplyCommand: try c.decodeIfPresent(String.self, forKey: .postApplyCommand))
    }
}

/// A database asks may read (`sources` in the config file, `--source NAME=URL`): the application's own data,
/// opened read-only by its engine (see QuerySources). Medic's own store is always the source `medic`.
public struct SourceConfig: Codable, Sendable, Equatable {
    /// `[a-z][a-z0-9_]{0,31}`; `medic` is reserved.
    public var name: String
    /// `sqlite:PATH` or `postgres://…` / `postgresql://…`.
    public var url: String
    /// Tables (or views) that may be read; nil: every table of the database.
    public var tables: [String]?
    /// Columns that never come back unmasked (`column` or `table.column`).
    public var sensitiveColumns: [String]
    /// Most rows returned (default 1,000).
    public var maxRows: Int
    /// Deadline of one statement (default 5,000 ms).
    public var timeoutMs: Int

    public init(name: String, url: String, tables: [String]? = nil, sensitiveColumns: [String] = [], maxRows: Int = 1000, timeoutMs: Int = 5000) {
        self.name = name
        self.url = url
        self.tables = tables
        self.sensitiveColumns = sensitiveColumns
        self.maxRows = maxRows
        self.timeoutMs = timeoutMs
    }

    enum CodingKeys: String, CodingKey {
        case name, url, tables
        case sensitiveColumns = "sensitive_columns"
        case maxRows = "max_rows"
        case timeoutMs = "timeout_ms"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            name: try c.decode(String.self, forKey: .name), url: try c.decode(String.self, forKey: .url),
            tables: try c.decodeIfPresent([String].self, forKey: .tables),
            sensitiveColumns: try c.decodeIfPresent([String].self, forKey: .sensitiveColumns) ?? [],
            maxRows: try c.decodeIfPresent(Int.self, forKey: .maxRows) ?? 1000,
            timeoutMs: try c.decodeIfPresent(Int.self, forKey: .timeoutMs) ?? 5000)
    }

    /// "sqlite" or "postgres" (nil: neither form).
    public var kind: String? {
        if url.hasPrefix("sqlite:"), url.count > "sqlite:".count { return "sqlite" }
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") { return "postgres" }
        return nil
    }

    /// The name Medic's own store has as a source.
    public static let medicName = "medic"

    /// Whether `name` may name a source: `[a-z][a-z0-9_]{0,31}`.
    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, (1...32).contains(bytes.count), (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) else { return false }
        return bytes.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "_") }
    }

    /// `--source NAME=URL`.
    public static func parse(flag text: String) throws -> SourceConfig {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
            throw ConfigurationError("--source must be NAME=URL (sqlite:PATH or postgres://…), got '\(text)'")
        }
        return SourceConfig(name: String(text[..<eq]), url: String(text[text.index(after: eq)...]))
    }

    func validate() throws {
        guard Self.isValidName(name) else { throw ConfigurationError("source name '\(name)' must match [a-z][a-z0-9_]{0,31}") }
        guard name != Self.medicName else { throw ConfigurationError("source name 'medic' is reserved for Medic's own store") }
        guard kind != nil else { throw ConfigurationError("source '\(name)': url must be sqlite:PATH or postgres://…") }
        guard (1...100_000).contains(maxRows) else { throw ConfigurationError("source '\(name)': max_rows must be 1…100000, got \(maxRows)") }
        guard (10...600_000).contains(timeoutMs) else { throw ConfigurationError("source '\(name)': timeout_ms must be 10…600000, got \(timeoutMs)") }
        for table in tables ?? [] where table.isEmpty || table.utf8.count > 128 {
            throw ConfigurationError("source '\(name)': table names must be 1…128 bytes")
        }
        for column in sensitiveColumns where column.isEmpty || column.utf8.count > 128 {
            throw ConfigurationError("source '\(name)': sensitive column names must be 1…128 bytes")
        }
    }
}

/// Which LLM writes fixes.
public enum LLMChoice: Sendable, Equatable {
    /// Replies from a scripted conversation file (offline demo and tests).
    case scripted(path: String)
    /// The Anthropic Messages API (key from ANTHROPIC_API_KEY).
    case anthropic
}

/// What happens to a proposal's sandboxes (its workspace copies) once the proposal is finished.
public enum SandboxRetention: String, Sendable, Equatable {
    /// Removed when the proposal reaches applied, apply_failed, rejected, unfixable or rolled_back, and at
    /// startup for proposals already finished (the default).
    case remove
    /// Kept for debugging (they then hold disk until removed by hand).
    case keep
}

/// Everything `medic serve` needs. See config/medic.example.json for the file form.
public struct MedicConfiguration: Sendable {
    public var listen: [String] = ["127.0.0.1:8080"]
    public var tlsListen: [String] = []
    public var tlsCertificate: String?
    public var tlsKey: String?
    public var staticDirectory: String = "web-static"
    public var dataDirectory: String = ".medic"
    /// `sqlite:PATH` or `postgres://…`; default `sqlite:<dataDirectory>/medic.sqlite`.
    public var storeURL: String?
    /// This node's name when several nodes share one PostgreSQL store (`--node-id`; letters, digits, `_`, `-`,
    /// at most 64): its database connections are named `medic:<node>` (and `medic:<node>-listen`). SQLite is one
    /// node only: the name is then ignored, with a warning at startup.
    public var nodeID: String?
    /// Other nodes that were alive on the shared store when this one started (set by `MedicServer`). While there
    /// are any, startup leaves busy proposals, bugs and asks alone — they may be running on those nodes — instead
    /// of marking them interrupted (work leases, which would let a live node take over a dead one's work, are not
    /// built yet: README, "Several nodes").
    public var nodesAliveAtStart: [String] = []
    public var repositories: [RepositoryConfig] = []
    /// Databases asks may read (besides Medic's own store, the source `medic`).
    public var sources: [SourceConfig] = []
    /// The monitor (`monitor` in the config file; see MonitorConfiguration).
    public var monitor = MonitorConfiguration()
    /// How the `medic` source connects to a PostgreSQL store (`medic_source_url`; default the store URL): give it a
    /// role that may read only the `medic_*` views (SECURITY.md, "Sources"). Ignored for a SQLite store.
    public var medicSourceURL: String?
    public var llm: LLMChoice = .scripted(path: "examples/demo-conversation.json")
    public var llmBaseURL: String = "https://api.anthropic.com"
    public var llmModel: String = "claude-sonnet-4-5"
    public var anthropicAPIKey: String?
    public var maxAttempts: Int = 3
    public var quorum: Int = 1
    public var autoFix: Bool = true
    public var testTimeoutSeconds: Int = 300
    /// Seconds one LLM request may take in total (the whole streamed reply); each retry gets as long again.
    public var llmTimeoutSeconds: Int = 180
    /// Browser Origins allowed to open the WebSocket; empty = same origin as the Host header.
    public var allowedOrigins: [String] = []
    /// Seconds a client has to authenticate on the socket.
    public var helloTimeoutSeconds: Int = 10
    /// When true and no admin exists, `serve` creates one and prints a sign-in URL.
    public var bootstrapAdmin: Bool = true
    public var logLevel: String = "info"
    /// Extra read-only paths visible in every sandbox besides `/usr`, `/bin`, `/sbin`, `/lib*` and a few
    /// `/etc` files (e.g. `/opt/swift` for a toolchain installed outside `/usr`).
    public var sandboxReadOnlyPaths: [String] = []
    public var sandboxRetention: SandboxRetention = .remove
    /// Most megabytes (10^6 bytes) one test run's workspace may hold, repository copy included; also the
    /// size of its private `/tmp`. Over it the run is killed and analysed as `disk_quota`.
    public var sandboxDiskQuotaMB: Int = 1024
    /// Seconds a workflow instance (a proposal) stays in memory after its last input when it holds no sandbox,
    /// run or queued input; then it is evicted and loaded from the store again when named (default 300).
    public var instanceIdleSeconds: Int = 300
    /// Fix approaches of one bug that run in sandboxes at once (`max_parallel_sandboxes`; default: the
    /// machine's cores, at least 1).
    public var maxParallelSandboxes: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// permessage-deflate (RFC 7692) with clients that offer it (`deflate: "on"|"off"`, `--deflate`; default on).
    public var deflate: Bool = true
    /// Messages shorter than this go out uncompressed (`deflate_min_bytes`, default 64).
    public var deflateMinBytes: Int = 64
    /// zlib level 1–9 for outgoing messages (`deflate_level`, default 6). Incoming compressed messages are
    /// bounded after inflation by the WebSocket message limit (8 KiB before authentication, then 16 MiB).
    public var deflateLevel: Int = 6
    /// The config file read by `load(file:)`, if any (hidden from sandboxes like the data directory).
    public var configFile: String?

    public init() {}

    /// The effective store URL.
    public var effectiveStoreURL: String { storeURL ?? "sqlite:\(dataDirectory)/medic.sqlite" }

    /// Reads the JSON config file (keys as in config/medic.example.json), on top of the current values.
    public mutating func load(file path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let file = try JSONDecoder().decode(FileForm.self, from: data)
        configFile = path
        if let v = file.listen { listen = v }
        if let v = file.tls_listen { tlsListen = v }
        if let v = file.tls_cert { tlsCertificate = v }
        if let v = file.tls_key { tlsKey = v }
        if let v = file.static_dir { staticDirectory = v }
        if let v = file.data_dir { dataDirectory = v }
        if let v = file.store { storeURL = v }
        if let v = file.repositories { repositories = v }
        if let v = file.sources { sources = v }
        if let v = file.monitor { try monitor.apply(v) }
        if let v = file.medic_source_url { medicSourceURL = v }
        if let v = file.llm { llm = try Self.parseLLM(v) }
        if let v = file.llm_url { llmBaseURL = v }
        if let v = file.max_parallel_sandboxes {
            guard (1...64).contains(v) else { throw ConfigurationError("max_parallel_sandboxes must be 1–64, got \(v)") }
            maxParallelSandboxes = v
        }
        if let v = file.llm_model { llmModel = v }
        if let v = file.max_attempts { maxAttempts = v }
        if let v = file.quorum { quorum = v }
        if let v = file.auto_fix { autoFix = try Self.parseAutoFix(v) }
        if let v = file.test_timeout_seconds { testTimeoutSeconds = v }
        if let v = file.llm_timeout_seconds { llmTimeoutSeconds = v }
        if let v = file.allowed_origins { allowedOrigins = v }
        if let v = file.log_level { logLevel = v }
        if let v = file.sandbox_readonly_paths { sandboxReadOnlyPaths = v }
        if let v = file.sandbox_retention { sandboxRetention = try Self.parseRetention(v) }
        if let v = file.sandbox_disk_quota_mb { sandboxDiskQuotaMB = v }
        if let v = file.instance_idle_seconds { instanceIdleSeconds = v }
        if let v = file.deflate { deflate = try Self.parseOnOff(v, setting: "deflate") }
        if let v = file.deflate_min_bytes { deflateMinBytes = v }
        if let v = file.deflate_level { deflateLevel = v }
        try validate()
    }

    /// Applies MEDIC_* environment overrides and ANTHROPIC_API_KEY.
    public mutating func applyEnvironment(_ env: [String: String]) throws {
        if let v = env["MEDIC_LISTEN"] { listen = v.split(separator: ",").map(String.init) }
        if let v = env["MEDIC_STORE"] { storeURL = v }
        if let v = env["MEDIC_DATA_DIR"] { dataDirectory = v }
        if let v = env["MEDIC_STATIC_DIR"] { staticDirectory = v }
        if let v = env["MEDIC_LLM"] { llm = try Self.parseLLM(v) }
        if let v = env["MEDIC_LLM_URL"] { llmBaseURL = v }
        if let v = env["MEDIC_LLM_MODEL"] { llmModel = v }
        if let v = env["MEDIC_QUORUM"], let n = Int(v) { quorum = n }
        if let v = env["MEDIC_MAX_ATTEMPTS"], let n = Int(v) { maxAttempts = n }
        if let v = env["MEDIC_LOG_LEVEL"] { logLevel = v }
        if let key = env["ANTHROPIC_API_KEY"], !key.isEmpty { anthropicAPIKey = key }
        try validate()
    }

    public static func parseLLM(_ text: String) throws -> LLMChoice {
        if text == "anthropic" { return .anthropic }
        if text.hasPrefix("scripted:") { return .scripted(path: String(text.dropFirst("scripted:".count))) }
        throw ConfigurationError("llm must be 'anthropic' or 'scripted:FILE', got '\(text)'")
    }

    public static func parseRetention(_ text: String) throws -> SandboxRetention {
        guard let retention = SandboxRetention(rawValue: text) else {
            throw ConfigurationError("sandbox_retention must be 'remove' or 'keep', got '\(text)'")
        }
        return retention
    }

    /// Paths no sandbox may see: the data directory (store, sandboxes), the SQLite file, TLS key and
    /// certificate, the config file — absolute, symlinks resolved where they exist.
    public var sandboxHiddenPaths: [String] {
        var paths = [dataDirectory]
        if effectiveStoreURL.hasPrefix("sqlite:") { paths.append(String(effectiveStoreURL.dropFirst("sqlite:".count))) }
        paths += [tlsKey, tlsCertificate, configFile].compactMap { $0 }
        return paths.map(Self.absolute)
    }

    /// `path` made absolute against the working directory, with symlinks of its existing part resolved.
    static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// Whether `inner` is `outer` or lies below it (both absolute).
    static func isWithin(_ inner: String, _ outer: String) -> Bool {
        outer == "/" || inner == outer || inner.hasPrefix(outer + "/")
    }

    /// "on" → true, "off" → false (the `deflate` setting and `--deflate`).
    public static func parseOnOff(_ text: String, setting: String) throws -> Bool {
        switch text {
        case "on": return true
        case "off": return false
        default: throw ConfigurationError("\(setting) must be 'on' or 'off', got '\(text)'")
        }
    }

    public static func parseAutoFix(_ text: String) throws -> Bool {
        switch text {
        case "auto": return true
        case "manual": return false
        default: throw ConfigurationError("auto_fix must be 'auto' or 'manual', got '\(text)'")
        }
    }

    /// Rejects values no server could run with, naming the setting.
    public func validate() throws {
        guard (1...20).contains(maxAttempts) else { throw ConfigurationError("max_attempts must be 1…20, got \(maxAttempts)") }
        guard (1...20).contains(quorum) else { throw ConfigurationError("quorum must be 1…20, got \(quorum)") }
        guard testTimeoutSeconds > 0 else { throw ConfigurationError("test_timeout_seconds must be positive") }
        guard (1...3600).contains(llmTimeoutSeconds) else {
            throw ConfigurationError("llm_timeout_seconds must be 1…3600, got \(llmTimeoutSeconds)")
        }
        guard (tlsCertificate == nil) == (tlsKey == nil) else { throw ConfigurationError("tls_cert and tls_key go together") }
        if !tlsListen.isEmpty && tlsCertificate == nil { throw ConfigurationError("tls_listen needs tls_cert and tls_key") }
        var names = Set<String>()
        for repo in repositories {
            guard names.insert(repo.name).inserted else { throw ConfigurationError("repository name '\(repo.name)' is used twice") }
        }
        var sourceNames = Set<String>()
        for source in sources {
            try source.validate()
            guard sourceNames.insert(source.name).inserted else { throw ConfigurationError("source name '\(source.name)' is used twice") }
        }
        try monitor.validate()
        if let repo = monitor.repo, !repositories.contains(where: { $0.name == repo }) {
            throw ConfigurationError("monitor.repo '\(repo)' is not a configured repository")
        }
        if let url = medicSourceURL, !(url.hasPrefix("postgres://") || url.hasPrefix("postgresql://")) {
            throw ConfigurationError("medic_source_url must be a postgres:// URL (the medic source of a PostgreSQL store)")
        }
        guard sandboxDiskQuotaMB > 0 else { throw ConfigurationError("sandbox_disk_quota_mb must be positive") }
        guard (1...86_400).contains(instanceIdleSeconds) else {
            throw ConfigurationError("instance_idle_seconds must be 1…86400, got \(instanceIdleSeconds)")
        }
        guard deflateMinBytes >= 0 else { throw ConfigurationError("deflate_min_bytes must not be negative") }
        guard (1...9).contains(deflateLevel) else { throw ConfigurationError("deflate_level must be 1…9, got \(deflateLevel)") }
        // A sandbox is a copy of its repository: a repository holding Medic's data, keys or config would hand
        // them to the code under test.
        let hidden = sandboxHiddenPaths
        for repo in repositories {
            let path = Self.absolute(repo.path)
            if let secret = hidden.first(where: { Self.isWithin($0, path) }) {
                throw ConfigurationError("repository '\(repo.name)' (\(path)) contains \(secret), which sandboxes must not see; move the data directory, keys or config out of it")
            }
        }
        for path in sandboxReadOnlyPaths {
            guard path.hasPrefix("/"), !path.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }), path != "/" else {
                throw ConfigurationError("sandbox_readonly_paths: '\(path)' must be an absolute path other than / without . or ..")
            }
            let absolute = Self.absolute(path)
            if let secret = hidden.first(where: { Self.isWithin(absolute, $0) }) {
                throw ConfigurationError("sandbox_readonly_paths: '\(path)' lies inside \(secret), which sandboxes must not see")
            }
        }
    }

    /// The JSON file's form (snake_case keys, all optional).
    private struct FileForm: Decodable {
        var listen: [String]?
        var tls_listen: [String]?
        var tls_cert: String?
        var tls_key: String?
        var static_dir: String?
        var data_dir: String?
        var store: String?
        var repositories: [RepositoryConfig]?
        var sources: [SourceConfig]?
        var monitor: MonitorConfiguration.FileForm?
        var medic_source_url: String?
        var llm: String?
        var llm_url: String?
        var llm_model: String?
        var max_attempts: Int?
        var quorum: Int?
        var auto_fix: String?
        var test_timeout_seconds: Int?
        var llm_timeout_seconds: Int?
        var allowed_origins: [String]?
        var log_level: String?
        var sandbox_readonly_paths: [String]?
        var sandbox_retention: String?
        var sandbox_disk_quota_mb: Int?
        var instance_idle_seconds: Int?
        var max_parallel_sandboxes: Int?
        var deflate: String?
        var deflate_min_bytes: Int?
        var deflate_level: Int?
    }
}

/// A configuration mistake, with the setting named.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
