// PathSanitizer: turns a raw request path into safe relative segments, or refuses it.

/// Decodes and normalizes request paths for file lookup (DESIGN invariant 6: nothing from
/// outside is trusted).
public enum PathSanitizer {
    /// Percent-decodes a request path and normalizes it; returns the relative path segments,
    /// or nil when it would escape the root or is malformed.
    ///
    /// The raw path is split on `/` *before* decoding, so an encoded slash (`%2f`) can never
    /// create a segment boundary; a segment is refused (nil) if it decodes to `..` (any
    /// spelling, e.g. `%2e%2e`), or contains `/`, `\`, NUL or another control character, or
    /// has invalid percent-encoding or invalid UTF-8. Browsers remove dot segments before
    /// sending (RFC 3986 §5.2.4), so refusing `..` outright costs legitimate clients nothing.
    /// Empty and `.` segments are dropped. The path must be absolute (start with `/`).
    /// "/" yields `[]`.
    public static func relativeSegments(_ rawPath: String) -> [String]? {
        guard rawPath.utf8.first == ASCII.slash else { return nil }
        var segments: [String] = []
        for raw in rawPath.utf8.split(separator: ASCII.slash, omittingEmptySubsequences: true) {
            guard let bytes = PercentDecoding.decode(Substring(raw), plusAsSpace: false) else { return nil }
            guard !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == ASCII.slash || $0 == 0x5C }) else {
                return nil
            }
            guard let segment = String(validating: bytes, as: UTF8.self) else { return nil }
            switch segment {
            case ".": continue
            case "..": return nil
            default: segments.append(segment)
            }
        }
        return segments
    }
}
