/// Appends protobuf wire-format fields to a byte array, in the order they are written. Used for
/// the hottest message, `InferResponse`: writing it directly skips swift-protobuf's size pass and
/// the intermediate message and `Data` copies (9% of a batch-1 request). Proto3 rules: fields at
/// their default value are left out, repeated scalars are packed. Value type.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    static func varintSize(_ value: UInt64) -> Int {
        var v = value
        var n = 1
        while v >= 0x80 {
            v >>= 7
            n += 1
        }
        return n
    }

    /// Field key: number and wire type (0 varint, 2 length-delimited).
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
        bytes.append(contentsOf: payload)
    }

    mutating func enumValue(_ field: Int, _ value: Int) {
        guard value != 0 else { return }
        key(field, 0)
        varint(UInt64(bitPattern: Int64(value)))
    }

    /// Packed repeated int64 (negative values take ten bytes, as in every protobuf encoder).
    mutating func packedInt64(_ field: Int, _ values: [Int64]) {
        guard !values.isEmpty else { return }
        key(field, 2)
        varint(UInt64(values.reduce(0) { $0 + Self.varintSize(UInt64(bitPattern: $1)) }))
        for v in values { varint(UInt64(bitPattern: v)) }
    }

    /// A nested message: `body` writes it into a writer of its own; its length goes first.
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var nested = ProtobufWriter(capacity: 64)
        body(&nested)
        key(field, 2)
        varint(UInt64(nested.bytes.count))
        bytes.append(contentsOf: nested.bytes)
    }
}
