// SandboxView: exactly what a sandboxed test sees — toolchains and a few /etc files read-only, its workspace
// read-write, a private bounded /tmp — and the bwrap arguments that build that view.
import Glibc

/// One path visible inside the sandbox (reported in `sandbox_ready.visible`).
public struct VisiblePath: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable {
        case ro, rw
    }

    public var path: String
    public var mode: Mode

    public init(_ path: String, _ mode: Mode) {
        self.path = path
        self.mode = mode
    }
}

/// What a bwrap sandbox exposes besides its workspace. Everything not listed here is absent inside:
/// no `/root`, `/home`, `/var`, `/srv`, `/opt`, `/run`, `/mnt`, no other `/etc` file, no Medic data.
public struct SandboxView: Sendable, Equatable {
    /// The system directories a toolchain needs. On merged-/usr systems (Debian bookworm) `/bin`, `/sbin`,
    /// `/lib*` are symlinks into `/usr`: they are recreated as the same symlinks, real directories are bound.
    public static let systemRoots = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
    /// The `/etc` entries programs need to resolve users, hosts, libraries, certificates and time — and no
    /// more: never `shadow`, `gshadow`, `sudoers`, `ssh/`, `ssl/private`, credentials or the rest of `/etc`.
    /// Those that do not exist on the host are skipped.
    public static let etcEntries = [
        "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/nsswitch.conf",
        "/etc/host.conf", "/etc/gai.conf", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
        "/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/etc/ca-certificates.conf", "/etc/alternatives", "/etc/localtime",
        "/etc/timezone", "/etc/protocols", "/etc/services", "/etc/mime.types", "/etc/os-release", "/etc/debian_version",
    ]
    /// The uid and gid the code under test runs as, inside its own user namespace (`nobody`/`nogroup`).
    public static let sandboxUID = 65534
    /// Size of the private `/dev/shm` (POSIX semaphores and shared memory of e.g. Python multiprocessing).
    public static let shmSizeBytes = 64 << 20

    /// Extra read-only directories or files (configuration `sandbox_readonly_paths`), e.g. `/opt/swift` for a
    /// toolchain outside `/usr`. Absolute; bound at the same path.
    public var readOnlyPaths: [String]
    /// Paths that must never be visible even when they lie under a visible one: Medic's data directory (its
    /// store, keys and every sandbox), TLS key and certificate, config file. A directory is covered with an
    /// empty tmpfs, a file with an unreadable node.
    public var hiddenPaths: [String]
    /// Size bound of the private `/tmp` tmpfs (nil: the kernel's default, half the RAM).
    public var tmpSizeBytes: Int?

    public init(readOnlyPaths: [String] = [], hiddenPaths: [String] = [], tmpSizeBytes: Int? = nil) {
        self.readOnlyPaths = readOnlyPaths
        self.hiddenPaths = hiddenPaths
        self.tmpSizeBytes = tmpSizeBytes
    }

    /// The plan for one run: bwrap's mount arguments (in order) and the visible list.
    struct Plan {
        var arguments: [String] = []
        var visible: [VisiblePath] = []
    }

    /// Builds the mount plan. A few lstat/stat/realpath calls: fine on the loop thread.
    /// Order matters: mounts apply in order, so /tmp is replaced and hidden paths are covered *before* the
    /// workspace is bound (a workspace under /tmp or under a covered directory stays visible).
    func plan(workspace: String?) -> Plan {
        var plan = Plan()
        var readOnlyRoots: [(inside: String, real: String)] = []
        for root in Self.systemRoots {
            var info = stat()
            guard lstat(root, &info) == 0 else { continue }
            if (info.st_mode & S_IFMT) == S_IFLNK, let target = readLink(root) {
                plan.arguments += ["--symlink", target, root]
                plan.visible.append(VisiblePath(root, .ro))
            } else if (info.st_mode & S_IFMT) == S_IFDIR {
                plan.arguments += ["--ro-bind", root, root]
                plan.visible.append(VisiblePath(root, .ro))
                readOnlyRoots.append((root, realPath(root) ?? root))
            }
        }
        for entry in Self.etcEntries + readOnlyPaths where isAbsoluteClean(entry) {
            var info = stat()
            guard stat(entry, &info) == 0, !plan.visible.contains(where: { $0.path == entry }) else { continue }
            plan.arguments += ["--ro-bind", entry, entry]
            plan.visible.append(VisiblePath(entry, .ro))
            readOnlyRoots.append((entry, realPath(entry) ?? entry))
        }
        plan.arguments += ["--dev", "/dev", "--size", String(Self.shmSizeBytes), "--tmpfs", "/dev/shm", "--proc", "/proc"]
        // /dev itself is remounted read-only below (its device nodes stay usable); /dev/shm is writable.
        plan.visible += [VisiblePath("/dev", .ro), VisiblePath("/dev/shm", .rw), VisiblePath("/proc", .rw)]
        if let tmpSizeBytes { plan.arguments += ["--size", String(tmpSizeBytes)] }
        plan.arguments += ["--tmpfs", "/tmp"]
        plan.visible.append(VisiblePath("/tmp", .rw))
        // Hidden paths under a visible one: cover them (at the path they have inside the sandbox).
        var covered: [String] = []
        for hidden in hiddenPaths {
            let real = realPath(hidden) ?? hidden
            var info = stat()
            guard stat(real, &info) == 0 else { continue }
            for root in readOnlyRoots {
                for base in Set([root.real, root.inside]) where real == base || real.hasPrefix(base == "/" ? "/" : base + "/") {
                    let inside = root.inside + String(real.dropFirst(base.count))
                    if (info.st_mode & S_IFMT) == S_IFDIR {
                        plan.arguments += ["--tmpfs", inside]
                        covered.append(inside)
                    } else {
                        // A bind of /dev/null on a nodev mount: opening the path fails (EACCES).
                        plan.arguments += ["--ro-bind", "/dev/null", inside]
                    }
                }
            }
        }
        if let workspace {
            plan.arguments += ["--bind", workspace, workspace]
            plan.visible.append(VisiblePath(workspace, .rw))
        }
        // bwrap's own tmpfs mounts (the root, /dev, the covers) belong, through the uid map, to the sandbox
        // user: read-only, or a test could fill memory writing to /, /etc or /dev. Device nodes stay usable;
        // /dev/shm, /tmp and the workspace are separate mounts and stay writable.
        for path in covered { plan.arguments += ["--remount-ro", path] }
        plan.arguments += ["--remount-ro", "/dev", "--remount-ro", "/"]
        return plan
    }
}

/// readlink(2) of a symlink; nil on failure.
func readLink(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink(path, &buffer, buffer.count - 1)
    guard n > 0 else { return nil }
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// An absolute path without `.`/`..` components or empty components (other than a trailing slash).
func isAbsoluteClean(_ path: String) -> Bool {
    guard path.hasPrefix("/"), !path.contains("\0") else { return false }
    return !path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().contains { $0 == "." || $0 == ".." }
}
