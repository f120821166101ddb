import ApusCore
import ApusRuntime
import Dispatch
import Foundation

/// One loaded, validated and warmed model version, with its batcher. Immutable after init except
/// the in-flight counter; shared by all threads.
public final class ServedVersion: Sendable {
    public let model: String
    public let version: Int
    /// `version` as decimal text, made once: every answer names it in a header.
    public let versionText: String
    public let manifest: BundleManifest
    public let compiled: CompiledModel
    public let directory: String
    /// The bundle's reference sample (drift baseline, warm-up), if it ships one.
    public let reference: Tensor?
    /// Contents identity at load (`BundleLoader.fingerprint`).
    public let fingerprint: String
    let batcher: DynamicBatcher

    init(model: String, version: Int, loaded: BundleLoader.Loaded, directory: String, fingerprint: String, batching: BundleManifest.Batching?, workers: Int, inlineBudgetNanos: UInt64 = 0,
         observer: (any InferenceObserver)?) {
        self.model = model
        self.version = version
        self.versionText = String(version)
        self.manifest = loaded.manifest
        self.compiled = loaded.compiled
        self.reference = loaded.reference
        self.directory = directory
        self.fingerprint = fingerprint
        let manifest = loaded.manifest
        let compiled = loaded.compiled
        var configuration = BatcherStateMachine<UInt64>.Configuration()
        let settings = manifest.batching ?? batching
        configuration.maxBatchRows = max(1, settings?.maxBatchSize ?? 64)
        configuration.maxQueueDelayNanos = UInt64(max(0, settings?.maxQueueDelayMicroseconds ?? 100)) * 1000
        configuration.preferredBatchRows = settings?.preferredBatchSizes ?? []
        configuration.maxQueueRows = max(1, settings?.maxQueueRows ?? 8192)
        configuration.slots = max(1, workers)
        self.batcher = DynamicBatcher(compiled: compiled, configuration: configuration, model: model, version: version,
                                     inlineBudgetNanos: inlineBudgetNanos, observer: observer)
    }

    deinit {
        // The version's trees, weights and batch buffers are freed right after this body (stored
        // properties are released after deinit runs): give their pages back a moment later so RSS
        // returns to its baseline after swaps and unloads (see HeapTuning).
        DispatchQueue.global(qos: .utility).asyncAfter(deadline: .now() + .milliseconds(50)) {
            HeapTuning.releaseFreeMemory()
        }
    }

    /// Requests accepted and not yet answered (a draining version is unloaded at zero).
    public var inflightRequests: Int { batcher.inflightRequests }

    /// Rows waiting in this version's batch queue.
    public var queuedRows: Int { batcher.queuedRows }

    /// Validates the request against the model's inputs and queues it. `job.finish` runs once, on
    /// a worker thread (or an event loop running the batch inline); at once for invalid inputs.
    func submit(_ request: InferRequest, job: InferenceJob, isCancelled: (@Sendable () -> Bool)? = nil, cancellation: RequestContext? = nil) {
        let feeds: [NamedTensor]
        do {
            feeds = try orderedFeeds(request)
        } catch let error as ApusError {
            job.finish(.failure(error))
            return
        } catch {
            job.finish(.failure(ApusError(.badRequest, "\(error)")))
            return
        }
        batcher.submit(job, feeds: feeds, rows: request.rows, deadline: request.deadline, isCancelled: isCancelled, cancellation: cancellation)
    }

    /// The request's tensors in model input order, each checked: name, element type, rank, width.
    /// Inputs sent in model order (nearly always) come back as the request's own array.
    func orderedFeeds(_ request: InferRequest) throws -> [NamedTensor] {
        let expected = compiled.inputs
        let inputs = request.inputs
        // The common case, one input named as the model's: only its contents to check.
        if expected.count == 1, inputs.count == 1, inputs[0].name == expected[0].name {
            let rows = request.rows
            guard rows > 0 else { throw ApusError(.badRequest, "input \(inputs[0].name) has no rows") }
            try check(inputs[0].tensor, against: expected[0], rows: rows)
            return inputs
        }
        // Models take a handful of inputs: linear scans beat building a dictionary per request.
        // Bounded by the model, not the request: after `expected.count` distinct known names the
        // next input is a duplicate or unknown and throws.
        for (i, input) in inputs.enumerated() {
            if inputs[..<i].contains(where: { $0.name == input.name }) { throw ApusError(.badRequest, "input \(input.name) is given twice") }
            if !expected.contains(where: { $0.name == input.name }) {
                throw ApusError(.badRequest, "unknown input \(input.name); \(model) version \(version) takes \(expected.map(\.name).joined(separator: ", "))")
            }
        }
        let rows = request.rows
        guard rows > 0 else { throw ApusError(.badRequest, "input \(request.inputs.first?.name ?? "?") has no rows") }
        var inOrder = inputs.count == expected.count
        for (spec, input) in zip(expected, inputs) where spec.name != input.name { inOrder = false }
        if inOrder {
            for (spec, input) in zip(expected, inputs) { try check(input.tensor, against: spec, rows: rows) }
            return inputs
        }
        return try expected.map { spec -> NamedTensor in
            guard let tensor = inputs.first(where: { $0.name == spec.name })?.tensor else { throw ApusError(.badRequest, "input \(spec.name) is missing") }
            try check(tensor, against: spec, rows: rows)
            return NamedTensor(name: spec.name, tensor: tensor)
        }
    }

    /// One input against the model's spec: element type, rank, fixed dimensions, rows, finiteness.
    private func check(_ tensor: Tensor, against spec: GraphSpec.ValueSpec, rows: Int) throws {
        if tensor.elementType == .string { throw ApusError(.badRequest, "input \(spec.name): BYTES is not supported by this model") }
        guard tensor.count == 0 || tensor.shape.count >= 1 else { throw ApusError(.badRequest, "input \(spec.name): a scalar is not a batch") }
        if let shape = spec.shape {
            // Rank and fixed dimensions after the batch axis must match.
            guard tensor.shape.count == shape.count, zip(shape.dropFirst(), tensor.shape.dropFirst()).allSatisfy({ $0 == nil || $0 == $1 }) else {
                throw ApusError(.badRequest, "input \(spec.name): shape \(tensor.shape) does not match the model's [\(shape.map { $0.map(String.init) ?? "-1" }.joined(separator: ", "))]")
            }
        }
        guard tensor.shape.first == rows else {
            throw ApusError(.badRequest, "input \(spec.name): \(tensor.shape.first ?? 0) rows, other inputs have \(rows)")
        }
        if case .float32(let values) = tensor.data, values.contains(where: { $0.isInfinite }) {
            throw ApusError(.badRequest, "input \(spec.name): infinite values are not accepted")
        }
    }
}
