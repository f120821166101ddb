import ApusCore
import CZlib

/// gzip / deflate bodies through zlib: request bodies by `Content-Encoding`, responses by
/// `Accept-Encoding`.
///
/// Decompression is bounded: output past `limit` bytes stops at once with 413, so a small bomb
/// never expands in memory. Stateless; thread-safe (one z_stream per call).
public enum Compression {
    public enum Encoding: String, Sendable {
        case gzip, deflate
    }

    /// Responses smaller than this go uncompressed: not worth the CPU.
    public static let minimumCompressedSize = 1024

    /// The request body, decompressed per `Content-Encoding` (identity, gzip, deflate), at most
    /// `limit` bytes after decompression.
    public static func decodeBody(_ request: Request, limit: Int = 8 << 20) throws -> [UInt8] {
        guard let header = request.headers[lowercased: "content-encoding"] else { return request.body }
        var body = request.body
        // Encodings apply in order; undo them in reverse.
        for token in header.split(separator: ",").map({ $0.trimmingSpaces().lowercased() }).reversed() where !token.isEmpty {
            switch token {
            case "identity": continue
            case "gzip", "x-gzip": body = try inflate(body, encoding: .gzip, limit: limit)
            case "deflate": body = try inflate(body, encoding: .deflate, limit: limit)
            default: throw ApusError(.unsupportedMediaType, "Content-Encoding \(token) is not supported (gzip, deflate, identity)")
            }
        }
        return body
    }

    /// Compresses `response` when the client accepts gzip or deflate and the body is large enough.
    public static func encodeResponse(_ response: Response, acceptEncoding: String?) -> Response {
        guard let acceptEncoding, response.body.count >= minimumCompressedSize,
              response.headers[lowercased: "content-encoding"] == nil,
              let encoding = preferred(acceptEncoding) else { return response }
        guard let compressed = try? deflate(response.body, encoding: encoding) else { return response }
        var out = response
        out.body = compressed
        out.headers.appendLowercased(name: "content-encoding", value: encoding.rawValue)
        out.headers.appendLowercased(name: "vary", value: "accept-encoding")
        return out
    }

    /// gzip if accepted, else deflate, else nil; honours `q=0`.
    static func preferred(_ accept: String) -> Encoding? {
        var accepted: Set<String> = []
        for item in accept.split(separator: ",") {
            let parts = item.split(separator: ";").map { $0.trimmingSpaces().lowercased() }
            guard let name = parts.first else { continue }
            let refused = parts.dropFirst().contains { $0.replacingSpaces() == "q=0" || $0.replacingSpaces() == "q=0.0" || $0.replacingSpaces() == "q=0.000" }
            if !refused { accepted.insert(name) }
        }
        if accepted.contains("gzip") || accepted.contains("*") { return .gzip }
        if accepted.contains("deflate") { return .deflate }
        return nil
    }

    /// Inflates `input`. Deflate accepts both the zlib wrapping (RFC 1950, what the HTTP spec
    /// means) and raw deflate (what some clients send).
    public static func inflate(_ input: [UInt8], encoding: Encoding, limit: Int) throws -> [UInt8] {
        do {
            return try inflate(input, windowBits: encoding == .gzip ? 15 + 16 : 15, limit: limit)
        } catch let error as ApusError where encoding == .deflate && error.code == .badRequest {
            return try inflate(input, windowBits: -15, limit: limit)
        }
    }

    static func inflate(_ input: [UInt8], windowBits: Int32, limit: Int) throws -> [UInt8] {
        var stream = z_stream()
        guard apus_inflateInit2(&stream, windowBits) == Z_OK else { throw ApusError(.internalError, "zlib inflateInit2 failed") }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let status: Int32 = input.withUnsafeBufferPointer { inBuffer -> Int32 in
            stream.next_in = UnsafeMutablePointer(mutating: inBuffer.baseAddress)
            stream.avail_in = UInt32(inBuffer.count)
            while true {
                let (code, produced) = chunk.withUnsafeMutableBufferPointer { out -> (Int32, Int) in
                    stream.next_out = out.baseAddress
                    stream.avail_out = UInt32(out.count)
                    let code = CZlib.inflate(&stream, Z_NO_FLUSH)
                    return (code, out.count - Int(stream.avail_out))
                }
                if output.count + produced > limit { return -100 }
                output.append(contentsOf: chunk[0..<produced])
                switch code {
                case Z_STREAM_END: return stream.avail_in == 0 ? Z_STREAM_END : -101
                case Z_OK: continue
                case Z_BUF_ERROR: return Z_BUF_ERROR
                default: return code
                }
            }
        }
        switch status {
        case Z_STREAM_END: return output
        case -100: throw ApusError(.payloadTooLarge, "the request body decompresses to more than \(limit) bytes")
        case -101: throw ApusError(.badRequest, "the compressed request body has bytes after its end")
        case Z_BUF_ERROR: throw ApusError(.badRequest, "the compressed request body is truncated")
        default: throw ApusError(.badRequest, "the compressed request body is corrupt (zlib error \(status))")
        }
    }

    public static func deflate(_ input: [UInt8], encoding: Encoding, level: Int32 = 6) throws -> [UInt8] {
        var stream = z_stream()
        guard apus_deflateInit2(&stream, level, encoding == .gzip ? 15 + 16 : 15) == Z_OK else {
            throw ApusError(.internalError, "zlib deflateInit2 failed")
        }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 32)
        let produced: Int = try input.withUnsafeBufferPointer { inBuffer in
            try output.withUnsafeMutableBufferPointer { out in
                stream.next_in = UnsafeMutablePointer(mutating: inBuffer.baseAddress)
                stream.avail_in = UInt32(inBuffer.count)
                stream.next_out = out.baseAddress
                stream.avail_out = UInt32(out.count)
                guard CZlib.deflate(&stream, Z_FINISH) == Z_STREAM_END else { throw ApusError(.internalError, "zlib deflate failed") }
                return out.count - Int(stream.avail_out)
            }
        }
        output.removeSubrange(produced...)
        return output
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }

    func replacingSpaces() -> String { String(filter { $0 != " " }) }
}
