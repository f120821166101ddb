/// Writes protobuf wire-format fields into a buffer sized beforehand, in the order they are
/// written. Used for the hottest message, `InferResponse`: writing it directly skips
/// swift-protobuf's size pass and the intermediate message and `Data` copies.
///
/// Two passes, both cheap: the caller adds up the `...Size` functions (so nested lengths are
/// known before their messages are written and nothing is moved), then `ProtobufWriter.bytes`
/// hands out a writer over exactly that many uninitialised bytes. Writes go through a pointer,
/// with no growth or uniqueness checks per byte. Every write is still checked against the end:
/// a size pass that came out short truncates the message (and `bytes` returns nil) rather than
/// writing past the buffer. Proto3 rules: fields at their default value are left out, repeated
/// scalars are packed. Value type, used on one thread at a time.
struct ProtobufWriter {
    private var position: UnsafeMutablePointer<UInt8>
    private let end: UnsafeMutablePointer<UInt8>
    private var overflowed = false

    private init(base: UnsafeMutablePointer<UInt8>, count: Int) {
        position = base
        end = base + count
    }

    /// A message of exactly `size` bytes written by `body`; nil when `body` wrote more or fewer
    /// (a size pass that disagrees with the writes: a bug, reported rather than hidden).
    static func bytes(size: Int, _ body: (inout ProtobufWriter) -> Void) -> [UInt8]? {
        var complete = false
        // At least one byte of capacity, so even an empty message has a base address (and any
        // write into it counts as an overflow).
        let bytes: [UInt8] = ArrayBuilder.make(capacity: max(size, 1)) { buffer in
            guard let base = buffer.baseAddress else { return 0 }
            var writer = ProtobufWriter(base: base, count: size)
            body(&writer)
            let count = writer.position - base
            complete = !writer.overflowed && count == size
            return count
        }
        return complete ? bytes : nil
    }

    // MARK: - Sizes

    static func varintSize(_ value: UInt64) -> Int {
        // 1 byte per started group of 7 bits; 0 takes one byte.
        let bits = 64 - (value | 1).leadingZeroBitCount
        return (bits + 6) / 7
    }

    /// Field key: number and wire type (0 varint, 2 length-delimited).
    static func keySize(_ field: Int) -> Int { varintSize(UInt64(field) << 3) }

    /// A length-delimited field of `count` payload bytes (left out when empty).
    static func lengthDelimitedSize(_ field: Int, count: Int) -> Int {
        count == 0 ? 0 : keySize(field) + varintSize(UInt64(count)) + count
    }

    static func stringSize(_ field: Int, _ value: String) -> Int {
        lengthDelimitedSize(field, count: value.utf8.count)
    }

    static func enumSize(_ field: Int, _ value: Int) -> Int {
        value == 0 ? 0 : keySize(field) + varintSize(UInt64(bitPattern: Int64(value)))
    }

    /// The payload of a packed repeated int64 (negative values take ten bytes).
    static func packedInt64PayloadSize<C: Collection>(_ values: C) -> Int where C.Element: BinaryInteger {
        values.reduce(0) { $0 + varintSize(UInt64(bitPattern: Int64($1))) }
    }

    static func packedInt64Size<C: Collection>(_ field: Int, _ values: C) -> Int where C.Element: BinaryInteger {
        lengthDelimitedSize(field, count: packedInt64PayloadSize(values))
    }

    // MARK: - Writes

    private mutating func byte(_ value: UInt8) {
        guard position < end else {
            overflowed = true
            return
        }
        position.initialize(to: value)
        position += 1
    }

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            byte(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        byte(UInt8(v))
    }

    mutating func key(_ field: Int, _ wireType: UInt64) {
        varint(UInt64(field) << 3 | wireType)
    }

    mutating func string(_ field: Int, _ value: String) {
        guard !value.isEmpty else { return }
        var value = value
        value.withUTF8 { lengthDelimited(field, UnsafeRawBufferPointer($0)) }
    }

    mutating func lengthDelimited(_ field: Int, _ payload: UnsafeRawBufferPointer) {
        guard !payload.isEmpty else { return }
        key(field, 2)
        varint(UInt64(payload.count))
        raw(payload)
    }

    /// Bytes copied as they are: a payload, or a run of fields encoded earlier (answer templates).
    mutating func raw(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty, let source = bytes.baseAddress else { return }
        guard end - position >= bytes.count else {
            overflowed = true
            return
        }
        UnsafeMutableRawPointer(position).copyMemory(from: source, byteCount: bytes.count)
        position += bytes.count
    }

    /// Marks the message as failed: `bytes` then returns nil (for a write that cannot happen).
    mutating func overflow() {
        overflowed = true
    }

    mutating func enumValue(_ field: Int, _ value: Int) {
        guard value != 0 else { return }
        key(field, 0)
        varint(UInt64(bitPattern: Int64(value)))
    }

    /// Packed repeated int64. Generic so a shape (`[Int]`) is written without first mapping it
    /// to a new `[Int64]`.
    mutating func packedInt64<C: Collection>(_ field: Int, _ values: C) where C.Element: BinaryInteger {
        let payload = Self.packedInt64PayloadSize(values)
        guard payload > 0 else { return }
        key(field, 2)
        varint(UInt64(payload))
        for v in values { varint(UInt64(bitPattern: Int64(v))) }
    }

    /// The key and length of a nested message of `size` bytes; the caller writes its fields next.
    mutating func messageHeader(_ field: Int, size: Int) {
        key(field, 2)
        varint(UInt64(size))
    }

    /// A nested message's full size in its parent: key, length, fields.
    static func messageSize(_ field: Int, payload: Int) -> Int {
        keySize(field) + varintSize(UInt64(payload)) + payload
    }
}
