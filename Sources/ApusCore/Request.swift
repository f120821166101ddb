/// One HTTP request, whatever HTTP version carried it.
///
/// The transport builds it only after the whole body arrived and passed the limits, so `body` is
/// complete. Value type, immutable once built: handlers may move it to any thread.
public struct Request: Sendable, Equatable {
    /// The HTTP version that carried the request; handlers rarely need it, logs and tests do.
    public enum Version: String, Sendable { case http1_0 = "HTTP/1.0", http1_1 = "HTTP/1.1", http2 = "HTTP/2" }

    public var method: String
    /// The path without the query string, percent-encoding untouched.
    public var path: String
    /// The raw query string after `?`, or empty.
    public var query: String
    public var headers: HTTPFields
    public var body: [UInt8]
    public var version: Version

    public init(method: String, target: String, headers: HTTPFields, body: [UInt8] = [], version: Version) {
        self.method = method
        // Scan bytes, not Characters: grapheme breaking is needlessly slow on the hot path.
        if let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            self.path = String(target[..<q])
            self.query = String(target[target.utf8.index(after: q)...])
        } else {
            self.path = target
            self.query = ""
        }
        self.headers = headers
        self.body = body
        self.version = version
    }
}
