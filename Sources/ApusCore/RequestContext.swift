import Synchronization

/// Per-request facts from the transport: who sent it and whether the client gave up.
///
/// `isCancelled` flips to true, once, when the stream is reset or the connection closes before
/// the answer is written; the handler registered with `onCancel` (a batch queue removing the
/// request) runs then, once. Thread-safe.
public final class RequestContext: @unchecked Sendable {
    public let remoteAddress: String
    private let cancelled = Atomic<Bool>(false)
    /// Guards `handler`. A spin flag, not a mutex: one is made per request (a pthread mutex cost
    /// two allocations and an init each), and the section it guards is a pointer swap, contended
    /// only when a cancel races an `onCancel`.
    private let busy = Atomic<Bool>(false)
    private var handler: (@Sendable () -> Void)?

    public init(remoteAddress: String) { self.remoteAddress = remoteAddress }

    public var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    /// Runs `action` when the request is cancelled (at once if it already was). One handler:
    /// a later call replaces an earlier one.
    public func onCancel(_ action: @escaping @Sendable () -> Void) {
        swapHandler(action)
        if isCancelled, let action = swapHandler(nil) { action() }
    }

    /// Called by the transport only.
    public func cancel() {
        guard !cancelled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let action = swapHandler(nil) { action() }
    }

    /// Stores `new` as the handler and returns the previous one.
    @discardableResult
    private func swapHandler(_ new: (@Sendable () -> Void)?) -> (@Sendable () -> Void)? {
        while !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {}
        let old = handler
        handler = new
        busy.store(false, ordering: .releasing)
        return old
    }
}
