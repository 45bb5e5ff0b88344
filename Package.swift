// swift-tools-version:6.1
// Medic: a self-healing code pipeline server on our own epoll loop (see ../shared/DESIGN.md).
import PackageDescription

/// Every target gets the same strictness: no implicit existentials, no leaking of C imports.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    // Unsafe escape hatch, release builds only: the runtime's dynamic exclusivity checks on class
    // properties cost ~11 % of the echo path and ~5 % of fan-out (swift_beginAccess and its thread-local
    // access set, in perf; Benchmarks/README). Debug builds — every test run — keep them, so an
    // overlapping access still traps there.
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let log = Target.Dependency.product(name: "Logging", package: "swift-log")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "Medic",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "medic", targets: ["medic"]),
        .executable(name: "medic-echo", targets: ["medic-echo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // C interop: the only place C headers are seen.
        .target(name: "CSystem"),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // OS + loop.
        .target(name: "IOBytes", swiftSettings: strict),
        .target(name: "EventLoop", dependencies: ["CSystem", "IOBytes", log], swiftSettings: strict),

        // Codecs: pure byte transforms.
        .target(name: "HTTP1", swiftSettings: strict),
        .target(name: "WebSocket", dependencies: ["IOBytes", "HTTP1", "CZlib"], swiftSettings: strict),
        .target(name: "TLS", dependencies: ["COpenSSL"], swiftSettings: strict),

        // App core: pure.
        .target(name: "Protocol", swiftSettings: strict),
        .target(name: "Hub", dependencies: ["Protocol", "IOBytes"], swiftSettings: strict),
        .target(name: "Pipeline", dependencies: ["Protocol"], swiftSettings: strict),
        /// The codebase navigator's pure parts: terms, ctags output, imports, stack frames, ranking, file checks.
        .target(name: "Navigator", dependencies: ["Protocol"], swiftSettings: strict),
        /// The monitor's pure parts: log parsing, fingerprints, anomaly detection with an injected clock.
        .target(name: "Monitor", dependencies: ["Protocol"], swiftSettings: strict),

        // Adapters: loop-bound executors.
        .target(
            name: "Server",
            dependencies: ["EventLoop", "HTTP1", "WebSocket", "TLS", "IOBytes", "CSystem", log],
            swiftSettings: strict),
        .target(name: "Store", dependencies: ["CSQLite", "CLibPQ", "COpenSSL", log], swiftSettings: strict),
        .target(name: "HTTPClient", dependencies: ["CCurl", "EventLoop", log], swiftSettings: strict),
        .target(name: "Sandbox", dependencies: ["EventLoop", "CSystem", log], swiftSettings: strict),
        /// Log files followed on the loop (inotify), for the monitor.
        .target(name: "LogTail", dependencies: ["EventLoop"], swiftSettings: strict),
        /// Read-only query sources for plain-language questions: untrusted SQL against SQLite/PostgreSQL, engine-enforced.
        .target(name: "QuerySources", dependencies: ["CSQLite", "CLibPQ", "Protocol"], swiftSettings: strict),

        // Client side on the same loop and codecs: `medic watch` (and the coming `medic ask`, `medic bug`).
        .target(name: "MedicClient", dependencies: ["EventLoop", "TLS", "WebSocket", "Protocol"], swiftSettings: strict),

        // Host: composition only.
        .target(
            name: "MedicHost",
            dependencies: [
                "Server", "Store", "HTTPClient", "Sandbox", "Pipeline", "Navigator", "Hub", "Protocol", "EventLoop", "HTTP1",
                "WebSocket", "IOBytes", "QuerySources", "Monitor", "LogTail", log,
            ],
            swiftSettings: strict),

        // Executables: thin mains.
        .executableTarget(
            name: "medic", dependencies: ["MedicHost", "Monitor", "MedicClient", "EventLoop", "HTTPClient", "Store", "Protocol", "TLS", argumentParser, log],
            swiftSettings: strict),
        .executableTarget(name: "medic-echo", dependencies: ["Server", "EventLoop", argumentParser, log], swiftSettings: strict),
        /// A child process for tests: prints, floods, sleeps or exits as told.
        .executableTarget(name: "medic-test-child", swiftSettings: strict),

        .target(name: "TestSupport", dependencies: ["EventLoop", "IOBytes", "TLS", "COpenSSL", "WebSocket", "HTTP1", "CSystem", "Protocol"], swiftSettings: strict),

        .testTarget(name: "EventLoopTests", dependencies: ["EventLoop", "TestSupport", "CSystem"], swiftSettings: strict),
        .testTarget(name: "HTTP1Tests", dependencies: ["HTTP1"], swiftSettings: strict),
        .testTarget(name: "WebSocketTests", dependencies: ["WebSocket", "IOBytes"], swiftSettings: strict),
        .testTarget(name: "TLSTests", dependencies: ["TLS", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ProtocolTests", dependencies: ["Protocol", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "HubTests", dependencies: ["Hub", "Protocol", "IOBytes"], swiftSettings: strict),
        .testTarget(name: "NavigatorTests", dependencies: ["Navigator"], swiftSettings: strict),
        .testTarget(name: "MonitorTests", dependencies: ["Monitor", "Protocol", "LogTail", "EventLoop", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "QuerySourcesTests", dependencies: ["QuerySources", "Protocol", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "Protocol", "TestSupport"], exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(name: "StoreTests", dependencies: ["Store", "Protocol", "EventLoop", "TestSupport"], swiftSettings: strict),
        /// The proposal workflow driven whole against fake executors: no sockets, no bwrap, no sleeps.
        .testTarget(
            name: "MedicHostTests", dependencies: ["MedicHost", "Pipeline", "Protocol", "Store", "Sandbox", "EventLoop", log],
            swiftSettings: strict),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "MedicHost", "MedicClient", "Server", "EventLoop", "TestSupport", "Store", "HTTPClient", "Sandbox", "Pipeline", "Navigator", "Protocol", "Hub",
                "IOBytes", "WebSocket", "HTTP1", "TLS", "QuerySources",
            ],
            exclude: ["fixtures"],
            swiftSettings: strict),
    ]
)
