/// The variant choice for one request, made by the A/B module.
public struct VariantChoice: Sendable, Equatable {
    public var variant: String
    public var selector: VersionSelector
    /// True when assigned by the routing key's hash, false when random (no key).
    public var byHash: Bool
    public init(variant: String, selector: VersionSelector, byHash: Bool) {
        self.variant = variant
        self.selector = selector
        self.byHash = byHash
    }
}

/// Implemented by the A/B module; the routes only ask it. Class-bound: the routes hold it as an
/// existential read on every request, and a class existential copies as one reference instead
/// of a boxed value. Given the model's snapshot entry, which the route has already looked up
/// (each lookup hashes the model name).
public protocol TrafficSplitting: AnyObject, Sendable {
    func choose(model: RepositorySnapshot.Model, routingKey: String?) -> VariantChoice?
    /// The version that gets a copy of the model's traffic (answers discarded), if any.
    func shadow(model: RepositorySnapshot.Model) -> VersionSelector?
    /// A shadow copy finished (its answer is discarded; only counted).
    func shadowFinished(model: String, failed: Bool)
}

extension TrafficSplitting {
    /// `choose` for a model named in `snapshot` (nil when it is not there).
    public func choose(model: String, routingKey: String?, snapshot: RepositorySnapshot) -> VariantChoice? {
        snapshot.models[model].flatMap { choose(model: $0, routingKey: routingKey) }
    }
}
