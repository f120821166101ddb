import ApusRuntime

/// Receives what the serving path measures: implemented by the metrics module, which must be
/// cheap and non-blocking here (called on worker threads, once per batch / request).
/// Class-bound, like `RequestObserver`: held as an existential on the request path.
public protocol InferenceObserver: AnyObject, Sendable {
    /// A batch ran: `queueWaitNanos` per request (enqueue to start), `computeNanos` for the batch.
    func batchRan(model: String, version: Int, rows: Int, queueWaitNanos: [UInt64], computeNanos: UInt64)
    /// A request was dropped before running: deadline expired, queue full, or cancelled.
    func requestDropped(model: String, version: Int, reason: DropReason)
    /// Inputs of an executed batch, for drift sampling (the observer samples; it must not keep
    /// more than a bounded reservoir).
    func inputsSeen(model: String, version: Int, feeds: [Tensor])
    /// The version left the repository for good (unloaded and freed, or deleted): per-version
    /// series can go, so label sets stay bounded however many versions come and go.
    func versionRetired(model: String, version: Int)
}

extension InferenceObserver {
    public func versionRetired(model: String, version: Int) {}
}

public enum DropReason: String, Sendable {
    case deadline, queueFull = "queue_full", cancelled
}

/// Finished requests, reported by the routes (status known only there). Class-bound: the routes
/// copy it into every request's completion, and a class existential copies as one reference.
public protocol RequestObserver: AnyObject, Sendable {
    func requestFinished(model: String, version: Int?, variant: String?, status: Int, durationNanos: UInt64)
}
