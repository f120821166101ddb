import ApusCore
import ApusInference
import ApusRuntime
import Foundation
import SwiftProtobuf

/// The client side of both wire formats: requests out, responses in. Used by `ApusClient`, the
/// CLI and the load-test harness. Stateless.
public enum ClientCodec {
    /// Serialises `request` (model/version travel in the path; the body repeats nothing else).
    public static func encodeRequest(_ request: InferRequest, format: WireFormat) -> [UInt8] {
        switch format {
        case .protobuf:
            var message = Apus_V1_InferRequest()
            message.id = request.id ?? ""
            message.routingKey = request.routingKey ?? ""
            message.inputs = request.inputs.map { ProtobufCodec.encodeTensor(name: $0.name, $0.tensor) }
            message.outputs = request.requestedOutputs.keys.sorted()
            return (try? message.serializedBytes()) ?? []
        case .json:
            var json = "{"
            if let id = request.id { json += "\"id\":\(JSONString.quote(id))," }
            if let key = request.routingKey { json += "\"parameters\":{\"routing_key\":\(JSONString.quote(key))}," }
            json += "\"inputs\":["
            for (i, input) in request.inputs.enumerated() {
                if i > 0 { json += "," }
                let t = input.tensor
                json += "{\"name\":\(JSONString.quote(input.name)),\"datatype\":\"\(KServeJSONCodec.datatype(t.elementType))\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data\":["
                KServeJSONCodec.appendData(t.data, to: &json)
                json += "]}"
            }
            json += "]"
            if !request.requestedOutputs.isEmpty {
                json += ",\"outputs\":[" + request.requestedOutputs.keys.sorted().map { "{\"name\":\(JSONString.quote($0))}" }.joined(separator: ",") + "]"
            }
            return Array((json + "}").utf8)
        }
    }

    /// The path of an infer request.
    public static func inferPath(model: String, version: VersionSelector?) -> String {
        switch version {
        case nil: "/v2/models/\(model)/infer"
        case .version(let v)?: "/v2/models/\(model)/versions/\(v)/infer"
        case .label(let l)?: "/v2/models/\(model)/labels/\(l)/infer"
        }
    }

    /// Decodes a 200 answer, or throws the server's error (code and message) for any other status.
    public static func decodeResponse(status: Int, contentType: String?, body: [UInt8], headerLength: Int? = nil) throws -> InferResponse {
        let isProtobuf = contentType?.hasPrefix(WireFormat.protobufContentType) ?? false
        guard status == 200 else {
            if isProtobuf, let error = try? Apus_V1_Error(serializedBytes: body) {
                throw ApusError(ApusError.Code(rawValue: error.code) ?? .internalError, "HTTP \(status): \(error.message)")
            }
            var message = String(decoding: body.prefix(500), as: UTF8.self)
            var code = ApusError.Code.allCases.first { $0.httpStatus == status } ?? .internalError
            if let json = try? JSONValue.parse(body) {
                if case .string(let m)? = json["error"] { message = m }
                if case .string(let c)? = json["code"], let known = ApusError.Code(rawValue: c) { code = known }
            }
            throw ApusError(code, "HTTP \(status): \(message)")
        }
        if isProtobuf {
            let message: Apus_V1_InferResponse
            do {
                message = try Apus_V1_InferResponse(serializedBytes: body)
            } catch {
                throw ApusError(.internalError, "the server's answer is not an apus.v1.InferResponse (\(error))")
            }
            let outputs = try message.outputs.enumerated().map { i, t in InferResponse.Output(name: t.name, tensor: try ProtobufCodec.decodeTensor(t, index: i)) }
            return InferResponse(model: message.model, version: Int(message.version) ?? -1, variant: message.variant.isEmpty ? nil : message.variant,
                                 id: message.id.isEmpty ? nil : message.id, outputs: outputs, classLabels: message.classLabels.isEmpty ? nil : message.classLabels)
        }
        let jsonEnd = headerLength ?? body.count
        guard jsonEnd <= body.count else { throw ApusError(.internalError, "Inference-Header-Content-Length exceeds the body") }
        let json = try JSONValue.parse(body[0..<jsonEnd])
        guard case .array(let outs)? = json["outputs"] else { throw ApusError(.internalError, "the answer has no outputs") }
        var offset = jsonEnd
        var outputs: [InferResponse.Output] = []
        for out in outs {
            guard case .string(let name)? = out["name"], case .string(let datatype)? = out["datatype"], case .array(let dims)? = out["shape"] else {
                throw ApusError(.internalError, "an output lacks name, datatype or shape")
            }
            // Int(exactly:), never Int(_:): a server's answer is input too, and Int(_:) traps on a
            // value beyond Int's range (1e300 is valid JSON).
            let shape = try dims.map { dim -> Int in
                guard case .number(let d) = dim, let n = Int(exactly: d), n >= 0 else {
                    throw ApusError(.internalError, "output \(name): shape must hold non-negative integers")
                }
                return n
            }
            guard let count = Tensor.boundedElementCount(shape) else { throw ApusError(.internalError, "output \(name): \(Tensor.overLimit(shape))") }
            if case .number(let size)? = out["parameters"]?["binary_data_size"] {
                guard let n = Int(exactly: size), n >= 0, n <= body.count - offset else {
                    throw ApusError(.internalError, "binary output \(name) runs past the body")
                }
                outputs.append(.init(name: name, tensor: try KServeJSONCodec.binaryTensor(Array(body[offset..<(offset + n)]), datatype: datatype, shape: shape, count: count, name: name)))
                offset += n
            } else if let data = out["data"] {
                outputs.append(.init(name: name, tensor: try KServeJSONCodec.jsonTensor(data, datatype: datatype, shape: shape, count: count, name: name)))
            }
        }
        var version = -1
        if case .string(let v)? = json["model_version"] { version = Int(v) ?? -1 }
        var model = ""
        if case .string(let m)? = json["model_name"] { model = m }
        var id: String?
        if case .string(let s)? = json["id"] { id = s }
        var variant: String?
        if case .string(let s)? = json["parameters"]?["variant"] { variant = s }
        var labels: [Int64]?
        if case .array(let values)? = json["class_labels"] {
            labels = try values.map {
                guard case .number(let d) = $0, let label = Int64(exactly: d) else { throw ApusError(.internalError, "class_labels must hold integers") }
                return label
            }
        }
        return InferResponse(model: model, version: version, variant: variant, id: id, outputs: outputs, classLabels: labels)
    }
}
