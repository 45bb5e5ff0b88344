// LogTailTests: a real file followed through appends, rotation, truncation, deletion and an overlong line, on a
// real loop with inotify.
import EventLoop
import Foundation
import LogTail
import Synchronization
import Testing
import TestSupport

private final class Collected: Sendable {
    let lines = Mutex<[String]>([])
    let notices = Mutex<[TailNotice]>([])

    /// Waits (bounded) until `count` lines arrived.
    func wait(for count: Int, seconds: Double = 10) -> [String] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let now = lines.withLock { $0 }
            if now.count >= count { return now }
            usleep(10_000)
        }
        return lines.withLock { $0 }
    }
}

@Suite("Log files followed with inotify", .serialized)
struct LogTailTests {
    private func start(_ path: String, fromStart: Bool = false, maxLine: Int = 64 << 10) throws -> (LoopThread, Collected) {
        let collected = Collected()
        let (thread, _) = try LoopThread.start { loop in
            let tailer = try LogTailer(
                loop: loop, path: path, fromStart: fromStart, maxLineBytes: maxLine,
                onLines: { lines in collected.lines.withLock { $0 += lines } },
                onNotice: { notice in collected.notices.withLock { $0.append(notice) } })
            // Kept alive by the loop's registration and timer; a bound reference keeps it past setup.
            return LoopBound(tailer, loop: loop)
        }
        return (thread, collected)
    }

    private func append(_ path: String, _ text: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    @Test func followsAppendsRotationAndTruncation() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-tail-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/app.log"
        try "old line before the tail started\n".write(toFile: path, atomically: false, encoding: .utf8)
        let (thread, collected) = try start(path)
        defer { thread.stop() }
        try append(path, "one\ntwo\r\nthree-without-newline")
        #expect(collected.wait(for: 2) == ["one", "two"])
        try append(path, " finished\n")
        #expect(collected.wait(for: 3).last == "three-without-newline finished")
        // logrotate: rename away, write a last line to the old file, create a new one.
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        try append(path + ".1", "last of the old file\n")
        try "first of the new file\n".write(toFile: path, atomically: false, encoding: .utf8)
        let rotated = collected.wait(for: 5)
        #expect(rotated.suffix(2) == ["last of the old file", "first of the new file"])
        #expect(collected.notices.withLock { $0 }.contains(.rotated))
        // copytruncate: the file is cut to zero and written again.
        try append(path, "before truncation\n")
        _ = collected.wait(for: rotated.count + 1)
        let truncate = open(path, O_WRONLY | O_TRUNC)
        close(truncate)
        try append(path, "after truncation\n")
        #expect(collected.wait(for: rotated.count + 2).last == "after truncation")
        #expect(collected.notices.withLock { $0 }.contains(.truncated))
        #expect(!collected.lines.withLock { $0 }.contains("old line before the tail started"))
        // Deleted, then created again under the name.
        try FileManager.default.removeItem(atPath: path)
        try "reborn\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(collected.wait(for: rotated.count + 3).last == "reborn")
    }

    @Test func anOverlongLineIsDroppedAndTheNextOneKept() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-tail-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/big.log"
        try "".write(toFile: path, atomically: false, encoding: .utf8)
        let (thread, collected) = try start(path, fromStart: true, maxLine: 1024)
        defer { thread.stop() }
        try append(path, String(repeating: "x", count: 3 << 20) + "\nsmall after\n")
        #expect(collected.wait(for: 1) == ["small after"])
        #expect(collected.notices.withLock { $0 }.contains { if case .overlongLine = $0 { true } else { false } })
    }

    @Test func aFileThatAppearsLaterIsPickedUp() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-tail-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (thread, collected) = try start(directory + "/later.log")
        defer { thread.stop() }
        try "hello\n".write(toFile: directory + "/later.log", atomically: false, encoding: .utf8)
        #expect(collected.wait(for: 1) == ["hello"])
    }
}
