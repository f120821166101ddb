/// What serves right now: per model, its ready versions, its labels and its default version.
/// Built whole by the repository and swapped in atomically; the request path only reads it.
/// Immutable value; `Sendable`.
public struct RepositorySnapshot: Sendable {
    public struct Model: Sendable {
        public var name: String
        /// Ready versions only.
        public var versions: [Int: ServedVersion]
        /// Label -> version (the persisted labels; a label may name a version that is not ready).
        public var labels: [String: Int]
        public var settings: ModelSettings

        public init(name: String, versions: [Int: ServedVersion], labels: [String: Int], settings: ModelSettings) {
            self.name = name
            self.versions = versions
            self.labels = labels
            self.settings = settings
        }

        /// The version that answers when a request names none: the highest ready one.
        public var defaultVersion: ServedVersion? {
            versions.max(by: { $0.key < $1.key })?.value
        }
    }

    public var models: [String: Model]
    /// Increases with every swap; lets tests and metrics see that a reload happened.
    public var generation: Int

    public init(models: [String: Model] = [:], generation: Int = 0) {
        self.models = models
        self.generation = generation
    }
}
