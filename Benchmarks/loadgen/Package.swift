// swift-tools-version:6.1
// loadgen: Medic's benchmark load generator — one epoll thread driving thousands of WebSocket clients.
import PackageDescription

let package = Package(
    name: "loadgen",
    products: [.executable(name: "loadgen", targets: ["loadgen"])],
    targets: [
        // The only place C headers are seen: epoll, sockets, clocks, /proc readers.
        // zlib (Debian zlib1g-dev) only to read permessage-deflate messages in `--deflate` runs.
        .target(name: "CLoadgen", linkerSettings: [.linkedLibrary("z")]),
        .executableTarget(
            name: "loadgen", dependencies: ["CLoadgen"],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"),
                .enableUpcomingFeature("MemberImportVisibility"),
                .enableUpcomingFeature("InternalImportsByDefault"),
                .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
            ]),
        .testTarget(name: "loadgenTests", dependencies: ["loadgen"]),
    ]
)
