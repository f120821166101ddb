import ApusRuntime

/// One request's share of a batch's outputs: the batch's tensors as the model returned them, and
/// the request's rows in them. Answering a single-row request from a batch of 32 used to copy a
/// slice of every output into arrays of its own (an allocation per output per request); the
/// protobuf encoder now writes the request's rows straight from the batch's arrays, and only
/// the answers that need tensors of their own (JSON, client code) copy them out, through
/// `tensors`.
///
/// An output is cut to `rows` when its first dimension is the batch's row count; any other
/// output (a model that returns something not per row) belongs whole to every request, as it
/// did before. Immutable value; shares the batch's arrays (copy-on-write), so any thread may
/// read it. Holding one keeps the whole batch's outputs alive: answers are short-lived.
public struct OutputRows: Sendable {
    /// The batch's outputs, named, in model output order.
    public let batch: [NamedTensor]
    /// This request's rows of the batch; nil: every output whole (the request was the batch).
    public let rows: Range<Int>?
    /// Rows in the batch: outputs whose first dimension is this are per row.
    public let batchRows: Int

    /// Outputs that belong to the request whole (a lone request's, a client's, a test's).
    public init(whole outputs: [NamedTensor]) {
        self.init(outputs, nil, 0)
    }

    /// Rows `rows` of a batch of `batchRows` rows.
    public init(batch: [NamedTensor], rows: Range<Int>, batchRows: Int) {
        self.init(batch, rows, batchRows)
    }

    private init(_ batch: [NamedTensor], _ rows: Range<Int>?, _ batchRows: Int) {
        self.batch = batch
        self.rows = rows
        self.batchRows = batchRows
    }

    /// The same rows of only the outputs `keep` accepts (requested outputs).
    public func filter(_ keep: (NamedTensor) -> Bool) -> OutputRows {
        OutputRows(batch.filter(keep), rows, batchRows)
    }

    /// Where output `k`'s values for this request lie in its data, and the first dimension its
    /// answer reports: nil when the output is sent whole, with its own shape.
    public func window(_ k: Int) -> (elements: Range<Int>, firstDimension: Int?) {
        window(of: batch[k].tensor)
    }

    /// `window` for an output already read from `batch` (each read retains its fields).
    public func window(of tensor: Tensor) -> (elements: Range<Int>, firstDimension: Int?) {
        guard let rows, tensor.shape.first == batchRows else { return (0..<tensor.count, nil) }
        let width = tensor.shape.dropFirst().reduce(1, *)
        return ((rows.lowerBound * width)..<(rows.upperBound * width), rows.count)
    }

    /// Output `k` as a tensor of its own (its rows copied out of the batch when cut).
    public func tensor(_ k: Int) -> Tensor {
        let tensor = batch[k].tensor
        guard let rows, tensor.shape.first == batchRows, rows.count != batchRows else { return tensor }
        return tensor.rows(rows)
    }

    /// Every output as a tensor of its own.
    public var tensors: [NamedTensor] {
        guard rows != nil else { return batch }
        return batch.indices.map { NamedTensor(name: batch[$0].name, tensor: tensor($0)) }
    }
}
