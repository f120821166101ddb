import ApusCore
import ApusInference
import ApusRuntime
import Foundation
import SwiftProtobuf

/// The Apus binary protocol (`proto-spec/apus/v1/inference.proto`): `InferRequest` in,
/// `InferResponse` or `Error` out. Tensors carry raw little-endian contents, checked against
/// their shape and datatype with a 400 naming the tensor. The generated types stay internal.
/// Stateless; thread-safe.
public enum ProtobufCodec {
    /// Nested messages deeper than this are refused before they can exhaust the stack.
    static let decodingOptions: BinaryDecodingOptions = {
        var options = BinaryDecodingOptions()
        options.messageDepthLimit = 16
        options.discardUnknownFields = true
        return options
    }()

    public static func decodeRequest(_ body: [UInt8], model: String, selector: VersionSelector?) throws -> InferRequest {
        try ProtobufRequestTemplate.decode(body, model: model, selector: selector, scratch: CodecScratch.current)
    }

    /// The common case through `FastInferRequestDecoder`; anything else through swift-protobuf.
    static func parseRequest(_ body: [UInt8]) throws -> WireInferRequest {
        if let fast = FastInferRequestDecoder.decode(body) { return fast }
        return try parseRequestWithGeneratedCode(body)
    }

    static func parseRequestWithGeneratedCode(_ body: [UInt8]) throws -> WireInferRequest {
        do {
            return WireInferRequest(try Apus_V1_InferRequest(serializedBytes: body, options: decodingOptions))
        } catch {
            throw ApusError(.badRequest, "the body is not a valid apus.v1.InferRequest (\(error))")
        }
    }

    static func request(from message: borrowing WireInferRequest, model: String, selector: VersionSelector?) throws -> InferRequest {
        if !message.model.isEmpty, message.model != model {
            throw ApusError(.badRequest, "model: the body names \(message.model), the path \(model)")
        }
        if !message.version.isEmpty, !message.label.isEmpty {
            throw ApusError(.badRequest, "version and label: give at most one")
        }
        var bodySelector: VersionSelector?
        if !message.version.isEmpty {
            guard let v = Int(message.version), v >= 0 else { throw ApusError(.badRequest, "version: \(message.version) is not a version number") }
            bodySelector = .version(v)
        } else if !message.label.isEmpty {
            bodySelector = .label(message.label)
        }
        if let selector, let bodySelector, selector != bodySelector {
            throw ApusError(.badRequest, "version: the body asks for \(bodySelector), the path for \(selector)")
        }
        guard !message.inputs.isEmpty else { throw ApusError(.badRequest, "inputs: at least one tensor is required") }
        // Through the buffer, so each input is read in place rather than copied out (four
        // counted fields each).
        let inputs = try message.inputs.withUnsafeBufferPointer { wire -> [InferRequest.Input] in
            var inputs: [InferRequest.Input] = []
            inputs.reserveCapacity(wire.count)
            for index in wire.indices {
                inputs.append(InferRequest.Input(name: wire[index].name, tensor: try decodeTensor(wire[index], index: index)))
            }
            return inputs
        }
        var requested: [String: Bool] = [:]
        for name in message.outputs { requested[name] = true }
        return InferRequest(model: model, version: selector ?? bodySelector, id: message.id.isEmpty ? nil : message.id,
                            routingKey: message.routingKey.isEmpty ? nil : message.routingKey, inputs: inputs, requestedOutputs: requested)
    }

    static func decodeTensor(_ tensor: Apus_V1_Tensor, index: Int) throws -> Tensor {
        try decodeTensor(WireInferRequest.Input(tensor), index: index)
    }

    static func decodeTensor(_ tensor: borrowing WireInferRequest.Input, index: Int) throws -> Tensor {
        guard !tensor.name.isEmpty else { throw ApusError(.badRequest, "inputs[\(index)].name is empty") }
        var name: String { "input \(tensor.name)" }
        for dim in tensor.shape where dim < 0 || dim >= 1 << 31 {
            throw ApusError(.badRequest, "\(name): shape \(tensor.shape) has a negative or huge dimension")
        }
        guard let count = Tensor.boundedElementCount(tensor.shape) else {
            throw ApusError(.badRequest, "\(name): \(Tensor.overLimit(tensor.shape))")
        }
        let shape = tensor.shape
        let typeName = Self.name(tensor.datatype)
        let raw = tensor.raw
        let width: Int
        switch tensor.datatype {
        case .bool: width = 1
        case .int32, .fp32: width = 4
        case .int64, .fp64: width = 8
        default: throw ApusError(.badRequest, "\(name): datatype \(typeName) is not supported (BOOL, INT32, INT64, FP32, FP64)")
        }
        guard raw.count == count * width else {
            throw ApusError(.badRequest, "\(name): shape \(tensor.shape) of \(typeName) needs \(count * width) bytes of raw_contents, got \(raw.count)")
        }
        let data = raw.withUnsafeBytes { tensorData($0, datatype: tensor.datatype, count: count) }
        return try Tensor(shape: shape, data: data)
    }

    /// `count` values of a supported datatype from their little-endian raw contents (whose size
    /// the caller checked).
    static func tensorData(_ bytes: UnsafeRawBufferPointer, datatype: Apus_V1_DataType, count: Int) -> Tensor.Data {
        switch datatype {
        case .bool: .bool(bytes.map { $0 != 0 })
        case .int32: .int32(RawValues.littleEndian(bytes, count: count, as: Int32.self))
        case .int64: .int64(RawValues.littleEndian(bytes, count: count, as: Int64.self))
        case .fp32: .float32(RawValues.littleEndian(bytes, count: count, as: Float.self))
        default: .float64(RawValues.littleEndian(bytes, count: count, as: Double.self))
        }
    }

    static func name(_ type: Apus_V1_DataType) -> String {
        switch type {
        case .bool: "BOOL"
        case .int32: "INT32"
        case .int64: "INT64"
        case .fp32: "FP32"
        case .fp64: "FP64"
        case .unspecified: "DATATYPE_UNSPECIFIED"
        case .UNRECOGNIZED(let n): "unknown (\(n))"
        }
    }

    static func encodeTensor(name: String, _ tensor: Tensor) -> Apus_V1_Tensor {
        var out = Apus_V1_Tensor()
        out.name = name
        out.shape = tensor.shape.map { Int64($0) }
        out.datatype = datatype(of: tensor)
        out.rawContents = Data(KServeJSONCodec.rawBytes(tensor))
        return out
    }

    /// Written field by field with `ProtobufWriter`, byte for byte what swift-protobuf writes
    /// for the same `Apus_V1_InferResponse` (ProtobufCodecTests compares them): one size pass,
    /// then one buffer of exactly that size filled in order.
    public static func encodeResponse(_ answer: InferResponse) -> [UInt8] {
        // The size pass and the writes disagreeing would be a bug here; the generated encoder
        // still answers correctly.
        encodeResponseDirectly(answer) ?? encodeResponseWithGeneratedCode(answer)
    }

    /// nil only if the size pass and the writes disagree (tests hold it to never).
    static func encodeResponseDirectly(_ answer: InferResponse) -> [UInt8]? {
        // Answers cut from a batch (all but a lone request's) are written from the batch's template.
        if let bytes = ProtobufAnswerTemplate.encode(answer) { return bytes }
        return encodeWithoutTemplate(answer)
    }

    /// The general writer: every field sized, then written (what templates are built from).
    static func encodeWithoutTemplate(_ answer: InferResponse) -> [UInt8]? {
        typealias W = ProtobufWriter
        // The request's rows are written straight from the batch's arrays (`OutputRows`).
        let rows = answer.rows
        let outputs = rows.batch
        // The size pass reads each output once and keeps what the writes need in a plan on the
        // stack; the write pass reads each output once more (every read of an output retains
        // and releases its name, shape and data). BOOL and BYTES outputs are converted to raw
        // bytes once, into the plan; numeric outputs are written straight from their arrays.
        return withUnsafeTemporaryAllocation(of: OutputPlan.self, capacity: outputs.count) { plans in
            let version = String(answer.version)
            var size = W.stringSize(1, answer.model) + W.stringSize(2, version) + W.stringSize(3, answer.variant ?? "")
                + W.stringSize(4, answer.id ?? "") + W.packedInt64Size(6, answer.classLabels ?? [])
            for k in outputs.indices {
                let output = outputs[k]
                let window = rows.window(of: output.tensor)
                let width = rawWidth(output.tensor)
                let converted = isNumeric(output.tensor) ? nil : KServeJSONCodec.rawBytes(rows.tensor(k))
                let datatype = datatype(of: output.tensor).rawValue
                let payload = tensorPayloadSize(name: output.name, datatype: datatype, shape: RowShape(output.tensor.shape, window.firstDimension),
                                                rawCount: converted?.count ?? window.elements.count * width)
                plans.initializeElement(at: k, to: OutputPlan(payload: payload, datatype: datatype, firstDimension: window.firstDimension,
                                                              bytes: (window.elements.lowerBound * width)..<(window.elements.upperBound * width),
                                                              converted: converted))
                size += W.messageSize(5, payload: payload)
            }
            defer { _ = plans.deinitialize() }
            return W.bytes(size: size) { writer in
                writer.string(1, answer.model)
                writer.string(2, version)
                writer.string(3, answer.variant ?? "")
                writer.string(4, answer.id ?? "")
                for k in outputs.indices {
                    let output = outputs[k]
                    let plan = plans[k]
                    writeTensorHead(&writer, payload: plan.payload, name: output.name, datatype: plan.datatype,
                                    shape: RowShape(output.tensor.shape, plan.firstDimension))
                    let bytes = plan.bytes
                    switch output.tensor.data {
                    case .float32(let v): v.withUnsafeBytes { writer.lengthDelimited(4, UnsafeRawBufferPointer(rebasing: $0[bytes])) }
                    case .float64(let v): v.withUnsafeBytes { writer.lengthDelimited(4, UnsafeRawBufferPointer(rebasing: $0[bytes])) }
                    case .int64(let v): v.withUnsafeBytes { writer.lengthDelimited(4, UnsafeRawBufferPointer(rebasing: $0[bytes])) }
                    case .int32(let v): v.withUnsafeBytes { writer.lengthDelimited(4, UnsafeRawBufferPointer(rebasing: $0[bytes])) }
                    case .bool, .string: (plan.converted ?? []).withUnsafeBytes { writer.lengthDelimited(4, $0) }
                    }
                }
                writer.packedInt64(6, answer.classLabels ?? [])
            }
        }
    }

    /// The payload size of an output's `Tensor` message (name, datatype, shape, then
    /// `rawCount` bytes of raw contents), shared by the general writer and answer templates.
    static func tensorPayloadSize(name: String, datatype: Int, shape: RowShape, rawCount: Int) -> Int {
        typealias W = ProtobufWriter
        return W.stringSize(1, name) + W.enumSize(2, datatype) + W.packedInt64Size(3, shape) + W.lengthDelimitedSize(4, count: rawCount)
    }

    /// An output's `Tensor` message up to its raw contents: key and length, name, datatype, shape.
    static func writeTensorHead(_ writer: inout ProtobufWriter, payload: Int, name: String, datatype: Int, shape: RowShape) {
        writer.messageHeader(5, size: payload)
        writer.string(1, name)
        writer.enumValue(2, datatype)
        writer.packedInt64(3, shape)
    }

    /// What the write pass needs of one output, worked out by the size pass.
    struct OutputPlan {
        /// Bytes of the output's `Tensor` message, without its key and length.
        let payload: Int
        let datatype: Int
        /// The request's row count when the output is cut to its rows (nil: its own shape).
        let firstDimension: Int?
        /// The request's values in the output's data, in bytes (numeric outputs).
        let bytes: Range<Int>
        /// BOOL and BYTES outputs: the request's values as raw bytes, converted once.
        let converted: [UInt8]?
    }

    /// A shape with its first dimension replaced by a request's row count (its window of a batch
    /// output; nil: the shape as it is), as a collection, so it is sized and written without
    /// building an array per answer.
    struct RowShape: RandomAccessCollection {
        let shape: [Int]
        let firstDimension: Int?
        init(_ shape: [Int], _ firstDimension: Int?) {
            self.shape = shape
            self.firstDimension = firstDimension
        }
        var startIndex: Int { 0 }
        var endIndex: Int { shape.count }
        subscript(i: Int) -> Int { i == 0 ? firstDimension ?? shape[0] : shape[i] }
    }

    /// Whether the tensor's array is its raw contents (BOOL and BYTES are converted).
    static func isNumeric(_ tensor: Tensor) -> Bool {
        switch tensor.data {
        case .float32, .float64, .int64, .int32: true
        case .bool, .string: false
        }
    }

    /// Bytes per element of a numeric tensor's raw contents.
    static func rawWidth(_ tensor: Tensor) -> Int {
        switch tensor.data {
        case .float32, .int32: 4
        case .float64, .int64: 8
        case .bool, .string: 1
        }
    }

    static func datatype(of tensor: Tensor) -> Apus_V1_DataType {
        switch tensor.data {
        case .float32: return .fp32
        case .float64: return .fp64
        case .int64: return .int64
        case .int32: return .int32
        case .bool: return .bool
        case .string: return .unspecified
        }
    }

    /// The same answer through swift-protobuf's generated code: the reference `encodeResponse` is
    /// checked against.
    static func encodeResponseWithGeneratedCode(_ answer: InferResponse) -> [UInt8] {
        var message = Apus_V1_InferResponse()
        message.model = answer.model
        message.version = String(answer.version)
        message.variant = answer.variant ?? ""
        message.id = answer.id ?? ""
        message.outputs = answer.outputs.map { encodeTensor(name: $0.name, $0.tensor) }
        message.classLabels = answer.classLabels ?? []
        return (try? message.serializedBytes()) ?? []
    }

    public static func encodeError(_ error: ApusError) -> [UInt8] {
        var message = Apus_V1_Error()
        message.code = error.code.rawValue
        message.message = error.message
        return (try? message.serializedBytes()) ?? []
    }
}
