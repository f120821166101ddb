import ApusCore
import Foundation

/// `<repo>/<model>/model.json`: settings of the model across its versions.
public struct ModelSettings: Codable, Sendable, Equatable {
    /// "all", {"latest": N} or {"specific": [versions]}; default latest 1.
    public enum VersionPolicy: Codable, Sendable, Equatable {
        case all
        case latest(Int)
        case specific([Int])

        public init(from decoder: any Decoder) throws {
            if let text = try? decoder.singleValueContainer().decode(String.self) {
                guard text == "all" else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "version_policy must be \"all\", {\"latest\": N} or {\"specific\": [...]}")) }
                self = .all
                return
            }
            let container = try decoder.container(keyedBy: Keys.self)
            if let n = try container.decodeIfPresent(Int.self, forKey: .latest) {
                self = .latest(n)
            } else if let versions = try container.decodeIfPresent([Int].self, forKey: .specific) {
                self = .specific(versions)
            } else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "version_policy must be \"all\", {\"latest\": N} or {\"specific\": [...]}"))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            switch self {
            case .all:
                var c = encoder.singleValueContainer()
                try c.encode("all")
            case .latest(let n):
                var c = encoder.container(keyedBy: Keys.self)
                try c.encode(n, forKey: .latest)
            case .specific(let v):
                var c = encoder.container(keyedBy: Keys.self)
                try c.encode(v, forKey: .specific)
            }
        }

        enum Keys: String, CodingKey { case latest, specific }

        /// The versions to serve among those on disk.
        public func select(_ available: [Int]) -> [Int] {
            let sorted = available.sorted()
            switch self {
            case .all: return sorted
            case .latest(let n): return Array(sorted.suffix(max(n, 0)))
            case .specific(let wanted): return sorted.filter(wanted.contains)
            }
        }
    }

    public var versionPolicy: VersionPolicy?
    /// Label -> version, e.g. {"stable": 1, "canary": 2}.
    public var labels: [String: Int]?
    public var batching: BundleManifest.Batching?
    /// The A/B traffic split, read and changed by the A/B module through the repository.
    public var split: Split?

    /// `{"salt": "...", "variants": [{"name": "stable", "label": "stable", "weight": 9000}, ...],
    /// "shadow": {"label": "canary"}}`; weights are basis points summing to 10000. `buckets`,
    /// written by the server once weights change at run time, keeps each variant's bucket ranges
    /// stable across restarts.
    public struct Split: Codable, Sendable, Equatable {
        public struct Variant: Codable, Sendable, Equatable {
            public var name: String
            public var label: String?
            public var version: Int?
            public var weight: Int
            public init(name: String, label: String? = nil, version: Int? = nil, weight: Int) {
                self.name = name
                self.label = label
                self.version = version
                self.weight = weight
            }
        }
        public struct Shadow: Codable, Sendable, Equatable {
            public var label: String?
            public var version: Int?
            public init(label: String? = nil, version: Int? = nil) {
                self.label = label
                self.version = version
            }
        }
        public var salt: String
        public var variants: [Variant]
        public var shadow: Shadow?
        /// Bucket ranges per variant name, `[[start, end), ...]`, when not the initial layout.
        public var buckets: [String: [[Int]]]?
        public init(salt: String, variants: [Variant], shadow: Shadow? = nil, buckets: [String: [[Int]]]? = nil) {
            self.salt = salt
            self.variants = variants
            self.shadow = shadow
            self.buckets = buckets
        }
    }

    enum CodingKeys: String, CodingKey {
        case versionPolicy = "version_policy"
        case labels, batching, split
    }

    public init(versionPolicy: VersionPolicy? = nil, labels: [String: Int]? = nil, batching: BundleManifest.Batching? = nil, split: Split? = nil) {
        self.versionPolicy = versionPolicy
        self.labels = labels
        self.batching = batching
        self.split = split
    }

    public static let fileName = "model.json"

    /// Reads `path`; a missing file means defaults (latest version, no labels).
    public static func read(path: String) throws -> ModelSettings {
        guard FileManager.default.fileExists(atPath: path) else { return ModelSettings() }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ApusError(.internalError, "\(path) cannot be read")
        }
        return try ConfigJSON.decode(ModelSettings.self, from: data, what: "\(path) is not valid model settings")
    }

    /// Writes atomically (temporary file, fsync, rename): readers and a crash see the old or the
    /// new file, never half of one. Throws (and leaves the old file) when the disk is full.
    public static func write(_ settings: ModelSettings, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do {
            data = try encoder.encode(settings)
        } catch {
            throw ApusError(.internalError, "cannot encode model settings: \(error)")
        }
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw ApusError(.internalError, "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        var failure: String?
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count, failure == nil {
                let n = Foundation.write(fd, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                } else {
                    offset += n
                }
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        close(fd)
        if failure == nil, rename(temporary, path) != 0 { failure = String(cString: strerror(errno)) }
        if let failure {
            unlink(temporary)
            throw ApusError(.internalError, "cannot write \(path): \(failure); the settings were not changed")
        }
    }
}
