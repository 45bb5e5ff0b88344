// PingBurstTests: a burst of Pings in one write is answered Pong for Pong (Autobahn 2.10/2.11); a flood coalesces.
import TestSupport
import Testing

@Suite("Ping bursts over loopback")
struct PingBurstTests {
    @Test(arguments: [false, true])
    func tenPingsInOneWriteGetTenPongs(bytewise: Bool) throws {
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port)
        try client.upgrade()
        let pings = (0..<10).map { TestClient.frame(opcode: 9, payload: Array("payload-\($0)".utf8)) }
        if bytewise {
            for byte in pings.joined() { try client.write([byte]) }
        } else {
            try client.write(Array(pings.joined()))
        }
        for n in 0..<10 {
            let pong = try client.readFrame()
            #expect(pong.opcode == 10 && pong.text == "payload-\(n)")
        }
        try client.sendClose(code: 1000)
        #expect(try client.readFrame().closeCode == 1000)
    }

    @Test func aFloodOfPingsFromAClientThatDoesNotReadCoalesces() throws {
        // 2,000 pings written before reading anything: the server answers the first burst one by one, then only
        // the latest (RFC 6455 §5.5.3), so far fewer than 2,000 pongs come back and the last one answers the last ping.
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port)
        try client.upgrade()
        let pings = (0..<2000).map { TestClient.frame(opcode: 9, payload: Array("p\($0)".utf8)) }
        try client.write(Array(pings.joined()))
        try client.write(TestClient.frame(opcode: 1, payload: Array("end".utf8)))
        // The echo and the owed Pong may come in either order; both come (the read times out otherwise).
        var pongs: [String] = []
        var echoed = false
        while !echoed || pongs.last != "p1999" {
            let frame = try client.readFrame()
            if frame.opcode == 1 { echoed = true } else { pongs.append(frame.text) }
        }
        #expect(pongs.count >= 10 && pongs.count < 2000)
        #expect(pongs.last == "p1999")
    }
}
