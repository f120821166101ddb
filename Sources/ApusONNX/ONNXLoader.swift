import ApusRuntime
import Foundation
import SwiftProtobuf

/// Reads ONNX model files (IR versions 3-10) into a `CompiledModel`. The protobuf types stay
/// internal to this module: callers see only runtime types.
///
/// Validation at load: IR version and opsets in range (duplicate opset imports tolerated), every
/// node in a known domain, every tensor of a supported type; unsupported ops or attributes fail
/// in `CompiledModel` with the node and op named. Stateless; thread-safe.
public enum ONNXLoader {
    public static let supportedIRVersions: ClosedRange<Int64> = 3...10

    /// Loads and compiles the model at `path`.
    public static func load(path: String) throws -> CompiledModel {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw RuntimeError("cannot read \(path): \(error.localizedDescription)")
        }
        return try load(data: data, source: path)
    }

    public static func load(data: Data, source: String = "model") throws -> CompiledModel {
        try CompiledModel(graphSpec(data: data, source: source))
    }

    /// The format-independent graph of an ONNX file.
    public static func graphSpec(data: Data, source: String = "model") throws -> GraphSpec {
        let model: Onnx_ModelProto
        do {
            model = try Onnx_ModelProto(serializedBytes: data)
        } catch {
            throw RuntimeError("\(source) is not an ONNX model (protobuf decoding failed: \(error))")
        }
        guard supportedIRVersions.contains(model.irVersion) else {
            throw RuntimeError("\(source): ONNX IR version \(model.irVersion) is not supported (\(supportedIRVersions.lowerBound)-\(supportedIRVersions.upperBound))")
        }
        for opset in model.opsetImport {
            let domain = opset.domain.isEmpty ? "ai.onnx" : opset.domain
            guard domain == "ai.onnx" || domain == "ai.onnx.ml" else {
                throw RuntimeError("\(source): opset domain \(domain) is not supported")
            }
        }
        let graph = model.graph
        var initializers: [String: Tensor] = [:]
        for initializer in graph.initializer {
            initializers[initializer.name] = try tensor(initializer, context: "initializer \(initializer.name)")
        }
        let nodes = try graph.node.enumerated().map { position, node -> GraphSpec.Node in
            let label = node.name.isEmpty ? "#\(position) (\(node.opType))" : "\(node.name) (\(node.opType))"
            var domain = node.domain
            if domain == "ai.onnx" { domain = "" }
            guard domain.isEmpty || domain == "ai.onnx.ml" else {
                throw RuntimeError("node \(label): domain \(node.domain) is not supported")
            }
            var attributes: [String: GraphSpec.Attribute] = [:]
            for attribute in node.attribute {
                attributes[attribute.name] = try value(attribute, context: "node \(label) attribute \(attribute.name)")
            }
            return GraphSpec.Node(name: node.name, opType: node.opType, domain: domain, inputs: node.input, outputs: node.output, attributes: attributes)
        }
        return GraphSpec(
            inputs: graph.input.map(valueSpec), outputs: graph.output.map(valueSpec),
            initializers: initializers, nodes: nodes
        )
    }

    static func valueSpec(_ info: Onnx_ValueInfoProto) -> GraphSpec.ValueSpec {
        guard info.hasType, case .tensorType(let type)? = info.type.value else {
            return GraphSpec.ValueSpec(name: info.name, elementType: nil, shape: nil)
        }
        let shape: [Int?]? = type.hasShape ? type.shape.dim.map { dim in
            if case .dimValue(let v)? = dim.value, v >= 0 { return Int(v) }
            return nil
        } : nil
        return GraphSpec.ValueSpec(name: info.name, elementType: elementType(Int64(type.elemType)), shape: shape)
    }

    static func elementType(_ code: Int64) -> Tensor.ElementType? {
        switch code {
        case 1: .float32
        case 6: .int32
        case 7: .int64
        case 8: .string
        case 9: .bool
        case 11: .float64
        default: nil
        }
    }

    static func value(_ attribute: Onnx_AttributeProto, context: String) throws -> GraphSpec.Attribute {
        switch attribute.type {
        case .int: return .int(attribute.i)
        case .ints: return .ints(attribute.ints)
        case .float: return .float(attribute.f)
        case .floats: return .floats(attribute.floats)
        case .string: return .string(String(decoding: attribute.s, as: UTF8.self))
        case .strings: return .strings(attribute.strings.map { String(decoding: $0, as: UTF8.self) })
        case .tensor: return .tensor(try tensor(attribute.t, context: context))
        default:
            // IR 3 files may leave `type` unset: infer it from the populated field.
            if !attribute.ints.isEmpty { return .ints(attribute.ints) }
            if !attribute.floats.isEmpty { return .floats(attribute.floats) }
            if !attribute.strings.isEmpty { return .strings(attribute.strings.map { String(decoding: $0, as: UTF8.self) }) }
            if attribute.hasT { return .tensor(try tensor(attribute.t, context: context)) }
            if attribute.hasS { return .string(String(decoding: attribute.s, as: UTF8.self)) }
            if attribute.hasF { return .float(attribute.f) }
            if attribute.hasI { return .int(attribute.i) }
            throw RuntimeError("\(context): attribute type \(attribute.type) is not supported")
        }
    }

    static func tensor(_ proto: Onnx_TensorProto, context: String) throws -> Tensor {
        guard !proto.hasDataLocation || proto.dataLocation == .default else {
            throw RuntimeError("\(context): external tensor data is not supported")
        }
        let shape = proto.dims.map { Int($0) }
        // Each dimension is bounded, their product too: a corrupt or hostile model file must fail
        // its load, not trap in a multiplication and take the serving process with it.
        guard proto.dims.allSatisfy({ $0 >= 0 && $0 < 1 << 31 }), let count = Tensor.elementCount(shape), count < 1 << 40 else {
            throw RuntimeError("\(context): invalid dims \(proto.dims)")
        }
        let raw = proto.rawData
        func fromRaw<T>(_: T.Type) throws -> [T] {
            guard raw.count == count * MemoryLayout<T>.size else {
                throw RuntimeError("\(context): raw_data has \(raw.count) bytes for \(count) elements")
            }
            return raw.withUnsafeBytes { bytes in (0..<count).map { bytes.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self) } }
        }
        let data: Tensor.Data
        switch proto.dataType {
        case 1: data = .float32(raw.isEmpty ? proto.floatData : try fromRaw(Float.self))
        case 11: data = .float64(raw.isEmpty ? proto.doubleData : try fromRaw(Double.self))
        case 7: data = .int64(raw.isEmpty ? proto.int64Data : try fromRaw(Int64.self))
        case 6: data = .int32(raw.isEmpty ? proto.int32Data : try fromRaw(Int32.self))
        case 9: data = .bool(raw.isEmpty ? proto.int32Data.map { $0 != 0 } : try fromRaw(UInt8.self).map { $0 != 0 })
        case 8: data = .string(proto.stringData.map { String(decoding: $0, as: UTF8.self) })
        default: throw RuntimeError("\(context): tensor data type \(proto.dataType) is not supported")
        }
        do {
            return try Tensor(shape: shape, data: data)
        } catch let error as RuntimeError {
            throw RuntimeError("\(context): \(error.message)")
        }
    }
}
