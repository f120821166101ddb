import Synchronization

/// Per-request facts from the transport: who sent it and whether the client gave up.
///
/// `isCancelled` flips to true, once, when the stream is reset or the connection closes before
/// the answer is written; queued work checks it to drop requests nobody waits for. Thread-safe.
public final class RequestContext: Sendable {
    public let remoteAddress: String
    private let cancelled = Atomic<Bool>(false)

    public init(remoteAddress: String) { self.remoteAddress = remoteAddress }

    public var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    /// Called by the transport only.
    public func cancel() { cancelled.store(true, ordering: .releasing) }
}
