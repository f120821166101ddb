import Synchronization

/// Per-request facts from the transport: who sent it and whether the client gave up.
///
/// `isCancelled` flips to true, once, when the stream is reset or the connection closes before
/// the answer is written; the handler registered with `onCancel` (a batch queue removing the
/// request) runs then, once. Thread-safe.
public final class RequestContext: @unchecked Sendable {
    public let remoteAddress: String
    /// When the request arrived: the monotonic time (`MonotonicClock.nanoseconds()`) of the
    /// socket read that completed it. Timeouts and request durations count from here, so time
    /// spent behind other requests of the same read counts too.
    public let arrivalNanos: UInt64
    private let cancelled = Atomic<Bool>(false)
    /// Guards `handler`. A spin flag, not a mutex: one is made per request (a pthread mutex cost
    /// two allocations and an init each), and the section it guards is a pointer swap, contended
    /// only when a cancel races an `onCancel`.
    private let busy = Atomic<Bool>(false)
    private var handler: Handler?

    /// A closure, or an object and a token: the batch queue registers itself and the request's
    /// id, so registering allocates nothing per request.
    private enum Handler {
        case closure(@Sendable () -> Void)
        case target(any CancellationTarget, UInt64)

        func run() {
            switch self {
            case .closure(let action): action()
            case .target(let target, let token): target.requestCancelled(token: token)
            }
        }
    }

    /// `arrivalNanos` defaults to now; transports pass the time of the read they stamped once.
    public init(remoteAddress: String, arrivalNanos: UInt64 = MonotonicClock.nanoseconds()) {
        self.remoteAddress = remoteAddress
        self.arrivalNanos = arrivalNanos
    }

    public var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    /// Runs `action` when the request is cancelled (at once if it already was). One handler:
    /// a later call replaces an earlier one.
    public func onCancel(_ action: @escaping @Sendable () -> Void) {
        register(.closure(action))
    }

    /// Calls `target.requestCancelled(token:)` when the request is cancelled (at once if it
    /// already was). Replaces an earlier handler, like `onCancel(_:)`.
    public func onCancel(_ target: any CancellationTarget, token: UInt64) {
        register(.target(target, token))
    }

    private func register(_ new: Handler) {
        swapHandler(new)
        if isCancelled, let handler = swapHandler(nil) { handler.run() }
    }

    /// Called by the transport only.
    public func cancel() {
        guard !cancelled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let handler = swapHandler(nil) { handler.run() }
    }

    /// Stores `new` as the handler and returns the previous one.
    @discardableResult
    private func swapHandler(_ new: Handler?) -> Handler? {
        while !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {}
        let old = handler
        handler = new
        busy.store(false, ordering: .releasing)
        return old
    }
}
