/// The fields of an `apus.v1.InferRequest` that serving reads, as plain values.
struct WireInferRequest: Equatable {
    struct Input: Equatable {
        var name = ""
        var datatype = Apus_V1_DataType.unspecified
        /// Dimensions as the request gives them (validated later): `Int`, so the tensor takes
        /// the array as it is (Int is 64 bits on every platform Apus builds for).
        var shape: [Int] = []
        var raw: ArraySlice<UInt8> = []
    }

    var model = ""
    var version = ""
    var label = ""
    var routingKey = ""
    var id = ""
    var inputs: [Input] = []
    var outputs: [String] = []
}

extension WireInferRequest.Input {
    init(_ tensor: Apus_V1_Tensor) {
        self.init(name: tensor.name, datatype: tensor.datatype, shape: tensor.shape.map { Int(truncatingIfNeeded: $0) }, raw: ArraySlice(tensor.rawContents))
    }
}

extension WireInferRequest {
    /// From the generated message (the general decoder's answer).
    init(_ message: Apus_V1_InferRequest) {
        model = message.model
        version = message.version
        label = message.label
        routingKey = message.routingKey
        id = message.id
        inputs = message.inputs.map(Input.init)
        outputs = message.outputs
    }
}

/// A decoder for the common shape of an `InferRequest` (the fields above, no parameters map),
/// reading the body in place: swift-protobuf's general decoder was 9% of a batch-1 request.
///
/// It only ever answers for input it fully understands and otherwise returns nil, and the
/// caller then runs swift-protobuf's decoder, which accepts or rejects it with its own error:
/// so every unusual input (groups, invalid UTF-8, unknown enum values, a parameters map,
/// truncation...) takes the general path, and where this one answers it answers what the
/// general decoder would (checked against it on vectors and mutated bodies in
/// FastInferRequestDecoderTests). Stateless.
enum FastInferRequestDecoder {
    static func decode(_ body: [UInt8]) -> WireInferRequest? {
        // Decoded in place (the request here, each tensor in its slot of `inputs`): building
        // values and returning them copied every field once more.
        var out = WireInferRequest()
        let understood = body.withUnsafeBufferPointer { buffer -> Bool in
            var reader = Reader(buffer: buffer, position: 0, end: buffer.count)
            while !reader.atEnd {
                guard let (field, wireType) = reader.key() else { return false }
                switch (field, wireType) {
                case (1, 2): guard let s = reader.string() else { return false }; out.model = s
                case (2, 2): guard let s = reader.string() else { return false }; out.version = s
                case (3, 2): guard let s = reader.string() else { return false }; out.label = s
                case (4, 2): guard let s = reader.string() else { return false }; out.routingKey = s
                case (5, 2): guard let s = reader.string() else { return false }; out.id = s
                case (6, 2):
                    guard let range = reader.lengthDelimited() else { return false }
                    out.inputs.append(WireInferRequest.Input())
                    guard tensor(buffer, range, body, into: &out.inputs[out.inputs.count - 1]) else { return false }
                case (7, 2): guard let s = reader.string() else { return false }; out.outputs.append(s)
                case (1...8, _): return false
                default: guard reader.skip(wireType) else { return false }
                }
            }
            return true
        }
        return understood ? out : nil
    }

    private static func tensor(_ buffer: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ body: [UInt8], into out: inout WireInferRequest.Input) -> Bool {
        var reader = Reader(buffer: buffer, position: range.lowerBound, end: range.upperBound)
        while !reader.atEnd {
            guard let (field, wireType) = reader.key() else { return false }
            switch (field, wireType) {
            case (1, 2): guard let s = reader.string() else { return false }; out.name = s
            case (2, 0):
                guard let v = reader.varint(), v <= 5, let type = Apus_V1_DataType(rawValue: Int(v)) else { return false }
                out.datatype = type
            case (3, 2):
                guard let packed = reader.lengthDelimited() else { return false }
                // Every varint takes at least a byte: one allocation for the shape, where growing
                // by appends reallocated it for the second dimension.
                out.shape.reserveCapacity(out.shape.count + packed.count)
                var inner = Reader(buffer: buffer, position: packed.lowerBound, end: packed.upperBound)
                while !inner.atEnd {
                    guard let v = inner.varint() else { return false }
                    out.shape.append(Int(truncatingIfNeeded: Int64(bitPattern: v)))
                }
            case (3, 0): guard let v = reader.varint() else { return false }; out.shape.append(Int(truncatingIfNeeded: Int64(bitPattern: v)))
            case (4, 2): guard let raw = reader.lengthDelimited() else { return false }; out.raw = body[raw]
            case (1...4, _): return false
            default: guard reader.skip(wireType) else { return false }
            }
        }
        return true
    }

    /// Reads wire-format primitives from `buffer[position..<end]`; nil on anything malformed.
    struct Reader {
        let buffer: UnsafeBufferPointer<UInt8>
        var position: Int
        let end: Int

        var atEnd: Bool { position >= end }

        mutating func varint() -> UInt64? {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while position < end, shift < 64 {
                let byte = buffer[position]
                position += 1
                result |= UInt64(byte & 0x7f) << shift
                if byte < 0x80 { return result }
                shift += 7
            }
            return nil
        }

        mutating func key() -> (Int, UInt64)? {
            guard let k = varint(), k >> 3 > 0, k >> 3 <= UInt64(Int32.max) else { return nil }
            return (Int(k >> 3), k & 7)
        }

        mutating func lengthDelimited() -> Range<Int>? {
            guard let n = varint(), n <= UInt64(end - position) else { return nil }
            let range = position..<(position + Int(n))
            position += Int(n)
            return range
        }

        /// A string field; nil unless valid UTF-8 (the general decoder rejects it then).
        mutating func string() -> String? {
            guard let range = lengthDelimited() else { return nil }
            let bytes = UnsafeBufferPointer(rebasing: buffer[range])
            var ascii = true
            for byte in bytes where byte >= 0x80 {
                ascii = false
                break
            }
            if ascii { return String(decoding: bytes, as: UTF8.self) }
            return String(validating: bytes, as: UTF8.self)
        }

        /// Skips an unknown field of wire type 0, 1, 2 or 5; groups and invalid types: false.
        mutating func skip(_ wireType: UInt64) -> Bool {
            switch wireType {
            case 0: return varint() != nil
            case 1: guard end - position >= 8 else { return false }; position += 8; return true
            case 2: return lengthDelimited() != nil
            case 5: guard end - position >= 4 else { return false }; position += 4; return true
            default: return false
            }
        }
    }
}
