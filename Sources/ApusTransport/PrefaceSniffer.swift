/// Decides from a connection's first bytes whether it speaks HTTP/2 with prior knowledge or
/// HTTP/1.x. Pure value; feed it bytes in any split, one at a time or all at once.
///
/// Invariant: the verdict is `.http2` only after all 24 bytes of the client connection preface
/// matched; any mismatching byte gives `.http1` immediately (an HTTP/1 request line can never start
/// with "PRI * HTTP/2.0").
public struct PrefaceSniffer: Sendable {
    public enum Verdict: Sendable, Equatable { case needMoreBytes, http2, http1 }

    /// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (RFC 9113 section 3.4).
    public static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private var matched = 0
    public private(set) var verdict: Verdict = .needMoreBytes

    public init() {}

    /// Consumes `bytes` (only as many as needed) and returns the verdict so far.
    @discardableResult
    public mutating func feed<C: Collection>(_ bytes: C) -> Verdict where C.Element == UInt8 {
        guard verdict == .needMoreBytes else { return verdict }
        for byte in bytes {
            if byte != Self.preface[matched] {
                verdict = .http1
                return verdict
            }
            matched += 1
            if matched == Self.preface.count {
                verdict = .http2
                return verdict
            }
        }
        return verdict
    }
}
