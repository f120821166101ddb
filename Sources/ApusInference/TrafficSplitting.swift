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
/// of a boxed value.
public protocol TrafficSplitting: AnyObject, Sendable {
    func choose(model: String, routingKey: String?, snapshot: RepositorySnapshot) -> VariantChoice?
    /// The version that gets a copy of the model's traffic (answers discarded), if any.
    func shadow(model: String, snapshot: RepositorySnapshot) -> VersionSelector?
    /// A shadow copy finished (its answer is discarded; only counted).
    func shadowFinished(model: String, failed: Bool)
}
