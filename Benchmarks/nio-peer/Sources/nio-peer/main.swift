// nio-peer: a SwiftNIO WebSocket server on one event loop — "pub:<payload>" goes to every other client,
// anything else is echoed. The same load generator drives it and Medic in one run, so results are ratios.
//
//   nio-peer [--port 9002]
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// Every open WebSocket connection, touched only on the one event loop (hence `@unchecked Sendable`).
final class Registry: @unchecked Sendable {
    fileprivate var members: [PubSubHandler] = []
    /// Members written to during the current read burst; flushed once at `channelReadComplete` (the NIO idiom:
    /// write per message, flush per read), so a burst of published messages costs one syscall per member.
    fileprivate var unflushed: [PubSubHandler] = []
}

/// One connection: relays `pub:` messages to all other members, echoes the rest, answers pings.
final class PubSubHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let registry: Registry
    fileprivate var context: ChannelHandlerContext?
    fileprivate var position = -1
    fileprivate var needsFlush = false
    private static let prefix = Array("pub:".utf8)

    init(registry: Registry) {
        self.registry = registry
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        position = registry.members.count
        registry.members.append(self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        leave()
    }

    func channelInactive(context: ChannelHandlerContext) {
        leave()
        context.fireChannelInactive()
    }

    /// Swap-remove from the registry in O(1).
    private func leave() {
        guard position >= 0 else { return }
        let last = registry.members.removeLast()
        if last !== self {
            registry.members[position] = last
            last.position = position
        }
        position = -1
        context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            var payload = frame.unmaskedData
            let isPub = payload.readableBytes >= 4 && payload.readableBytesView.prefix(4).elementsEqual(Self.prefix)
            if frame.opcode == .text && isPub {
                payload.moveReaderIndex(forwardBy: 4)
                let out = WebSocketFrame(fin: true, opcode: .text, data: payload)
                for member in registry.members where member !== self {
                    guard let memberContext = member.context else { continue }
                    memberContext.write(member.wrapOutboundOut(out), promise: nil)
                    if !member.needsFlush {
                        member.needsFlush = true
                        registry.unflushed.append(member)
                    }
                }
            } else {
                context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: frame.opcode, data: payload)), promise: nil)
                if !needsFlush {
                    needsFlush = true
                    registry.unflushed.append(self)
                }
            }
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            context.close(promise: nil)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        let members = registry.unflushed
        registry.unflushed.removeAll(keepingCapacity: true)
        for member in members {
            member.needsFlush = false
            member.context?.flush()
        }
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

var port = 9002
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    if argument == "--port", let value = arguments.popFirst(), let n = Int(value) { port = n }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let registry = Registry()
let upgrader = NIOWebSocketServerUpgrader(
    maxFrameSize: 1 << 20,
    shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
    upgradePipelineHandler: { channel, _ in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(PubSubHandler(registry: registry))
        }
    })

let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelOption(.maxMessagesPerRead, value: 16)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
        }
    }

let channel = try bootstrap.bind(host: "127.0.0.1", port: port).wait()
print("nio-peer listening on ws://127.0.0.1:\(channel.localAddress?.port ?? port)")
try channel.closeFuture.wait()
