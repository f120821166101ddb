import ApusCore

/// Which variant owns each of the 10,000 buckets of a traffic split.
///
/// Initial layout: variants get contiguous ranges in listed order, `[0, w1)`, `[w1, w1 + w2)`, ...
/// Rebalancing (weights change at run time) moves as few keys as possible: a variant whose weight
/// is unchanged keeps exactly its buckets; a shrinking variant gives up its highest-numbered
/// buckets; a removed variant gives up all; the freed buckets, in ascending order, go to the
/// growing (or new) variants in listed order. See proto-spec/PROTOCOL.md. Immutable value.
public struct BucketTable: Sendable, Equatable {
    public static let bucketCount = 10_000

    /// Variant names, in the split's order.
    public let names: [String]
    /// Owner (index into `names`) of every bucket.
    public let owners: [UInt16]

    /// The initial layout for `weights` (basis points summing to 10,000).
    public init(names: [String], weights: [Int]) throws {
        try Self.check(names: names, weights: weights)
        var owners: [UInt16] = []
        owners.reserveCapacity(Self.bucketCount)
        for (index, weight) in weights.enumerated() {
            owners.append(contentsOf: repeatElement(UInt16(index), count: weight))
        }
        self.names = names
        self.owners = owners
    }

    /// A layout from persisted ranges (`name -> [[start, end), ...]`); every bucket owned once.
    public init(names: [String], ranges: [String: [[Int]]]) throws {
        var owners = [Int](repeating: -1, count: Self.bucketCount)
        for (name, list) in ranges {
            guard let index = names.firstIndex(of: name) else { throw ApusError(.badRequest, "split.buckets: \(name) is not a variant") }
            for range in list {
                guard range.count == 2, range[0] >= 0, range[0] < range[1], range[1] <= Self.bucketCount else {
                    throw ApusError(.badRequest, "split.buckets.\(name): \(range) is not a [start, end) range within 0...\(Self.bucketCount)")
                }
                for b in range[0]..<range[1] {
                    guard owners[b] < 0 else { throw ApusError(.badRequest, "split.buckets: bucket \(b) is owned twice") }
                    owners[b] = index
                }
            }
        }
        if let missing = owners.firstIndex(of: -1) { throw ApusError(.badRequest, "split.buckets: bucket \(missing) has no owner") }
        self.names = names
        self.owners = owners.map { UInt16($0) }
    }

    private init(names: [String], owners: [UInt16]) {
        self.names = names
        self.owners = owners
    }

    static func check(names: [String], weights: [Int]) throws {
        guard !names.isEmpty, names.count == weights.count else { throw ApusError(.badRequest, "split.variants: at least one variant is required") }
        guard Set(names).count == names.count else { throw ApusError(.badRequest, "split.variants: names must be unique") }
        for (name, weight) in zip(names, weights) where weight < 0 {
            throw ApusError(.badRequest, "split.variants.\(name).weight must be >= 0, got \(weight)")
        }
        let total = weights.reduce(0, +)
        guard total == bucketCount else {
            throw ApusError(.badRequest, "split.variants: weights must sum to \(bucketCount) (basis points), got \(total)")
        }
    }

    /// Buckets owned per variant, in `names` order.
    public var weights: [Int] {
        var counts = [Int](repeating: 0, count: names.count)
        for owner in owners { counts[Int(owner)] += 1 }
        return counts
    }

    /// The variant of `bucket`.
    public func variant(bucket: Int) -> String { names[Int(owners[bucket])] }

    /// The layout for new variants/weights, moving the fewest buckets (see the type's doc).
    public func rebalanced(names newNames: [String], weights newWeights: [Int]) throws -> BucketTable {
        try Self.check(names: newNames, weights: newWeights)
        var bucketsOf: [String: [Int]] = [:]
        for (bucket, owner) in owners.enumerated() { bucketsOf[names[Int(owner)], default: []].append(bucket) }
        var freed: [Int] = []
        for (name, buckets) in bucketsOf where !newNames.contains(name) { freed.append(contentsOf: buckets) }
        var newOwners = [UInt16](repeating: 0, count: Self.bucketCount)
        for (index, name) in newNames.enumerated() {
            let current = bucketsOf[name] ?? []   // ascending
            let keep = min(current.count, newWeights[index])
            for b in current[..<keep] {
                newOwners[b] = UInt16(index)
            }
            freed.append(contentsOf: current[keep...])
        }
        freed.sort()
        var next = 0
        for (index, name) in newNames.enumerated() {
            let have = min(bucketsOf[name]?.count ?? 0, newWeights[index])
            for _ in have..<newWeights[index] {
                newOwners[freed[next]] = UInt16(index)
                next += 1
            }
        }
        return BucketTable(names: newNames, owners: newOwners)
    }

    /// Ranges per variant, `[[start, end), ...]`, for persisting.
    public var ranges: [String: [[Int]]] {
        var out: [String: [[Int]]] = [:]
        for name in names { out[name] = [] }
        var start = 0
        for b in 1...Self.bucketCount where b == Self.bucketCount || owners[b] != owners[start] {
            out[names[Int(owners[start])], default: []].append([start, b])
            start = b
        }
        return out
    }

    /// Whether this is the initial layout of its weights (nothing to persist).
    public var isInitialLayout: Bool {
        (try? BucketTable(names: names, weights: weights)) == self
    }
}
