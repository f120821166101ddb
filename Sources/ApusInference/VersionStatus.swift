/// One model version's state as reported by the repository index, `/v2/models/{m}/versions/{v}/ready`
/// and metrics. Value type.
public struct VersionStatus: Sendable, Equatable {
    public var model: String
    public var version: Int
    public var state: VersionLifecycle.State
    /// A failed attempt to replace this (still serving) version in place with new files.
    public var lastFailure: String?

    public init(model: String, version: Int, state: VersionLifecycle.State) {
        self.model = model
        self.version = version
        self.state = state
    }
}
