import ApusCore
import ApusInference

/// The body formats of the infer routes, chosen by `Content-Type` (request) and `Accept`
/// (response; default: the request's format). Stateless.
public enum WireFormat: Sendable, Equatable {
    /// KServe v2 JSON, with the binary-data extension.
    case json
    /// Apus protobuf (`apus.v1.InferRequest` / `InferResponse`, see proto-spec/).
    case protobuf

    public static let protobufContentType = "application/x-protobuf"

    public var contentType: String {
        switch self {
        case .json: KServeJSONCodec.contentType
        case .protobuf: Self.protobufContentType
        }
    }

    /// The request's format; a missing Content-Type is JSON (curl's default -d sends a form type,
    /// which is accepted as JSON too since KServe clients rarely set it). Others: 415.
    public static func forRequest(contentType: String?) throws -> WireFormat {
        guard let contentType else { return .json }
        // Fast paths: the exact values clients send.
        if contentType == protobufContentType { return .protobuf }
        if contentType == KServeJSONCodec.contentType { return .json }
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingSpaces().lowercased() } ?? ""
        switch mediaType {
        case "application/json", "application/x-www-form-urlencoded", "", "application/octet-stream", "text/plain": return .json
        case "application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf": return .protobuf
        default:
            throw ApusError(.unsupportedMediaType, "Content-Type \(mediaType) is not supported; send application/json or application/x-protobuf")
        }
    }

    /// The reply format from `Accept`, falling back to the request's.
    public static func forReply(accept: String?, request: WireFormat) -> WireFormat {
        guard let accept, accept != "*/*" else { return request }
        if accept == protobufContentType { return .protobuf }
        if accept == KServeJSONCodec.contentType { return .json }
        let types = accept.split(separator: ",").map { $0.split(separator: ";").first.map { $0.trimmingSpaces().lowercased() } ?? "" }
        if types.contains(where: { $0 == "application/x-protobuf" || $0 == "application/protobuf" }) {
            if request == .json, types.contains("application/json") { return .json }
            return .protobuf
        }
        if types.contains("application/json") { return .json }
        return request
    }

    public func decodeInferRequest(_ body: [UInt8], headers: HTTPFields, model: String, selector: VersionSelector?) throws -> InferRequest {
        switch self {
        case .json:
            var jsonLength: Int?
            if let text = headers[KServeJSONCodec.headerLengthField] {
                guard let n = Int(text), n >= 0 else {
                    throw ApusError(.badRequest, "Inference-Header-Content-Length must be a non-negative integer, got \(text)")
                }
                jsonLength = n
            }
            return try KServeJSONCodec.decodeRequest(body, jsonLength: jsonLength, model: model, version: selector)
        case .protobuf:
            return try ProtobufCodec.decodeRequest(body, model: model, selector: selector)
        }
    }

    /// The answer as a 200 response; `headerRoom` more headers fit without regrowing the list.
    public func encodeInferResponse(_ answer: InferResponse, binaryOutputs: Set<String>, headerRoom: Int = 0) -> Response {
        var headers = HTTPFields(capacity: 2 + headerRoom)
        switch self {
        case .json:
            let (body, headerLength) = KServeJSONCodec.encodeResponse(answer, binaryOutputs: binaryOutputs)
            headers.appendLowercased(name: "content-type", value: KServeJSONCodec.contentType)
            var response = Response(status: 200, headers: headers, body: body)
            if let headerLength {
                response.headers.replaceOrAdd(name: "content-type", value: "application/octet-stream")
                response.headers.add(name: KServeJSONCodec.headerLengthField, value: String(headerLength))
            }
            return response
        case .protobuf:
            headers.appendLowercased(name: "content-type", value: Self.protobufContentType)
            return Response(status: 200, headers: headers, body: ProtobufCodec.encodeResponse(answer))
        }
    }

    public func encodeError(_ error: ApusError) -> Response {
        switch self {
        case .json:
            return .error(error)
        case .protobuf:
            return Response(status: error.code.httpStatus, headers: HTTPFields([("content-type", Self.protobufContentType)]), body: ProtobufCodec.encodeError(error))
        }
    }
}
