import CNghttp2
import NIOCore

/// A header list laid out for nghttp2: names and values packed in one byte array, turned into an
/// `nghttp2_nv` array only for the duration of a submit call (nghttp2 copies what it keeps).
/// Shared by the server (responses) and the client (requests). Value type, not thread-safe.
struct NGHTTP2HeaderList {
    private var storage: [UInt8] = []
    private var spans: [(name: Int, nameLength: Int, value: Int, valueLength: Int, flags: UInt8)] = []

    init(capacity: Int = 256, count: Int = 8) {
        storage.reserveCapacity(capacity)
        spans.reserveCapacity(count)
    }

    /// Empties the list but keeps its memory, so a connection can reuse one list for every
    /// stream (two allocations per request saved).
    mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        spans.removeAll(keepingCapacity: true)
    }

    /// `indexed: false` sends the field as an HPACK literal never indexed: for values that never
    /// repeat (request ids), adding each to the dynamic table only evicts entries that do repeat
    /// and costs nghttp2 a table insert and eviction per response.
    mutating func append(_ name: String, _ value: String, indexed: Bool = true) {
        let nameStart = storage.count
        appendBytes(of: name)
        let valueStart = storage.count
        appendBytes(of: value)
        let flags = UInt8(indexed ? NGHTTP2_NV_FLAG_NONE.rawValue : NGHTTP2_NV_FLAG_NO_INDEX.rawValue)
        spans.append((nameStart, valueStart - nameStart, valueStart, storage.count - valueStart, flags))
    }

    /// A field whose value is a non-negative decimal number (status, content-length), written as
    /// digits straight into the list: no String is made for it.
    mutating func append(_ name: String, decimal value: Int) {
        let nameStart = storage.count
        appendBytes(of: name)
        let valueStart = storage.count
        var digits = 1
        var rest = value.magnitude
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        for _ in 0..<digits { storage.append(UInt8(ascii: "0")) }
        storage.withUnsafeMutableBufferPointer { bytes in
            var rest = value.magnitude
            var i = valueStart + digits
            repeat {
                i -= 1
                bytes[i] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            } while rest > 0
        }
        spans.append((nameStart, valueStart - nameStart, valueStart, storage.count - valueStart, UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
    }

    /// A string's UTF-8 as one contiguous copy (appending `utf8` byte by byte was 5% of a request).
    /// Native strings (all of ours) lend their bytes without a copy of the string itself.
    private mutating func appendBytes(of string: String) {
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { storage.append(contentsOf: $0) }
        if done == nil { storage.append(contentsOf: string.utf8) }
    }

    /// Calls `body` with the nv array and its length; returns `NGHTTP2_ERR_NOMEM` if it cannot be built.
    mutating func withNV(_ body: (UnsafePointer<nghttp2_nv>, Int) -> Int32) -> Int32 {
        let spans = self.spans
        return storage.withUnsafeMutableBufferPointer { raw -> Int32 in
            guard let base = raw.baseAddress else { return NGHTTP2_ERR_NOMEM.rawValue }
            return withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: spans.count) { nva -> Int32 in
                guard let nvBase = nva.baseAddress else { return NGHTTP2_ERR_NOMEM.rawValue }
                for (i, span) in spans.enumerated() {
                    (nvBase + i).initialize(to: nghttp2_nv(
                        name: base + span.name, value: base + span.value, namelen: span.nameLength,
                        valuelen: span.valueLength, flags: span.flags
                    ))
                }
                return body(nvBase, spans.count)
            }
        }
    }
}

/// Everything nghttp2 wants to send, collected into one buffer (one write per flush).
enum NGHTTP2Output {
    /// Returns the bytes to write (nil if none), or the negative nghttp2 error code.
    static func collect(_ session: OpaquePointer, allocator: ByteBufferAllocator) -> Result<ByteBuffer?, NGHTTP2Error> {
        var buffer: ByteBuffer?
        while true {
            var data: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(session, &data)
            if n < 0 { return .failure(NGHTTP2Error(code: n)) }
            guard n > 0, let data else { return .success(buffer) }
            if buffer == nil { buffer = allocator.buffer(capacity: max(n, 4096)) }
            buffer?.writeBytes(UnsafeRawBufferPointer(start: data, count: n))
        }
    }
}

/// A negative nghttp2 return code, with nghttp2's own description.
struct NGHTTP2Error: Error, CustomStringConvertible {
    var code: Int
    var description: String { HTTP2ServerHandler.errorString(code) }
}
