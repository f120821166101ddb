import ApusCore

/// One request on its way through a version's batcher, and what is done with its answer: the
/// only object the serving path allocates per request between the route and the answer.
///
/// A route subclasses it, keeps in its own stored properties what the answer needs (who serves,
/// how to encode, where to write) and overrides `finish(_:)`. Before this, a queued request was
/// two objects (the batcher's record and the route's completion closure, whose context held the
/// same values): one allocation, one free and a retain and release of each captured value more
/// per request.
///
/// Threading: the route fills its own properties before `InferenceService.run(_:on:job:)`; the
/// batcher sets its fields (`feeds`, `rows`, ...) while submitting, before it publishes the job
/// under its lock, and only reads them afterwards. `finish` is called exactly once, on a worker
/// thread, on an event loop that ran the batch inline, or at once on the submitting thread for a
/// request rejected before it was queued.
open class InferenceJob: @unchecked Sendable {
    /// The request's inputs in model input order (validated; usually the request's own array).
    final var feeds: [NamedTensor] = []
    final var rows = 0
    /// Asked just before the batch runs; nil: ask `cancellation` (no closure per request).
    final var isCancelled: (@Sendable () -> Bool)?
    final var cancellation: RequestContext?
    /// When the batcher queued it (`MonotonicClock`), for the queue-wait histogram.
    final var enqueuedAt: UInt64 = 0

    public init() {}

    /// The request's answer: this request's rows of its batch's outputs, in model output order,
    /// or why it has none. Called once. Subclasses override it; this one drops the answer.
    open func finish(_ result: Result<OutputRows, ApusError>) {}
}

/// A job whose answer goes to a closure: for callers off the hot path (the predict route, shadow
/// traffic, tests).
final class ClosureJob: InferenceJob, @unchecked Sendable {
    private let completion: @Sendable (Result<OutputRows, ApusError>) -> Void

    init(_ completion: @escaping @Sendable (Result<OutputRows, ApusError>) -> Void) {
        self.completion = completion
    }

    override func finish(_ result: Result<OutputRows, ApusError>) {
        completion(result)
    }
}
