// MIMEType: Content-Type values for the file extensions we serve.

/// Maps file extensions to media types (RFC 9110 §8.3). Text types carry `charset=utf-8`
/// so browsers never guess the encoding.
public enum MIMEType {
    /// The media type for `ext` (with or without a leading dot, case-insensitive);
    /// `application/octet-stream` when unknown, which browsers will not render or execute.
    public static func forExtension(_ ext: String) -> String {
        var key = ext.lowercased()
        if key.hasPrefix(".") { key.removeFirst() }
        return table[key] ?? "application/octet-stream"
    }

    private static let table: [String: String] = [
        "html": "text/html; charset=utf-8",
        "htm": "text/html; charset=utf-8",
        "css": "text/css; charset=utf-8",
        // RFC 9239 §6: text/javascript is the one media type for JavaScript, modules included.
        "js": "text/javascript; charset=utf-8",
        "mjs": "text/javascript; charset=utf-8",
        "json": "application/json",
        "map": "application/json",
        "svg": "image/svg+xml",
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "gif": "image/gif",
        "webp": "image/webp",
        "ico": "image/x-icon",
        "woff2": "font/woff2",
        "woff": "font/woff",
        "txt": "text/plain; charset=utf-8",
        "wasm": "application/wasm",
        "xml": "application/xml",
        "pdf": "application/pdf",
        "webmanifest": "application/manifest+json",
    ]
}
