import Synchronization

/// Per-request facts from the transport: who sent it and whether the client gave up.
///
/// `isCancelled` flips to true, once, when the stream is reset or the connection closes before
/// the answer is written; the handler registered with `onCancel` (a batch queue removing the
/// request) runs then, once. Thread-safe.
public final class RequestContext: Sendable {
    public let remoteAddress: String
    private let cancelled = Atomic<Bool>(false)
    private let handler = Locked<(@Sendable () -> Void)?>(nil)

    public init(remoteAddress: String) { self.remoteAddress = remoteAddress }

    public var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    /// Runs `action` when the request is cancelled (at once if it already was). One handler:
    /// a later call replaces an earlier one.
    public func onCancel(_ action: @escaping @Sendable () -> Void) {
        handler.withLock { $0 = action }
        if isCancelled, let action = handler.withLock({ h -> (@Sendable () -> Void)? in defer { h = nil }; return h }) { action() }
    }

    /// Called by the transport only.
    public func cancel() {
        guard !cancelled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let action = handler.withLock({ h -> (@Sendable () -> Void)? in defer { h = nil }; return h }) { action() }
    }
}
