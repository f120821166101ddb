import ApusInference
import ApusRuntime
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The decoded form of a protobuf request body, reused for the next bodies that differ from it
/// only in their tensor's values.
///
/// A client sending batch-1 requests sends the same bytes every time but the raw contents of its
/// one input: same model field, input name, datatype and shape. Parsing those bytes again and
/// building the request's inputs, shape and output map from them was about 15% of the request
/// path (`apus bench-route`, logreg). A template keeps the bytes of a body before and after its
/// raw contents and what they decoded to; a body with exactly those bytes there decodes to that
/// request with its own values. That is what the full decoder answers for it: the bytes
/// before the raw contents fix its length, and every field, check and error of the decoder
/// depends only on those bytes, the raw contents' length and the route's model and selector
/// (matched too); the values are converted, never judged (finiteness is the model's check).
///
/// Built only from bodies the in-place decoder read (their raw contents are a slice of the body
/// at its position) with a single input. Immutable but for its use flag; kept per thread
/// (`CodecScratch`), so never shared.
final class ProtobufRequestTemplate {
    private let before: [UInt8]
    private let after: [UInt8]
    private let rawBytes: Int
    private let model: String
    private let selector: VersionSelector?
    /// The request the template's body decoded to, without its input (each body brings its
    /// own; a template keeps no tensor alive, however large its body was). Field by field:
    /// taking them from a stored `InferRequest` cost ~70 instructions more per decode (callgrind).
    private let requestModel: String
    private let version: VersionSelector?
    private let id: String?
    private let routingKey: String?
    private let requestedOutputs: [String: Bool]
    private let deadline: UInt64?
    private let timeoutMicroseconds: UInt64?
    private let name: String
    private let shape: [Int]
    private let datatype: Apus_V1_DataType
    private let count: Int
    /// Whether a body was decoded through the template since the last one that was not.
    var usedSinceMiss = false

    private init?(_ body: [UInt8], wire: WireInferRequest, request: InferRequest, model: String, selector: VersionSelector?) {
        guard wire.inputs.count == 1, request.inputs.count == 1 else { return nil }
        let raw = wire.inputs[0].raw
        // The general decoder's slices are copies indexed from 0: only the in-place decoder's
        // are positions in the body.
        guard !raw.isEmpty, raw.startIndex > 0, raw.endIndex <= body.count else { return nil }
        before = Array(body[..<raw.startIndex])
        after = Array(body[raw.endIndex...])
        rawBytes = raw.count
        self.model = model
        self.selector = selector
        requestModel = request.model
        version = request.version
        id = request.id
        routingKey = request.routingKey
        requestedOutputs = request.requestedOutputs
        deadline = request.deadline
        timeoutMicroseconds = request.timeoutMicroseconds
        name = request.inputs[0].name
        shape = request.inputs[0].tensor.shape
        datatype = wire.inputs[0].datatype
        count = request.inputs[0].tensor.count
    }

    /// `body` decoded through this template, or nil when it differs from the template's body
    /// outside the raw contents (or the route's model or selector differ).
    private func decode(_ body: [UInt8], model: String, selector: VersionSelector?) -> InferRequest? {
        guard body.count == before.count + rawBytes + after.count, model == self.model, selector == self.selector else { return nil }
        let data: Tensor.Data? = body.withUnsafeBytes { all in
            guard Self.same(all, from: 0, as: before), Self.same(all, from: before.count + rawBytes, as: after) else { return nil }
            return ProtobufCodec.tensorData(UnsafeRawBufferPointer(rebasing: all[before.count..<before.count + rawBytes]), datatype: datatype, count: count)
        }
        guard let data, let tensor = try? Tensor(shape: shape, data: data) else { return nil }
        return InferRequest(model: requestModel, version: version, id: id, routingKey: routingKey,
                            inputs: [NamedTensor(name: name, tensor: tensor)], requestedOutputs: requestedOutputs,
                            deadline: deadline, timeoutMicroseconds: timeoutMicroseconds)
    }

    /// Whether `bytes` hold `expected` at `start` (the caller checked the lengths).
    private static func same(_ bytes: UnsafeRawBufferPointer, from start: Int, as expected: [UInt8]) -> Bool {
        expected.withUnsafeBytes { expected in
            guard let base = bytes.baseAddress, let other = expected.baseAddress else { return expected.isEmpty }
            return memcmp(base + start, other, expected.count) == 0
        }
    }

    /// `body` decoded, through `scratch`'s template when it matches, else by the full decoder,
    /// whose answer becomes the template when the body has the layout of the previous one.
    /// A template that was not used before the next full decode is dropped, and the next
    /// `backoff` bodies build none: bodies that differ every time (an id in each) do not pay
    /// for a template per request.
    static func decode(_ body: [UInt8], model: String, selector: VersionSelector?, scratch: CodecScratch) throws -> InferRequest {
        if let template = scratch.requestTemplate, let decoded = template.decode(body, model: model, selector: selector) {
            template.usedSinceMiss = true
            return decoded
        }
        let wire = try ProtobufCodec.parseRequest(body)
        let decoded = try ProtobufCodec.request(from: wire, model: model, selector: selector)
        if let template = scratch.requestTemplate {
            if template.usedSinceMiss {
                template.usedSinceMiss = false
            } else {
                scratch.requestTemplate = nil
                scratch.requestBackoff = backoff
            }
        }
        let layout = (size: body.count, rawStart: wire.inputs.first?.raw.startIndex ?? -1)
        if scratch.requestBackoff > 0 {
            scratch.requestBackoff -= 1
        } else if scratch.requestTemplate == nil, layout == scratch.lastLayout {
            scratch.requestTemplate = ProtobufRequestTemplate(body, wire: wire, request: decoded, model: model, selector: selector)
        }
        scratch.lastLayout = layout
        return decoded
    }

    /// Full decodes without building a template after one went unused.
    static let backoff = 64
}
