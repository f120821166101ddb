import ApusCore
import ApusInference
import Synchronization

/// Chooses the variant of each request to a model with a traffic split (`split` in the model's
/// model.json): bucket = MurmurHash3_x86_32(salt + ":" + routing key, seed 0) mod 10,000, owner
/// from the `BucketTable`; requests without a key are spread by weight at random.
///
/// Tables are compiled once per split value and cached; the request path does one hash and one
/// array read. Counts assignments per model and variant for metrics. Thread-safe.
public final class TrafficSplitter: TrafficSplitting, Sendable {
    public struct Compiled: Sendable {
        public var split: ModelSettings.Split
        public var table: BucketTable
        var saltPrefix: [UInt8]
    }

    private let cache = Locked<[String: Compiled]>([:])
    private let counts = Locked<[String: [String: (hash: Int, random: Int)]]>([:])

    public init() {}

    /// The bucket of `routingKey` under `salt` (0..<10000).
    public static func bucket(salt: String, routingKey: String) -> Int {
        Int(MurmurHash3.x86_32(Array((salt + ":" + routingKey).utf8)) % UInt32(BucketTable.bucketCount))
    }

    /// Validates a split and builds its table (persisted ranges if present, else the initial layout).
    public static func compile(_ split: ModelSettings.Split) throws -> Compiled {
        let names = split.variants.map(\.name)
        for variant in split.variants where (variant.label == nil) == (variant.version == nil) {
            throw ApusError(.badRequest, "split.variants.\(variant.name): give exactly one of label or version")
        }
        let weights = split.variants.map(\.weight)
        let table: BucketTable
        if let ranges = split.buckets {
            table = try BucketTable(names: names, ranges: ranges)
            guard table.weights == weights else {
                throw ApusError(.badRequest, "split.buckets do not match the variants' weights")
            }
        } else {
            table = try BucketTable(names: names, weights: weights)
        }
        return Compiled(split: split, table: table, saltPrefix: Array((split.salt + ":").utf8))
    }

    /// The split to persist when `new` replaces `old` at run time: bucket ranges kept stable for
    /// variants whose weights did not change (same salt), else the initial layout.
    public static func replacement(old: ModelSettings.Split?, new: ModelSettings.Split) throws -> ModelSettings.Split {
        var new = new
        new.buckets = nil
        let fresh = try compile(new)
        guard let old, old.salt == new.salt else { return new }
        let oldTable = try compile(old).table
        let table = try oldTable.rebalanced(names: fresh.table.names, weights: fresh.table.weights)
        if !table.isInitialLayout { new.buckets = table.ranges }
        return new
    }

    public func choose(model entry: RepositorySnapshot.Model, routingKey: String?) -> VariantChoice? {
        guard let split = entry.settings.split else { return nil }
        let model = entry.name
        let compiled: Compiled
        do {
            compiled = try cache.withLock { cache in
                if let hit = cache[model], hit.split == split { return hit }
                let fresh = try Self.compile(split)
                cache[model] = fresh
                return fresh
            }
        } catch {
            return nil   // An invalid split in model.json is reported by the admin API; serve the default.
        }
        let bucket: Int
        let byHash: Bool
        if let routingKey, !routingKey.isEmpty {
            bucket = Int(MurmurHash3.x86_32(compiled.saltPrefix + Array(routingKey.utf8)) % UInt32(BucketTable.bucketCount))
            byHash = true
        } else {
            bucket = Int.random(in: 0..<BucketTable.bucketCount)
            byHash = false
        }
        let index = Int(compiled.table.owners[bucket])
        let variant = compiled.split.variants[index]
        counts.withLock { counts in
            var pair = counts[model, default: [:]][variant.name] ?? (0, 0)
            if byHash { pair.hash += 1 } else { pair.random += 1 }
            counts[model, default: [:]][variant.name] = pair
        }
        let selector: VersionSelector = variant.version.map { .version($0) } ?? .label(variant.label ?? "")
        return VariantChoice(variant: variant.name, selector: selector, byHash: byHash)
    }

    public func shadow(model entry: RepositorySnapshot.Model) -> VersionSelector? {
        guard let shadow = entry.settings.split?.shadow else { return nil }
        if let version = shadow.version { return .version(version) }
        return shadow.label.map { .label($0) }
    }

    private let shadowCounts = Locked<[String: (sent: Int, failed: Int)]>([:])

    /// Counts a shadow copy and whether it failed (for metrics).
    public func shadowFinished(model: String, failed: Bool) {
        shadowCounts.withLock { counts in
            var pair = counts[model] ?? (0, 0)
            pair.sent += 1
            if failed { pair.failed += 1 }
            counts[model] = pair
        }
    }

    /// Shadow copies so far: model -> (sent, failed).
    public var shadows: [String: (sent: Int, failed: Int)] { shadowCounts.withLock { $0 } }

    /// Assignments so far: model -> variant -> (by hash, random).
    public var assignments: [String: [String: (hash: Int, random: Int)]] { counts.withLock { $0 } }
}
