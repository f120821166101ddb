import ApusInference
import ApusRuntime

/// The bytes that every protobuf answer cut from one batch shares, worked out once per batch.
///
/// Under load a batch of 32 single-row requests is answered 32 times with the same model,
/// version, output names, datatypes, shapes and class labels; only the request id and the
/// request's values differ. The first answer of a batch builds the template (with the same size
/// and write functions as the general encoder); the others copy its byte runs and write their id
/// and their rows' values between them, without a size pass and without reading every output's
/// name and shape again (each read of which retained and released it).
///
/// Invariants: a template holds its batch's outputs array, so an answer whose `rows.batch` has
/// the same storage is an answer of that very batch (arrays are immutable values: shared storage
/// means equal contents); it also matches the answer's model, version, variant, class labels and
/// row count before it is used. Numeric outputs only (BOOL and BYTES are converted per answer by
/// the general encoder). Immutable once built; the last one is kept per thread (`CodecScratch`),
/// so no locking (and each thread keeps one batch's outputs alive until it answers another batch).
final class ProtobufAnswerTemplate {
    private typealias W = ProtobufWriter

    /// How one output's values are cut from its batch array.
    private struct Output {
        /// Its `Tensor` message up to the raw contents: key and length, name, datatype, shape,
        /// and the raw contents' key and length (none of which depend on the request).
        let head: [UInt8]
        /// Raw bytes per row, or nil: the output is sent whole to every request.
        let bytesPerRow: Int?
        /// Raw bytes of the whole output (used when `bytesPerRow` is nil).
        let wholeBytes: Int
    }

    private let batch: [NamedTensor]
    private let batchRows: Int
    private let rowCount: Int
    private let model: String
    private let version: Int
    private let variant: String?
    private let classLabels: [Int64]?
    /// Fields 1-3: model, version, variant.
    private let head: [UInt8]
    private let outputs: [Output]
    /// Field 6: the class labels.
    private let tail: [UInt8]
    /// Every byte of an answer but its id field.
    private let size: Int

    private init?(_ answer: InferResponse) {
        let rows = answer.rows
        guard let range = rows.rows else { return nil }
        var outputs: [Output] = []
        var size = 0
        for output in rows.batch {
            let tensor = output.tensor
            guard ProtobufCodec.isNumeric(tensor) else { return nil }
            let width = ProtobufCodec.rawWidth(tensor)
            let window = rows.window(of: tensor)
            let dataBytes = window.elements.count * width
            let shape = ProtobufCodec.RowShape(tensor.shape, window.firstDimension)
            let datatype = ProtobufCodec.datatype(of: tensor).rawValue
            let payload = ProtobufCodec.tensorPayloadSize(name: output.name, datatype: datatype, shape: shape, rawCount: dataBytes)
            let headSize = W.messageSize(5, payload: payload) - dataBytes
            guard let head = W.bytes(size: headSize, { writer in
                ProtobufCodec.writeTensorHead(&writer, payload: payload, name: output.name, datatype: datatype, shape: shape)
                if dataBytes > 0 {
                    writer.key(4, 2)
                    writer.varint(UInt64(dataBytes))
                }
            }) else { return nil }
            outputs.append(Output(head: head, bytesPerRow: window.firstDimension == nil ? nil : dataBytes / max(range.count, 1),
                                  wholeBytes: tensor.count * width))
            size += headSize + dataBytes
        }
        let version = String(answer.version)
        let headSize = W.stringSize(1, answer.model) + W.stringSize(2, version) + W.stringSize(3, answer.variant ?? "")
        let tailSize = W.packedInt64Size(6, answer.classLabels ?? [])
        guard let head = W.bytes(size: headSize, { writer in
            writer.string(1, answer.model)
            writer.string(2, version)
            writer.string(3, answer.variant ?? "")
        }), let tail = W.bytes(size: tailSize, { writer in writer.packedInt64(6, answer.classLabels ?? []) }) else { return nil }
        self.batch = rows.batch
        self.batchRows = rows.batchRows
        self.rowCount = range.count
        self.model = answer.model
        self.version = answer.version
        self.variant = answer.variant
        self.classLabels = answer.classLabels
        self.head = head
        self.outputs = outputs
        self.tail = tail
        self.size = size + headSize + tailSize
    }

    /// Whether `answer` is one this template writes: same batch (by storage), same row count,
    /// same everything else that is written once.
    private func matches(_ answer: InferResponse) -> Bool {
        let rows = answer.rows
        guard let range = rows.rows, range.count == rowCount, rows.batchRows == batchRows,
              Self.sameStorage(rows.batch, batch) else { return false }
        return answer.version == version && answer.model == model && answer.variant == variant && answer.classLabels == classLabels
    }

    private static func sameStorage(_ a: [NamedTensor], _ b: [NamedTensor]) -> Bool {
        a.count == b.count && a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in x.baseAddress == y.baseAddress } }
    }

    /// `answer` written from the template; nil if it does not match (or a write disagreed with
    /// the sizes, which tests hold to never).
    private func encode(_ answer: InferResponse) -> [UInt8]? {
        guard matches(answer), let range = answer.rows.rows else { return nil }
        let id = answer.id ?? ""
        return W.bytes(size: size + W.stringSize(4, id)) { writer in
            head.withUnsafeBytes { writer.raw($0) }
            writer.string(4, id)
            for k in outputs.indices {
                let output = outputs[k]
                output.head.withUnsafeBytes { writer.raw($0) }
                let bytes = output.bytesPerRow.map { (range.lowerBound * $0)..<(range.upperBound * $0) } ?? 0..<output.wholeBytes
                guard !bytes.isEmpty else { continue }
                switch batch[k].tensor.data {
                case .float32(let v): v.withUnsafeBytes { writer.raw(UnsafeRawBufferPointer(rebasing: $0[bytes])) }
                case .float64(let v): v.withUnsafeBytes { writer.raw(UnsafeRawBufferPointer(rebasing: $0[bytes])) }
                case .int64(let v): v.withUnsafeBytes { writer.raw(UnsafeRawBufferPointer(rebasing: $0[bytes])) }
                case .int32(let v): v.withUnsafeBytes { writer.raw(UnsafeRawBufferPointer(rebasing: $0[bytes])) }
                case .bool, .string: writer.overflow()   // never: templates are numeric only
                }
            }
            tail.withUnsafeBytes { writer.raw($0) }
        }
    }

    /// `answer` through this thread's template, which is rebuilt when the answer belongs to
    /// another batch; nil when the answer cannot use a template (a lone request's whole outputs,
    /// BOOL or BYTES outputs): the general encoder writes those.
    static func encode(_ answer: InferResponse) -> [UInt8]? {
        guard answer.rows.rows != nil else { return nil }
        let slot = CodecScratch.current
        if let template = slot.answerTemplate, let bytes = template.encode(answer) { return bytes }
        // A template pays off from a batch's second answer: the first only notes its batch, so
        // answers that share no batch with the next (requested outputs filter the batch into a
        // new array each time) never build one. An address reused by a later batch only means
        // a template is built for it, which `matches` then checks against the batch it holds.
        let batch = answer.rows.batch.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        guard slot.lastBatch == batch else {
            slot.lastBatch = batch
            slot.batchRefused = false
            return nil
        }
        // A batch that cannot have one (BOOL or BYTES outputs) is tried once, not per answer.
        guard !slot.batchRefused, let template = ProtobufAnswerTemplate(answer) else {
            slot.batchRefused = true
            return nil
        }
        slot.answerTemplate = template
        return template.encode(answer)
    }
}
