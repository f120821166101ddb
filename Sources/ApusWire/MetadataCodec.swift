import ApusCore
import ApusInference
import Foundation
import SwiftProtobuf

/// Protobuf bodies of the metadata, readiness and repository-index routes
/// (`proto-spec/apus/v1/model.proto`), for clients that send `Accept: application/x-protobuf`.
/// Stateless.
public enum MetadataCodec {
    public static func wantsProtobuf(_ accept: String?) -> Bool {
        guard let accept else { return false }
        return accept.contains(WireFormat.protobufContentType) || accept.contains("application/protobuf")
    }

    static func dataType(_ name: String) -> Apus_V1_DataType {
        switch name {
        case "BOOL": .bool
        case "INT32": .int32
        case "INT64": .int64
        case "FP32": .fp32
        case "FP64": .fp64
        default: .unspecified
        }
    }

    static func response(_ message: some SwiftProtobuf.Message, status: Int = 200) -> Response {
        Response(status: status, headers: HTTPFields([("content-type", WireFormat.protobufContentType)]), body: (try? message.serializedBytes()) ?? [])
    }

    public static func metadata(name: String, version: String, versions: [String], inputs: [BundleManifest.TensorSpec],
                                outputs: [BundleManifest.TensorSpec], labels: [String: String]) -> Response {
        func tensor(_ spec: BundleManifest.TensorSpec) -> Apus_V1_TensorMetadata {
            var t = Apus_V1_TensorMetadata()
            t.name = spec.name
            t.datatype = dataType(spec.datatype)
            t.shape = spec.shape.map(Int64.init)
            t.features = spec.features ?? []
            return t
        }
        var message = Apus_V1_ModelMetadata()
        message.name = name
        message.version = version
        message.versions = versions
        message.platform = "onnx"
        message.inputs = inputs.map(tensor)
        message.outputs = outputs.map(tensor)
        message.labels = labels
        return response(message)
    }

    public static func ready(name: String, ready: Bool) -> Response {
        var message = Apus_V1_ReadyResponse()
        message.name = name
        message.ready = ready
        return response(message, status: ready ? 200 : 503)
    }

    public static func index(_ entries: [(name: String, version: String, state: String, reason: String?)]) -> Response {
        var message = Apus_V1_RepositoryIndex()
        message.models = entries.map { entry in
            var e = Apus_V1_RepositoryEntry()
            e.name = entry.name
            e.version = entry.version
            e.state = entry.state
            e.reason = entry.reason ?? ""
            return e
        }
        return response(message)
    }
}
