import ApusRuntime

/// A tensor with its input or output name.
public struct NamedTensor: Sendable, Equatable {
    public var name: String
    public var tensor: Tensor
    public init(name: String, tensor: Tensor) {
        self.name = name
        self.tensor = tensor
    }
}

/// One inference request, whatever wire format carried it (KServe v2 JSON, its binary-data
/// extension, or Apus protobuf). Value type; built by the codecs, read by the service.
public struct InferRequest: Sendable {
    public typealias Input = NamedTensor

    public var model: String
    /// An explicit version ("3") or label ("stable"); nil: the model's default version.
    public var version: VersionSelector?
    public var id: String?
    public var routingKey: String?
    public var inputs: [Input]
    /// Output names wanted; empty: all. Per-output binary flag for the KServe binary extension.
    public var requestedOutputs: [String: Bool]
    /// Absolute deadline on the monotonic clock (nanoseconds): the route sets it from the
    /// timeout headers and `timeoutMicroseconds`, counted from the request's arrival.
    public var deadline: UInt64?
    /// A time budget the body gives (KServe JSON `parameters.timeout`, Triton's schedule-policy
    /// parameter, in microseconds); nil: none.
    public var timeoutMicroseconds: UInt64?

    /// The longest time budget a request may give (one day), in microseconds: larger values are
    /// refused as malformed, so budget arithmetic never overflows.
    public static let maxTimeoutMicroseconds: UInt64 = 86_400_000_000

    // Inlinable: the codecs build one per request from another module, and the opaque call
    // cost, with `InferResponse.init`'s, ~100 instructions a request (callgrind, logreg).
    @inlinable
    public init(model: String, version: VersionSelector? = nil, id: String? = nil, routingKey: String? = nil,
                inputs: [Input], requestedOutputs: [String: Bool] = [:], deadline: UInt64? = nil, timeoutMicroseconds: UInt64? = nil) {
        self.model = model
        self.version = version
        self.id = id
        self.routingKey = routingKey
        self.inputs = inputs
        self.requestedOutputs = requestedOutputs
        self.deadline = deadline
        self.timeoutMicroseconds = timeoutMicroseconds
    }

    /// Rows in this request (first dimension of the first input; 1 for a vector).
    public var rows: Int {
        guard let first = inputs.first?.tensor else { return 0 }
        return first.shape.count >= 2 ? first.shape[0] : 1
    }
}

/// Which version answers: a number or a label.
public enum VersionSelector: Sendable, Equatable, CustomStringConvertible {
    case version(Int)
    case label(String)

    public var description: String {
        switch self {
        case .version(let v): String(v)
        case .label(let l): l
        }
    }
}

/// The answer: outputs in the model's output order, plus who served it.
///
/// The outputs are kept as the batch left them (`rows`): an encoder that can write a window of
/// a tensor reads `rows` and copies nothing; `outputs` gives each its own tensor (copying the
/// request's rows out of the batch on every read, so read it once).
public struct InferResponse: Sendable {
    public typealias Output = NamedTensor

    public var model: String
    public var version: Int
    /// The A/B variant that served, when the model has a split.
    public var variant: String?
    public var id: String?
    /// The outputs as the batch returned them, with this request's rows.
    public var rows: OutputRows
    /// For classifiers: the class labels, in probability-column order.
    public var classLabels: [Int64]?

    public init(model: String, version: Int, variant: String? = nil, id: String?, outputs: [Output], classLabels: [Int64]?) {
        self.init(model: model, version: version, variant: variant, id: id, rows: OutputRows(whole: outputs), classLabels: classLabels)
    }

    // Inlinable for the same reason as `InferRequest.init`.
    @inlinable
    public init(model: String, version: Int, variant: String? = nil, id: String?, rows: OutputRows, classLabels: [Int64]?) {
        self.model = model
        self.version = version
        self.variant = variant
        self.id = id
        self.rows = rows
        self.classLabels = classLabels
    }

    /// The outputs, each a tensor of its own.
    public var outputs: [Output] {
        get { rows.tensors }
        set { rows = OutputRows(whole: newValue) }
    }
}
