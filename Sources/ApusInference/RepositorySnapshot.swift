/// What serves right now: per model, its ready versions, its labels and its default version.
/// Built whole by the repository and swapped in atomically; the request path only reads it.
/// Immutable value; `Sendable`.
public struct RepositorySnapshot: Sendable {
    /// One model's entry. A class, immutable: a request looks its model up several times (known?
    /// split? shadow? version?), and copying a struct of a dozen counted fields out of the
    /// dictionary retained and released each of them every time.
    public final class Model: Sendable {
        public let name: String
        /// Ready versions only.
        public let versions: [Int: ServedVersion]
        /// Label -> version (the persisted labels; a label may name a version that is not ready).
        public let labels: [String: Int]
        public let settings: ModelSettings
        /// The version that answers when a request names none: the highest ready one (found once,
        /// when the snapshot is built).
        public let defaultVersion: ServedVersion?

        public init(name: String, versions: [Int: ServedVersion], labels: [String: Int], settings: ModelSettings) {
            self.name = name
            self.versions = versions
            self.labels = labels
            self.settings = settings
            self.defaultVersion = versions.max(by: { $0.key < $1.key })?.value
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
