import Synchronization

/// Whether the server can serve: false until the listener is bound (and, once models exist, until
/// they are loaded), false again while draining. Read by `/v2/health/ready`. Thread-safe.
public final class Readiness: Sendable {
    private let ready = Atomic<Bool>(false)
    public init() {}
    public var isReady: Bool { ready.load(ordering: .acquiring) }
    public func set(_ value: Bool) { ready.store(value, ordering: .releasing) }
}
