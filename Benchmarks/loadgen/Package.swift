// swift-tools-version:6.1
// loadgen: Medic's benchmark load generator — one epoll thread driving thousands of WebSocket clients.
import PackageDescription

let package = Package(
    name: "loadgen",
    products: [.executable(name: "loadgen", targets: ["loadgen"])],
    targets: [
        // The only place C headers are seen: epoll, sockets, clocks, /proc readers.
        .target(name: "CLoadgen"),
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
