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
        // Scan the bytes in place, not Characters (grapheme breaking) nor the generic UTF-8 view.
        var target = target
        let split: (String, String)? = target.withUTF8 { bytes in
            guard let q = bytes.firstIndex(of: UInt8(ascii: "?")) else { return nil }
            return (String(decoding: bytes[..<q], as: UTF8.self), String(decoding: bytes[(q + 1)...], as: UTF8.self))
        }
        if let split {
            self.path = split.0
            self.query = split.1
        } else {
            self.path = target
            self.query = ""
        }
        self.headers = headers
        self.body = body
        self.version = version
    }
}
