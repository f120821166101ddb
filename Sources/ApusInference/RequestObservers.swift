/// Several request observers as one (metrics and the canary controller both watch requests).
/// Immutable; thread-safe if its members are.
public final class RequestObservers: RequestObserver {
    public let members: [any RequestObserver]

    public init(_ members: [any RequestObserver]) { self.members = members }

    public func requestFinished(model: String, version: Int?, variant: String?, status: Int, durationNanos: UInt64) {
        for member in members {
            member.requestFinished(model: model, version: version, variant: variant, status: status, durationNanos: durationNanos)
        }
    }
}
