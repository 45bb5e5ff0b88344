// LogTailer: follows a log file on the event loop with inotify(7) — like `tail -F`: lines as they are
// appended, through rotation (the file renamed or deleted and a new one created under the name) and
// truncation (copytruncate), with every line bounded. The directory is watched, not the file, so a file that
// does not exist yet, or is replaced, is picked up by name.
public import EventLoop
import Glibc

/// What the tailer reports besides lines (logged by the host, counted in metrics).
public enum TailNotice: Sendable, Equatable {
    case opened(path: String)
    case rotated
    case truncated
    case deleted
    /// A line longer than the limit was dropped (its first bytes are kept for the report).
    case overlongLine(prefix: String)
    case error(String)
}

public final class LogTailer: IOHandler {
    private let loop: EventLoop
    public let path: String
    private let directory: String
    private let name: String
    private let maxLineBytes: Int
    private let onLines: ([String]) -> Void
    private let onNotice: (TailNotice) -> Void
    private var inotify: Int32 = -1
    private var registration: Registration?
    private var file: Int32 = -1
    private var offset: Int64 = 0
    private var partial: [UInt8] = []
    /// Inside a line longer than the limit: bytes are skipped until its newline.
    private var skipping = false
    private var pollTimer: TimerID?
    private var stopped = false
    private var catchingUp = false

    /// Starts following `path`. `fromStart`: read what the file holds now (else only what is appended later).
    public init(
        loop: EventLoop, path: String, fromStart: Bool = false, maxLineBytes: Int = 64 << 10, onLines: @escaping ([String]) -> Void,
        onNotice: @escaping (TailNotice) -> Void = { _ in }
    ) throws(SystemError) {
        self.loop = loop
        self.path = path
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        self.name = String(parts.last ?? "")
        self.directory = parts.count > 1 ? parts.dropLast().joined(separator: "/").isEmpty ? "/" : parts.dropLast().joined(separator: "/") : "."
        self.maxLineBytes = max(64, maxLineBytes)
        self.onLines = onLines
        self.onNotice = onNotice
        inotify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard inotify >= 0 else { throw SystemError("inotify_init1", errno: errno) }
        let mask = UInt32(IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE | IN_ATTRIB)
        guard inotify_add_watch(inotify, directory, mask) >= 0 else {
            let error = SystemError("inotify_add_watch \(directory)", errno: errno)
            close(inotify)
            throw error
        }
        registration = try loop.register(fd: inotify, interest: .read, handler: self)
        openFile(atEnd: !fromStart)
        if file >= 0 { readAvailable() }
        schedulePoll()
    }

    deinit {
        if file >= 0 { close(file) }
        if inotify >= 0 { close(inotify) }
    }

    public func stop() {
        guard !stopped else { return }
        stopped = true
        if let registration { loop.unregister(registration) }
        registration = nil
        if let pollTimer { loop.cancel(pollTimer) }
        if file >= 0 { close(file); file = -1 }
        if inotify >= 0 { close(inotify); inotify = -1 }
    }

    // MARK: IOHandler

    public func ioReady(_ events: IOEvents) {
        var buffer = [UInt8](repeating: 0, count: 8192)
        var touched = false
        var replaced = false
        var removed = false
        while true {
            let n = buffer.withUnsafeMutableBytes { read(inotify, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            var at = 0
            while at + 16 <= n {
                // struct inotify_event { int wd; uint32_t mask, cookie, len; char name[len]; }
                let mask = buffer.withUnsafeBytes { $0.load(fromByteOffset: at + 4, as: UInt32.self) }
                let length = Int(buffer.withUnsafeBytes { $0.load(fromByteOffset: at + 12, as: UInt32.self) })
                let nameBytes = buffer[(at + 16)..<min(n, at + 16 + length)].prefix { $0 != 0 }
                if String(decoding: nameBytes, as: UTF8.self) == name {
                    if mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 { replaced = true }
                    if mask & UInt32(IN_DELETE | IN_MOVED_FROM) != 0 { removed = true }
                    if mask & UInt32(IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB) != 0 { touched = true }
                }
                at += 16 + length
            }
        }
        if removed && !replaced { onNotice(.deleted) }
        if replaced {
            // Finish the old file (what was written before the rename), then follow the new one from its start.
            if file >= 0 { readAvailable() }
            flushPartial()
            if file >= 0 { close(file); file = -1 }
            openFile(atEnd: false)
            if file >= 0 { onNotice(.rotated) }
            readAvailable()
        } else if touched {
            if file < 0 { openFile(atEnd: false) }
            readAvailable()
        }
    }

    // MARK: reading

    private func openFile(atEnd: Bool) {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return }  // not there (yet): the directory watch says when it is
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            onNotice(.error("\(path) is not a regular file"))
            return
        }
        file = fd
        offset = atEnd ? Int64(info.st_size) : 0
        partial = []
        skipping = false
        onNotice(.opened(path: path))
    }

    /// Reads what was appended since `offset` (at most 4 MiB per call; the rest on the next event or poll).
    private func readAvailable() {
        guard file >= 0 else { return }
        var info = stat()
        if fstat(file, &info) == 0, Int64(info.st_size) < offset {
            // Truncated in place (copytruncate): start again from the top.
            offset = 0
            partial = []
            skipping = false
            onNotice(.truncated)
        }
        var buffer = [UInt8](repeating: 0, count: 256 << 10)
        var budget = 4 << 20
        var lines: [String] = []
        while budget > 0 {
            let n = buffer.withUnsafeMutableBytes { pread(file, $0.baseAddress, $0.count, off_t(offset)) }
            guard n > 0 else { break }
            offset += Int64(n)
            budget -= n
            split(buffer[0..<n], into: &lines)
        }
        if !lines.isEmpty { onLines(lines) }
        // More is waiting (a backlog, or a huge line being skipped): go on at the loop's next turn rather than
        // at the next inotify event or poll, without holding the loop for more than one budget.
        if budget <= 0, !stopped, !catchingUp {
            catchingUp = true
            _ = loop.schedule(afterNanoseconds: 0) { [weak self] in
                guard let self else { return }
                self.catchingUp = false
                self.readAvailable()
            }
        }
    }

    private func split(_ bytes: ArraySlice<UInt8>, into lines: inout [String]) {
        var start = bytes.startIndex
        while let newline = bytes[start...].firstIndex(of: 10) {
            let piece = bytes[start..<newline]
            if skipping {
                skipping = false
            } else if partial.count + piece.count > maxLineBytes {
                onNotice(.overlongLine(prefix: String(decoding: (partial + piece).prefix(80), as: UTF8.self)))
                partial = []
            } else {
                partial += piece
                if partial.last == 13 { partial.removeLast() }  // CRLF
                lines.append(String(decoding: partial, as: UTF8.self))
                partial = []
            }
            start = newline + 1
        }
        let rest = bytes[start...]
        guard !skipping else { return }
        if partial.count + rest.count > maxLineBytes {
            onNotice(.overlongLine(prefix: String(decoding: (partial + rest).prefix(80), as: UTF8.self)))
            partial = []
            skipping = true
        } else {
            partial += rest
        }
    }

    /// A last line without its newline (the writer may never finish it) is emitted when its file is left.
    private func flushPartial() {
        guard !partial.isEmpty, !skipping else { return }
        onLines([String(decoding: partial, as: UTF8.self)])
        partial = []
    }

    /// A 1 s poll besides inotify: a file on a file system that sends no events (NFS, some FUSE) still moves.
    private func schedulePoll() {
        guard !stopped else { return }
        pollTimer = loop.schedule(afterNanoseconds: 1_000_000_000) { [weak self] in
            guard let self, !self.stopped else { return }
            if self.file < 0 { self.openFile(atEnd: false) }
            self.readAvailable()
            self.schedulePoll()
        }
    }
}
