import ApusCore
import ApusRuntime

/// The serving path behind every infer route: resolves model + version/label on the current
/// snapshot, validates the inputs against the version's schema, queues the request on that
/// version's batcher, and shapes the answer (requested outputs, class labels, who served).
///
/// Holds no mutable state of its own; thread-safe. `completion` runs once, on a worker thread
/// (or at once, on the caller's thread, for requests rejected before queueing).
public final class InferenceService: Sendable {
    public let repository: ModelRepository

    public init(repository: ModelRepository) {
        self.repository = repository
    }

    /// The version that answers `selector` for `model`, or a 404/503 naming what is missing.
    public func resolve(model: String, selector: VersionSelector?) throws -> ServedVersion {
        try Self.resolve(model: model, selector: selector, in: repository.snapshot)
    }

    public static func resolve(model: String, selector: VersionSelector?, in snapshot: RepositorySnapshot) throws -> ServedVersion {
        guard let entry = snapshot.models[model] else {
            throw ApusError(.notFound, "model \(model) is not in the repository")
        }
        return try resolve(entry, selector: selector)
    }

    /// The version of a snapshot entry the route has already looked up that answers `selector`.
    public static func resolve(_ entry: RepositorySnapshot.Model, selector: VersionSelector?) throws -> ServedVersion {
        let model = entry.name
        switch selector {
        case nil:
            guard let served = entry.defaultVersion else {
                throw ApusError(.unavailable, "model \(model) has no ready version", retryAfterSeconds: 1)
            }
            return served
        case .version(let version)?:
            guard let served = entry.versions[version] else {
                throw ApusError(.notFound, "model \(model) has no ready version \(version)")
            }
            return served
        case .label(let label)?:
            guard let version = entry.labels[label] else {
                throw ApusError(.notFound, "model \(model) has no label \(label)")
            }
            guard let served = entry.versions[version] else {
                throw ApusError(.unavailable, "label \(label) of \(model) names version \(version), which is not ready", retryAfterSeconds: 1)
            }
            return served
        }
    }

    /// Runs `request` on `served` (already resolved, so the caller can report who serves).
    /// A request whose `cancellation` context is cancelled (or whose `isCancelled` says so) before
    /// its batch runs is answered 408 without running, and leaves the queue at once on cancel.
    public func infer(_ request: InferRequest, on served: ServedVersion, variant: String? = nil,
                      isCancelled: (@Sendable () -> Bool)? = nil, cancellation: RequestContext? = nil,
                      completion: @escaping @Sendable (Result<InferResponse, ApusError>) -> Void) {
        // The answer needs two of the request's fields: captured alone, not the whole request.
        let requested = request.requestedOutputs
        let id = request.id
        run(request, on: served, isCancelled: isCancelled, cancellation: cancellation) { result in
            completion(result.map { Self.answer($0, served: served, variant: variant, id: id, requested: requested) })
        }
    }

    /// `infer` without shaping the answer: `completion` gets this request's rows of the model's outputs,
    /// in model output order.
    public func run(_ request: InferRequest, on served: ServedVersion, isCancelled: (@Sendable () -> Bool)? = nil,
                    cancellation: RequestContext? = nil, completion: @escaping @Sendable (Result<OutputRows, ApusError>) -> Void) {
        run(request, on: served, job: ClosureJob(completion), isCancelled: isCancelled, cancellation: cancellation)
    }

    /// `run` with the answer going to `job.finish` (the hot path's form: the job is the only
    /// object allocated per request, see `InferenceJob`).
    public func run(_ request: InferRequest, on served: ServedVersion, job: InferenceJob, isCancelled: (@Sendable () -> Bool)? = nil,
                    cancellation: RequestContext? = nil) {
        let outputSpecs = served.compiled.outputs
        for name in request.requestedOutputs.keys where !outputSpecs.contains(where: { $0.name == name }) {
            job.finish(.failure(ApusError(.badRequest, "outputs: \(served.model) has no output \(name); it has \(outputSpecs.map(\.name).joined(separator: ", "))")))
            return
        }
        served.submit(request, job: job, isCancelled: isCancelled, cancellation: cancellation)
    }

    /// The answer for `outputs` (one request's rows of its batch's outputs, from `run`): the
    /// requested ones (all when `requested` is empty, passed on as they are), plus who served and
    /// the class labels.
    public static func answer(_ outputs: OutputRows, served: ServedVersion, variant: String?, id: String?, requested: [String: Bool]) -> InferResponse {
        let outputs = requested.isEmpty ? outputs : outputs.filter { requested[$0.name] != nil }
        return InferResponse(model: served.model, version: served.version, variant: variant, id: id,
                             rows: outputs, classLabels: served.compiled.classLabels)
    }
}
