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
        Self.varintBytes(value) { bytes.append($0) }
    }

    /// The bytes of `value` as a varint, lowest group first, to `emit`.
    private static func varintBytes(_ value: UInt64, _ emit: (UInt8) -> Void) {
        var v = value
        while v >= 0x80 {
            emit(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        emit(UInt8(v))
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
    /// Generic so a shape (`[Int]`) is written without first mapping it to a new `[Int64]`.
    mutating func packedInt64<C: Collection>(_ field: Int, _ values: C) where C.Element: BinaryInteger {
        guard !values.isEmpty else { return }
        key(field, 2)
        varint(UInt64(values.reduce(0) { $0 + Self.varintSize(UInt64(bitPattern: Int64($1))) }))
        for v in values { varint(UInt64(bitPattern: Int64(v))) }
    }

    /// A nested message: `body` writes it in place, then its length is put in front of it
    /// (moving the body up by the length's few bytes, within the reserved capacity), so no
    /// second buffer is made per nested message.
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        key(field, 2)
        let start = bytes.count
        body(&self)
        let length = UInt64(bytes.count - start)
        bytes.insert(contentsOf: repeatElement(0, count: Self.varintSize(length)), at: start)
        var i = start
        Self.varintBytes(length) { byte in
            bytes[i] = byte
            i += 1
        }
    }
}
