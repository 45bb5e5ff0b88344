// Driver: one epoll loop owning every client socket — connect, HTTP upgrade, RFC 6455 client framing.
import CLoadgen
import Glibc

/// What a mode does with its clients' events. All calls happen on the driver's one thread.
protocol ClientHandler: AnyObject {
    /// The server answered the upgrade with 101 (RFC 6455 §4.1).
    func opened(_ client: Client, driver: Driver)
    /// One complete text or binary message (fragments already joined).
    func message(_ client: Client, _ payload: UnsafeRawBufferPointer, now: UInt64, driver: Driver)
    /// The server or the network ended the connection (not called for closes the mode asked for).
    func closed(_ client: Client, driver: Driver, reason: String)
}

/// One client connection. Mode-specific fields (`role`, `index`, `state`, counters) are free for the mode.
final class Client {
    enum Phase { case connecting, upgrading, open, closed }

    let slot: Int
    let token: UInt64
    let fd: Int32
    var phase: Phase = .connecting
    /// Received bytes not yet forming a whole frame (or, while upgrading, the response head so far).
    var inbound: [UInt8] = []
    /// Framed bytes the socket has not accepted yet.
    var outbound: [UInt8] = []
    /// A fragmented message being reassembled (RFC 6455 §5.4).
    var fragments: [UInt8] = []
    var writeArmed = false
    var dirty = false
    var role = 0
    var index = 0
    var state = 0
    var received = 0
    var sent = 0
    var bytes = 0
    var startedAt: UInt64 = 0

    init(slot: Int, token: UInt64, fd: Int32) {
        self.slot = slot
        self.token = token
        self.fd = fd
    }
}

/// The server side of a run: where to connect and how to upgrade.
struct Target {
    var port: UInt16
    var path: String
    var subprotocol: String?
    var bearer: String?
    /// Adds the extension offer Chromium sends.
    var offersDeflate = false

    /// The upgrade request, identical for every client (the key is RFC 6455 §1.3's sample: servers do not
    /// check it, and the answer's `Sec-WebSocket-Accept` is not needed by a load generator).
    var upgradeRequest: [UInt8] {
        var head = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        head += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        if let subprotocol { head += "Sec-WebSocket-Protocol: \(subprotocol)\r\n" }
        if let bearer { head += "Authorization: Bearer \(bearer)\r\n" }
        if offersDeflate { head += "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" }
        return Array((head + "\r\n").utf8)
    }
}

/// The event loop. Level-triggered epoll; writes are queued per client and flushed at the end of each tick
/// (one `send` per client per tick); `EPOLLOUT` is armed only after a short write.
final class Driver {
    let target: Target
    let request: [UInt8]
    unowned(unsafe) var handler: (any ClientHandler)!
    private let epfd: Int32
    private var clients: [Client?] = []
    private var freeSlots: [Int] = []
    private var nextToken: UInt64 = 1
    private var dirtyList: [Client] = []
    private let readBuffer: UnsafeMutableRawBufferPointer
    /// Where a compressed message (RSV1, permessage-deflate) is inflated before the handler sees it.
    private let inflateBuffer: UnsafeMutableRawBufferPointer
    private var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
    private var eventData = [UInt64](repeating: 0, count: 1024)
    private var eventMask = [UInt32](repeating: 0, count: 1024)
    /// Connections not closed yet (connecting, upgrading or open).
    private(set) var live = 0
    /// Connections still connecting or upgrading.
    private(set) var pending = 0
    private(set) var connectFailures = 0
    private(set) var upgradeFailures = 0
    private(set) var remoteCloses = 0
    private var reported = 0

    init(target: Target) {
        self.target = target
        self.request = target.upgradeRequest
        self.epfd = lg_epoll_create()
        precondition(epfd >= 0, "epoll_create1: \(String(cString: lg_last_error()))")
        self.readBuffer = .allocate(byteCount: 256 * 1024, alignment: 16)
        self.inflateBuffer = .allocate(byteCount: 4 << 20, alignment: 16)
    }

    deinit {
        Glibc.close(epfd)
        readBuffer.deallocate()
        inflateBuffer.deallocate()
    }

    /// Prints the first few problems only, so a failing run does not flood the terminal.
    func problem(_ text: String) {
        reported += 1
        if reported <= 5 { print("loadgen: \(text)") }
    }

    /// Starts a non-blocking connect; the handler hears `opened` after the 101.
    @discardableResult
    func connect(role: Int = 0, index: Int = 0, port: UInt16? = nil) -> Client? {
        let fd = lg_connect_loopback(port ?? target.port)
        guard fd >= 0 else {
            connectFailures += 1
            problem("connect: \(String(cString: lg_last_error()))")
            return nil
        }
        let slot = freeSlots.popLast() ?? { clients.append(nil); return clients.count - 1 }()
        let client = Client(slot: slot, token: nextToken, fd: fd)
        nextToken += 1
        client.role = role
        client.index = index
        client.startedAt = lg_now_ns()
        clients[slot] = client
        live += 1
        pending += 1
        _ = lg_epoll_ctl(epfd, Int32(LG_CTL_ADD), fd, UInt32(LG_EPOLLOUT), UInt64(slot) | client.token << 24)
        return client
    }

    /// Queues one masked text frame (RFC 6455 §5.2, §5.3); sent at the end of the tick.
    func sendText(_ client: Client, _ payload: UnsafeRawBufferPointer) {
        sendFrame(client, opcode: 0x1, payload)
    }

    func sendText(_ client: Client, _ payload: [UInt8]) {
        payload.withUnsafeBytes { sendText(client, $0) }
    }

    func sendText(_ client: Client, _ text: String) {
        sendText(client, Array(text.utf8))
    }

    private func sendFrame(_ client: Client, opcode: UInt8, _ payload: UnsafeRawBufferPointer) {
        guard client.phase != .closed else { return }
        let len = payload.count
        client.outbound.append(0x80 | opcode)
        if len < 126 {
            client.outbound.append(0x80 | UInt8(len))
        } else if len < 65536 {
            client.outbound.append(0x80 | 126)
            client.outbound.append(UInt8(len >> 8))
            client.outbound.append(UInt8(len & 0xff))
        } else {
            client.outbound.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { client.outbound.append(UInt8((len >> shift) & 0xff)) }
        }
        // A fresh masking key per frame (§5.3), from a cheap xorshift: it only has to vary, not be secret here.
        rng ^= rng << 13
        rng ^= rng >> 7
        rng ^= rng << 17
        let key = UInt32(truncatingIfNeeded: rng)
        let k0 = UInt8(key & 0xff), k1 = UInt8((key >> 8) & 0xff), k2 = UInt8((key >> 16) & 0xff), k3 = UInt8(key >> 24)
        client.outbound.append(contentsOf: [k0, k1, k2, k3])
        let start = client.outbound.count
        client.outbound.append(contentsOf: payload)
        client.outbound.withUnsafeMutableBufferPointer { out in
            let mask = (k0, k1, k2, k3)
            for i in 0..<len {
                switch i & 3 {
                case 0: out[start + i] ^= mask.0
                case 1: out[start + i] ^= mask.1
                case 2: out[start + i] ^= mask.2
                default: out[start + i] ^= mask.3
                }
            }
        }
        markDirty(client)
    }

    private func markDirty(_ client: Client) {
        if !client.dirty {
            client.dirty = true
            dirtyList.append(client)
        }
    }

    /// Closes a client at the mode's request. `reset` sends an RST so this side keeps no TIME_WAIT.
    func close(_ client: Client, reset: Bool = false) {
        guard client.phase != .closed else { return }
        if client.phase != .open { pending -= 1 }
        client.phase = .closed
        if reset { lg_close_rst(client.fd) } else { Glibc.close(client.fd) }
        clients[client.slot] = nil
        freeSlots.append(client.slot)
        live -= 1
    }

    private func fail(_ client: Client, _ reason: String) {
        guard client.phase != .closed else { return }
        remoteCloses += 1
        close(client)
        handler.closed(client, driver: self, reason: reason)
    }

    /// Closes every live client (end of a scenario).
    func closeAll(reset: Bool = true) {
        for case let client? in clients { close(client, reset: reset) }
    }

    /// Runs ticks until `done()` holds or `seconds` pass; `tick(now)` runs first in every tick and returns the
    /// milliseconds it wants to wait at most (-1: no wish). Returns whether `done()` was reached.
    @discardableResult
    func run(seconds: Double, tick: ((UInt64) -> Int)? = nil, until done: () -> Bool) -> Bool {
        let deadline = lg_now_ns() + UInt64(seconds * 1e9)
        while true {
            let now = lg_now_ns()
            let wish = tick?(now) ?? -1
            flushDirty()
            if done() { return true }
            if now >= deadline { return false }
            var wait = Int((deadline - now) / 1_000_000) + 1
            if wish >= 0 { wait = min(wait, wish) }
            let n = eventData.withUnsafeMutableBufferPointer { data in
                eventMask.withUnsafeMutableBufferPointer { mask in
                    Int(lg_epoll_wait(epfd, data.baseAddress, mask.baseAddress, 1024, Int32(min(wait, 1000))))
                }
            }
            let after = lg_now_ns()
            for i in 0..<max(n, 0) {
                let data = eventData[i]
                let slot = Int(data & 0xff_ffff)
                guard slot < clients.count, let client = clients[slot], client.token == data >> 24 else { continue }
                dispatch(client, events: eventMask[i], now: after)
            }
            flushDirty()
        }
    }

    private func dispatch(_ client: Client, events: UInt32, now: UInt64) {
        if client.phase == .connecting {
            let error = lg_socket_error(client.fd)
            if error != 0 {
                connectFailures += 1
                problem("connect failed: errno \(error)")
                fail(client, "connect failed")
                return
            }
            client.phase = .upgrading
            _ = lg_epoll_ctl(epfd, Int32(LG_CTL_MOD), client.fd, UInt32(LG_EPOLLIN), UInt64(client.slot) | client.token << 24)
            client.outbound.append(contentsOf: request)
            markDirty(client)
            return
        }
        if events & UInt32(LG_EPOLLOUT) != 0 { flush(client) }
        if events & UInt32(LG_EPOLLIN | LG_EPOLLHUP | LG_EPOLLERR) != 0 { readable(client, now: now) }
    }

    private func flushDirty() {
        guard !dirtyList.isEmpty else { return }
        let list = dirtyList
        dirtyList.removeAll(keepingCapacity: true)
        for client in list {
            client.dirty = false
            flush(client)
        }
    }

    private func flush(_ client: Client) {
        guard client.phase != .closed, client.phase != .connecting, !client.outbound.isEmpty else { return }
        let n = client.outbound.withUnsafeBytes { lg_write(client.fd, $0.baseAddress, $0.count) }
        if n == client.outbound.count {
            client.outbound.removeAll(keepingCapacity: true)
            if client.writeArmed {
                client.writeArmed = false
                _ = lg_epoll_ctl(epfd, Int32(LG_CTL_MOD), client.fd, UInt32(LG_EPOLLIN), UInt64(client.slot) | client.token << 24)
            }
        } else if n == -2 {
            fail(client, "write: \(String(cString: lg_last_error()))")
        } else {
            if n > 0 { client.outbound.removeFirst(n) }
            if !client.writeArmed {
                client.writeArmed = true
                _ = lg_epoll_ctl(
                    epfd, Int32(LG_CTL_MOD), client.fd, UInt32(LG_EPOLLIN | LG_EPOLLOUT),
                    UInt64(client.slot) | client.token << 24)
            }
        }
    }

    private func readable(_ client: Client, now: UInt64) {
        while client.phase != .closed {
            let n = lg_read(client.fd, readBuffer.baseAddress, readBuffer.count)
            if n == -1 { return }
            if n == 0 {
                fail(client, "peer closed the connection")
                return
            }
            if n < 0 {
                fail(client, "read: \(String(cString: lg_last_error()))")
                return
            }
            received(client, UnsafeRawBufferPointer(rebasing: readBuffer[0..<n]), now: now)
            // Level-triggered: a short read means the socket is drained for now; no extra EAGAIN read.
            if n < readBuffer.count { return }
        }
    }

    private func received(_ client: Client, _ bytes: UnsafeRawBufferPointer, now: UInt64) {
        if client.phase == .upgrading {
            client.inbound.append(contentsOf: bytes)
            upgradeResponse(client, now: now)
            return
        }
        if client.inbound.isEmpty {
            let used = parseFrames(client, bytes, now: now)
            if used < bytes.count && client.phase != .closed {
                client.inbound.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[used...]))
            }
        } else {
            client.inbound.append(contentsOf: bytes)
            drainInbound(client, now: now)
        }
    }

    private func drainInbound(_ client: Client, now: UInt64) {
        let pendingBytes = client.inbound
        let used = pendingBytes.withUnsafeBytes { parseFrames(client, $0, now: now) }
        guard client.phase != .closed else { return }
        if used == pendingBytes.count {
            // Keep small buffers for reuse; give back the memory of a large message (pipeline output).
            client.inbound.removeAll(keepingCapacity: client.inbound.capacity <= 65536)
        } else if used > 0 {
            client.inbound.removeFirst(used)
        }
    }

    /// Waits for the end of the response head (RFC 7230 §3); anything after it is already WebSocket frames.
    private func upgradeResponse(_ client: Client, now: UInt64) {
        let end: Int? = client.inbound.withUnsafeBytes { Bytes.find($0, "\r\n\r\n") }
        guard let end else {
            if client.inbound.count > 16384 { upgradeFailed(client, "response head over 16 KiB") }
            return
        }
        let statusLine = String(decoding: client.inbound.prefix(while: { $0 != 13 }), as: UTF8.self)
        guard statusLine.hasPrefix("HTTP/1.1 101") else {
            upgradeFailed(client, "upgrade refused: \(statusLine)")
            return
        }
        client.inbound.removeFirst(end)
        client.phase = .open
        pending -= 1
        handler.opened(client, driver: self)
        if client.phase == .open && !client.inbound.isEmpty { drainInbound(client, now: now) }
    }

    private func upgradeFailed(_ client: Client, _ reason: String) {
        upgradeFailures += 1
        problem(reason)
        fail(client, reason)
    }

    /// Parses whole frames (RFC 6455 §5.2) and returns the bytes consumed. Server frames are unmasked (§5.1).
    private func parseFrames(_ client: Client, _ buffer: UnsafeRawBufferPointer, now: UInt64) -> Int {
        var p = 0
        let count = buffer.count
        while count - p >= 2 && client.phase == .open {
            let b0 = buffer[p], b1 = buffer[p + 1]
            var length = Int(b1 & 0x7f)
            var head = 2
            if length == 126 {
                guard count - p >= 4 else { break }
                length = Int(buffer[p + 2]) << 8 | Int(buffer[p + 3])
                head = 4
            } else if length == 127 {
                guard count - p >= 10 else { break }
                length = 0
                for i in 2..<10 { length = length << 8 | Int(buffer[p + i]) }
                head = 10
            }
            if b1 & 0x80 != 0 { head += 4 }  // a masked server frame is a protocol error; skip the key
            guard count - p >= head + length else { break }
            let payload = UnsafeRawBufferPointer(rebasing: buffer[(p + head)..<(p + head + length)])
            p += head + length
            let fin = b0 & 0x80 != 0
            switch b0 & 0x0f {
            case 0x1, 0x2:
                if b0 & 0x40 != 0 {
                    // permessage-deflate (RFC 7692 §6): the servers compress whole, unfragmented messages only.
                    let n = lg_inflate_message(payload.baseAddress, payload.count, inflateBuffer.baseAddress, inflateBuffer.count)
                    guard fin, n >= 0 else {
                        fail(client, "compressed message not inflatable")
                        return p
                    }
                    handler.message(client, UnsafeRawBufferPointer(rebasing: inflateBuffer[0..<n]), now: now, driver: self)
                } else if fin && client.fragments.isEmpty {
                    handler.message(client, payload, now: now, driver: self)
                } else {
                    client.fragments.append(contentsOf: payload)
                }
            case 0x0:
                client.fragments.append(contentsOf: payload)
                if fin {
                    let whole = client.fragments
                    client.fragments.removeAll()
                    whole.withUnsafeBytes { handler.message(client, $0, now: now, driver: self) }
                }
            case 0x8:
                let code = length >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : 1005
                fail(client, "close frame \(code)")
            case 0x9:
                sendFrame(client, opcode: 0xA, payload)  // §5.5.3: a Pong echoes the Ping's data
            default:
                break
            }
        }
        return p
    }
}
