// swift-tools-version:6.1
// nio-peer: the SwiftNIO reference server for Medic's benchmarks — WebSocket echo and trivial pub/sub on one loop.
import PackageDescription

let package = Package(
    name: "nio-peer",
    products: [.executable(name: "nio-peer", targets: ["nio-peer"])],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2")
    ],
    targets: [
        .executableTarget(
            name: "nio-peer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")])
    ]
)
