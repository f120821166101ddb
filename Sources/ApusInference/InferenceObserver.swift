import ApusRuntime

/// Receives what the serving path measures: implemented by the metrics module, which must be
/// cheap and non-blocking here (called on worker threads, once per batch / request).
public protocol InferenceObserver: Sendable {
    /// A batch ran: `queueWaitNanos` per request (enqueue to start), `computeNanos` for the batch.
    func batchRan(model: String, version: Int, rows: Int, queueWaitNanos: [UInt64], computeNanos: UInt64)
    /// A request was dropped before running: deadline expired, queue full, or cancelled.
    func requestDropped(model: String, version: Int, reason: DropReason)
    /// Inputs of an executed batch, for drift sampling (the observer samples; it must not keep
    /// more than a bounded reservoir).
    func inputsSeen(model: String, version: Int, feeds: [Tensor])
}

public enum DropReason: String, Sendable {
    case deadline, queueFull = "queue_full", cancelled
}

/// Finished requests, reported by the routes (status known only there).
public protocol RequestObserver: Sendable {
    func requestFinished(model: String, version: Int?, variant: String?, status: Int, durationNanos: UInt64)
}
