import ApusCore
import ApusInference
import ApusRuntime

/// The KServe v2 / Open Inference Protocol REST codec, with the binary-data extension
/// (`Inference-Header-Content-Length`: a JSON header, then raw little-endian tensor bytes in input
/// order for inputs that declare `parameters.binary_data_size`).
///
/// Every malformed request is an `ApusError(.badRequest)` naming the tensor and field. Stateless.
public enum KServeJSONCodec {
    public static let contentType = "application/json"
    public static let headerLengthField = "inference-header-content-length"

    /// Decodes an infer request body. `jsonLength`: the extension header, nil for plain JSON.
    public static func decodeRequest(_ body: [UInt8], jsonLength: Int?, model: String, version: VersionSelector?) throws -> InferRequest {
        let headerEnd = jsonLength ?? body.count
        guard headerEnd >= 0, headerEnd <= body.count else {
            throw ApusError(.badRequest, "Inference-Header-Content-Length \(headerEnd) exceeds the body (\(body.count) bytes)")
        }
        let json = try JSONValue.parse(body[0..<headerEnd])
        guard case .object = json else { throw ApusError(.badRequest, "request body must be a JSON object") }
        guard case .array(let inputs)? = json["inputs"], !inputs.isEmpty else {
            throw ApusError(.badRequest, "\"inputs\" must be a non-empty array")
        }
        var binaryOffset = headerEnd
        var decoded: [InferRequest.Input] = []
        for (index, input) in inputs.enumerated() {
            guard case .string(let name)? = input["name"] else { throw ApusError(.badRequest, "inputs[\(index)].name must be a string") }
            guard case .string(let datatype)? = input["datatype"] else { throw ApusError(.badRequest, "input \(name): datatype must be a string") }
            guard case .array(let shapeValues)? = input["shape"] else { throw ApusError(.badRequest, "input \(name): shape must be an array") }
            var shape: [Int] = []
            for dim in shapeValues {
                guard case .number(let d) = dim, d >= 0, d == d.rounded(), d < 1e9 else {
                    throw ApusError(.badRequest, "input \(name): shape must hold non-negative integers below 10^9")
                }
                shape.append(Int(d))
            }
            // Checked, not wrapped: a product that wrapped to a small number passed this bound
            // and then trapped where the tensor was built.
            guard let count = Tensor.boundedElementCount(shape) else {
                throw ApusError(.badRequest, "input \(name): \(Tensor.overLimit(shape))")
            }
            let tensor: Tensor
            if case .number(let size)? = input["parameters"]?["binary_data_size"] {
                guard jsonLength != nil else {
                    throw ApusError(.badRequest, "input \(name): binary_data_size needs the Inference-Header-Content-Length header")
                }
                guard size >= 0, size == size.rounded() else {
                    throw ApusError(.badRequest, "input \(name): binary_data_size must be a whole number of bytes, got \(JSONValue.format(size))")
                }
                // Compared as a Double: Int(_:) traps beyond Int's range, and 1e300 is valid JSON.
                guard size <= Double(body.count - binaryOffset) else {
                    throw ApusError(.badRequest, "input \(name): binary_data_size \(JSONValue.format(size)) runs past the end of the body")
                }
                let n = Int(size)
                tensor = try binaryTensor(Array(body[binaryOffset..<(binaryOffset + n)]), datatype: datatype, shape: shape, count: count, name: name)
                binaryOffset += n
            } else {
                guard let data = input["data"] else { throw ApusError(.badRequest, "input \(name): data is missing") }
                tensor = try jsonTensor(data, datatype: datatype, shape: shape, count: count, name: name)
            }
            decoded.append(InferRequest.Input(name: name, tensor: tensor))
        }
        guard binaryOffset == body.count else {
            throw ApusError(.badRequest, "\(body.count - binaryOffset) bytes after the last binary input")
        }
        // Optional fields of the wrong type are refused, not ignored: a client that sent
        // `"outputs": "label"` or a numeric id would otherwise get all outputs, or another id,
        // without a word.
        var requested: [String: Bool] = [:]
        switch json["outputs"] {
        case nil, .null?: break
        case .array(let outputs)?:
            for (index, output) in outputs.enumerated() {
                guard case .string(let name)? = output["name"] else { throw ApusError(.badRequest, "outputs[\(index)].name must be a string") }
                switch output["parameters"]?["binary_data"] {
                case nil, .null?: requested[name] = false
                case .bool(let binary)?: requested[name] = binary
                default: throw ApusError(.badRequest, "outputs[\(index)].parameters.binary_data must be true or false")
                }
            }
        default: throw ApusError(.badRequest, "\"outputs\" must be an array")
        }
        switch json["parameters"] {
        case nil, .null?, .object?: break
        default: throw ApusError(.badRequest, "\"parameters\" must be an object")
        }
        let id = try JSONValue.optionalString(json["id"], field: "id")
        let routingKey = try JSONValue.optionalString(json["parameters"]?["routing_key"], field: "parameters.routing_key")
        return InferRequest(model: model, version: version, id: id, routingKey: routingKey, inputs: decoded, requestedOutputs: requested,
                            timeoutMicroseconds: try timeout(json["parameters"]?["timeout"]))
    }

    /// `parameters.timeout`: whole microseconds, as Triton's clients send it; 0 means none
    /// (Triton's default). Anything else is refused rather than ignored, so a client never
    /// believes a deadline holds that does not.
    static func timeout(_ value: JSONValue?) throws -> UInt64? {
        guard let value else { return nil }
        guard case .number(let us) = value, us >= 0, us == us.rounded(), us < Double(InferRequest.maxTimeoutMicroseconds) else {
            throw ApusError(.badRequest, "parameters.timeout must be a whole number of microseconds below one day (0: none)")
        }
        return us == 0 ? nil : UInt64(us)
    }

    static func flatten(_ value: JSONValue, into out: inout [JSONValue], name: String) throws {
        if case .array(let items) = value {
            for item in items { try flatten(item, into: &out, name: name) }
        } else {
            out.append(value)
        }
    }

    public static func jsonTensor(_ data: JSONValue, datatype: String, shape: [Int], count: Int, name: String) throws -> Tensor {
        var flat: [JSONValue] = []
        // Capped: `count` is what the shape claims, not what the body holds, and a short body
        // claiming 10^8 values must not reserve gigabytes before the mismatch is found.
        flat.reserveCapacity(min(count, 1 << 16))
        try flatten(data, into: &flat, name: name)
        guard flat.count == count else {
            throw ApusError(.badRequest, "input \(name): shape \(shape) needs \(count) values, data has \(flat.count)")
        }
        /// `missingAllowed`: JSON has no NaN, so `null` is a missing value (NaN) in float data
        /// (PROTOCOL.md §4); integers have no missing value.
        func numbers(missingAllowed: Bool = false) throws -> [Double] {
            try flat.enumerated().map { i, v in
                switch v {
                case .number(let d): return d
                case .null where missingAllowed: return .nan
                default: throw ApusError(.badRequest, "input \(name): data[\(i)] is not a number")
                }
            }
        }
        let tensorData: Tensor.Data
        switch datatype {
        case "FP32": tensorData = .float32(try numbers(missingAllowed: true).map { Float($0) })
        case "FP64": tensorData = .float64(try numbers(missingAllowed: true))
        case "INT64":
            tensorData = .int64(try numbers().enumerated().map { i, d in
                guard d == d.rounded(), let v = Int64(exactly: d) else { throw ApusError(.badRequest, "input \(name): data[\(i)] is not an INT64") }
                return v
            })
        case "INT32":
            tensorData = .int32(try numbers().enumerated().map { i, d in
                guard d == d.rounded(), let v = Int32(exactly: d) else { throw ApusError(.badRequest, "input \(name): data[\(i)] is not an INT32") }
                return v
            })
        case "BOOL":
            tensorData = .bool(try flat.enumerated().map { i, v in
                guard case .bool(let b) = v else { throw ApusError(.badRequest, "input \(name): data[\(i)] is not a boolean") }
                return b
            })
        default:
            throw ApusError(.badRequest, "input \(name): datatype \(datatype) is not supported (FP32, FP64, INT32, INT64, BOOL)")
        }
        return try Tensor(shape: shape, data: tensorData)
    }

    /// `count`: the shape's element count as the caller bounded it (`Tensor.boundedElementCount`),
    /// as for `jsonTensor`.
    public static func binaryTensor(_ bytes: [UInt8], datatype: String, shape: [Int], count: Int, name: String) throws -> Tensor {
        let size: Int
        switch datatype {
        case "FP32", "INT32": size = 4
        case "FP64", "INT64": size = 8
        case "BOOL": size = 1
        default: throw ApusError(.badRequest, "input \(name): datatype \(datatype) is not supported in binary form")
        }
        guard bytes.count == count * size else {
            throw ApusError(.badRequest, "input \(name): shape \(shape) of \(datatype) needs \(count * size) bytes, binary_data_size is \(bytes.count)")
        }
        func load<T: BitwiseCopyable>(_: T.Type) -> [T] {
            bytes.withUnsafeBytes { RawValues.littleEndian($0, count: count, as: T.self) }
        }
        let data: Tensor.Data
        switch datatype {
        case "FP32": data = .float32(load(Float.self))
        case "FP64": data = .float64(load(Double.self))
        case "INT32": data = .int32(load(Int32.self))
        case "INT64": data = .int64(load(Int64.self))
        default: data = .bool(bytes.map { $0 != 0 })
        }
        return try Tensor(shape: shape, data: data)
    }

    public static func datatype(_ type: Tensor.ElementType) -> String {
        switch type {
        case .float32: "FP32"
        case .float64: "FP64"
        case .int64: "INT64"
        case .int32: "INT32"
        case .bool: "BOOL"
        case .string: "BYTES"
        }
    }

    /// Encodes a response. Outputs requested with `binary_data: true` go after the JSON header;
    /// then the returned `headerLength` must be sent as Inference-Header-Content-Length.
    public static func encodeResponse(_ response: InferResponse, binaryOutputs: Set<String>) -> (body: [UInt8], headerLength: Int?) {
        var json = "{\"model_name\":\(JSONString.quote(response.model)),\"model_version\":\"\(response.version)\""
        if let id = response.id { json += ",\"id\":\(JSONString.quote(id))" }
        if let variant = response.variant { json += ",\"parameters\":{\"variant\":\(JSONString.quote(variant))}" }
        json += ",\"outputs\":["
        var binary: [UInt8] = []
        for (i, output) in response.outputs.enumerated() {
            if i > 0 { json += "," }
            let t = output.tensor
            json += "{\"name\":\(JSONString.quote(output.name)),\"datatype\":\"\(datatype(t.elementType))\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))]"
            if binaryOutputs.contains(output.name) {
                let bytes = rawBytes(t)
                json += ",\"parameters\":{\"binary_data_size\":\(bytes.count)}}"
                binary.append(contentsOf: bytes)
            } else {
                json += ",\"data\":["
                appendData(t.data, to: &json)
                json += "]}"
            }
        }
        json += "]"
        if let labels = response.classLabels {
            json += ",\"class_labels\":[\(labels.map(String.init).joined(separator: ","))]"
        }
        json += "}"
        if binary.isEmpty { return (Array(json.utf8), nil) }
        let header = Array(json.utf8)
        return (header + binary, header.count)
    }

    public static func appendData(_ data: Tensor.Data, to json: inout String) {
        switch data {
        case .float32(let v): json += v.map { $0.isFinite ? "\($0)" : "null" }.joined(separator: ",")
        case .float64(let v): json += v.map { JSONValue.format($0) }.joined(separator: ",")
        case .int64(let v): json += v.map(String.init).joined(separator: ",")
        case .int32(let v): json += v.map(String.init).joined(separator: ",")
        case .bool(let v): json += v.map { $0 ? "true" : "false" }.joined(separator: ",")
        case .string(let v): json += v.map(JSONString.quote).joined(separator: ",")
        }
    }

    public static func rawBytes(_ t: Tensor) -> [UInt8] {
        func bytes<T>(_ v: [T]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }
        switch t.data {
        case .float32(let v): return bytes(v)
        case .float64(let v): return bytes(v)
        case .int64(let v): return bytes(v)
        case .int32(let v): return bytes(v)
        case .bool(let v): return v.map { $0 ? 1 : 0 }
        case .string(let v): return v.flatMap { s -> [UInt8] in
            let utf8 = Array(s.utf8)
            let n = UInt32(utf8.count).littleEndian
            return withUnsafeBytes(of: n) { Array($0) } + utf8
        }
        }
    }
}
