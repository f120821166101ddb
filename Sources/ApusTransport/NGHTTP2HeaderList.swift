import CNghttp2
import NIOCore

/// A header list laid out for nghttp2: names and values packed in one byte buffer, turned into
/// an `nghttp2_nv` array only for the duration of a submit call (nghttp2 copies what it keeps).
/// Shared by the server (responses) and the client (requests).
///
/// Raw memory the list owns and reuses for every header block of its connection: building a
/// response's five fields through `[UInt8]` appends cost more instructions than nghttp2's own
/// submit. Not thread-safe (one connection's event loop owns it).
final class NGHTTP2HeaderList {
    /// Where a field's name and value lie in `bytes`.
    private struct Span {
        var name: Int
        var nameLength: Int
        var value: Int
        var valueLength: Int
        var flags: UInt8
    }

    private var bytes: UnsafeMutablePointer<UInt8>
    private var byteCapacity: Int
    private var byteCount = 0
    private var spans: UnsafeMutablePointer<Span>
    private var nva: UnsafeMutablePointer<nghttp2_nv>
    private var fieldCapacity: Int
    private(set) var count = 0

    init(capacity: Int = 256, count: Int = 8) {
        byteCapacity = max(capacity, 16)
        fieldCapacity = max(count, 4)
        bytes = .allocate(capacity: byteCapacity)
        spans = .allocate(capacity: fieldCapacity)
        nva = .allocate(capacity: fieldCapacity)
    }

    deinit {
        bytes.deallocate()
        spans.deallocate()
        nva.deallocate()
    }

    /// Empties the list but keeps its memory, so a connection reuses one list for every stream.
    func removeAll() {
        byteCount = 0
        count = 0
    }

    /// Keeps the first `fields` fields (and their bytes) and drops the rest: the fields are laid
    /// out in order, so the kept ones end where the next one began.
    func removeAll(keepingFirst fields: Int) {
        guard fields > 0 else { return removeAll() }
        guard fields < count else { return }
        let last = spans[fields - 1]
        byteCount = last.value + last.valueLength
        count = fields
    }

    /// `indexed: false` sends the field as an HPACK literal never indexed: for values that never
    /// repeat (request ids), adding each to the dynamic table only evicts entries that do repeat
    /// and costs nghttp2 a table insert and eviction per response.
    func append(_ name: String, _ value: String, indexed: Bool = true) {
        let nameStart = byteCount
        appendBytes(of: name)
        let valueStart = byteCount
        appendBytes(of: value)
        addSpan(Span(name: nameStart, nameLength: valueStart - nameStart, value: valueStart, valueLength: byteCount - valueStart,
                     flags: UInt8(indexed ? NGHTTP2_NV_FLAG_NONE.rawValue : NGHTTP2_NV_FLAG_NO_INDEX.rawValue)))
    }

    /// A field whose value is a non-negative decimal number (status, content-length), written as
    /// digits straight into the list: no String is made for it.
    func append(_ name: String, decimal value: Int) {
        let nameStart = byteCount
        appendBytes(of: name)
        appendDecimal(value, nameStart: nameStart)
    }

    /// `append(_:decimal:)` for a name known at compile time (":status", "content-length"): its
    /// bytes are copied from the binary, without going through a String.
    func append(literal name: StaticString, decimal value: Int) {
        let nameStart = byteCount
        if name.hasPointerRepresentation {
            appendRaw(name.utf8Start, count: name.utf8CodeUnitCount)
        } else {
            appendBytes(of: name.description)
        }
        appendDecimal(value, nameStart: nameStart)
    }

    private func appendDecimal(_ value: Int, nameStart: Int) {
        let valueStart = byteCount
        // Statuses and most bodies take three digits or fewer: compared, not divided.
        var rest = value.magnitude
        var digits = rest < 10 ? 1 : rest < 100 ? 2 : rest < 1000 ? 3 : 4
        if digits == 4 {
            var high = rest / 10_000
            while high > 0 {
                high /= 10
                digits += 1
            }
        }
        reserve(digits)
        var i = valueStart + digits
        repeat {
            i -= 1
            bytes[i] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
        } while rest > 0
        byteCount += digits
        addSpan(Span(name: nameStart, nameLength: valueStart - nameStart, value: valueStart, valueLength: digits,
                     flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
    }

    /// A string's UTF-8 as one copy. Native strings (all of ours) lend their bytes in place;
    /// others are copied byte by byte.
    private func appendBytes(of string: String) {
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { utf8 in
            guard let base = utf8.baseAddress, !utf8.isEmpty else { return }
            appendRaw(base, count: utf8.count)
        }
        guard done == nil else { return }
        for byte in string.utf8 {
            reserve(1)
            bytes[byteCount] = byte
            byteCount += 1
        }
    }

    /// `count` bytes from `source`, growing the buffer if needed.
    private func appendRaw(_ source: UnsafePointer<UInt8>, count: Int) {
        reserve(count)
        (bytes + byteCount).update(from: source, count: count)
        byteCount += count
    }

    private func reserve(_ more: Int) {
        guard byteCount + more > byteCapacity else { return }
        let capacity = max(byteCapacity * 2, byteCount + more)
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        grown.update(from: bytes, count: byteCount)
        bytes.deallocate()
        bytes = grown
        byteCapacity = capacity
    }

    private func addSpan(_ span: Span) {
        if count == fieldCapacity {
            let capacity = fieldCapacity * 2
            let grown = UnsafeMutablePointer<Span>.allocate(capacity: capacity)
            grown.initialize(from: spans, count: count)
            spans.deallocate()
            spans = grown
            nva.deallocate()
            nva = .allocate(capacity: capacity)
            fieldCapacity = capacity
        }
        (spans + count).initialize(to: span)
        count += 1
    }

    /// Calls `body` with the nv array and its length. The pointers in it are valid only during
    /// the call (a later append may move the bytes).
    func withNV(_ body: (UnsafePointer<nghttp2_nv>, Int) -> Int32) -> Int32 {
        for i in 0..<count {
            let span = spans[i]
            (nva + i).initialize(to: nghttp2_nv(
                name: bytes + span.name, value: bytes + span.value, namelen: span.nameLength,
                valuelen: span.valueLength, flags: span.flags
            ))
        }
        return body(UnsafePointer(nva), count)
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
