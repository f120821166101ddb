import ApusCore
import ApusInference
import ApusRuntime
import Foundation
import Synchronization

/// Feature drift per model version: a bounded reservoir of recent input rows (uniform reservoir
/// sampling, `capacity` rows) compared feature by feature with the bundle's reference sample by
/// the two-sample KS test. `recompute` runs in the background (a timer), never on the request
/// path; `observe` only copies a few sampled rows under a lock.
///
/// Memory is bounded by capacity x features per version; versions that left the snapshot are
/// dropped on the next recompute. Thread-safe.
public final class DriftMonitor: Sendable {
    public struct FeatureDrift: Sendable, Equatable {
        public var feature: String
        public var statistic: Double
        public var pValue: Double
    }

    struct Reservoir {
        var columns: [[Float]]
        var seen = 0
        /// xorshift64*: sampling needs speed, not secrecy (the system generator is a syscall).
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        /// Once full: the number (counting from 1) of the next row to keep, and Algorithm L's
        /// running weight (Li, 1994). Jumping from one kept row to the next costs nothing for the
        /// rows passed over; drawing a random slot per row (Algorithm R) cost a 64-bit division
        /// per row of every batch on the serving path.
        var nextKeep = 0
        var weight = 1.0

        mutating func next() -> UInt64 {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return state &* 0x2545_F491_4F6C_DD1D
        }

        mutating func next(below bound: Int) -> Int { Int(next() % UInt64(bound)) }

        /// Uniform in (0, 1): never 0, so its logarithm is finite.
        mutating func unit() -> Double { (Double(next() >> 11) + 0.5) * 0x1p-53 }

        /// Draws the next row to keep, `capacity` rows being kept of `seen` so far.
        mutating func scheduleNextKeep(capacity: Int) {
            weight *= exp(log(unit()) / Double(capacity))
            // Rows passed over before the next kept one: geometric with parameter `weight`.
            let skip = (log(unit()) / log1p(-weight)).rounded(.down)
            let last = nextKeep == 0 ? seen : nextKeep
            nextKeep = last + 1 + (skip.isFinite && skip < Double(1 << 52) ? Int(skip) : 1 << 52)
        }
    }

    public let capacity: Int
    private let reservoirs = Locked<[String: Reservoir]>([:])
    private let results = Locked<[String: (model: String, version: Int, drift: [FeatureDrift], samples: Int)]>([:])

    public init(capacity: Int = 2000) {
        self.capacity = max(10, capacity)
    }

    static func key(_ model: String, _ version: Int) -> String { "\(model)\u{0}\(version)" }

    /// Samples the rows of a [N, F] float batch.
    public func observe(model: String, version: Int, feeds: [Tensor]) {
        guard feeds.count == 1, let feed = feeds.first, feed.shape.count == 2, case .float32(let values) = feed.data else { return }
        let rows = feed.shape[0], width = feed.shape[1]
        guard width > 0, width <= 4096 else { return }
        let key = Self.key(model, version)
        reservoirs.withLock { all in
            // Taken out of the table, so the reservoir is uniquely referenced and changes in
            // place; a copy read from the table would copy every column on the first write.
            var r = all.removeValue(forKey: key) ?? Reservoir(columns: Array(repeating: [], count: width))
            defer { all[key] = r }
            guard r.columns.count == width else { return }
            // Filling: every row is kept until the reservoir holds `capacity`.
            var row = 0
            while row < rows, r.columns[0].count < capacity {
                for f in 0..<width { r.columns[f].append(values[row * width + f]) }
                r.seen += 1
                row += 1
                if r.columns[0].count == capacity { r.scheduleNextKeep(capacity: capacity) }
            }
            guard row < rows else { return }
            // Full: straight to the rows Algorithm L keeps, each into a random slot. Row `i` of
            // the batch is row number `base + i + 1` of all rows seen.
            let base = r.seen - row
            let last = base + rows
            while r.nextKeep <= last {
                let kept = r.nextKeep - base - 1
                let slot = r.next(below: capacity)
                for f in 0..<width { r.columns[f][slot] = values[kept * width + f] }
                r.scheduleNextKeep(capacity: capacity)
            }
            r.seen = last
        }
    }

    /// The sampled rows of a version, column by column (tests).
    func sample(model: String, version: Int) -> [[Float]]? {
        reservoirs.withLock { $0[Self.key(model, version)]?.columns }
    }

    /// Recomputes the statistics for every ready version with a reference sample and at least
    /// `minimumSamples` observed rows.
    public func recompute(snapshot: RepositorySnapshot, minimumSamples: Int = 50) {
        var live: Set<String> = []
        var fresh: [String: (model: String, version: Int, drift: [FeatureDrift], samples: Int)] = [:]
        for (model, entry) in snapshot.models {
            for (version, served) in entry.versions {
                let key = Self.key(model, version)
                live.insert(key)
                guard let reference = served.reference, reference.shape.count == 2, let referenceValues = try? reference.floats() else { continue }
                let columns = reservoirs.withLock { $0[key]?.columns }
                guard let columns, let count = columns.first?.count, count >= minimumSamples else { continue }
                let width = reference.shape[1]
                guard columns.count == width else { continue }
                let names = served.manifest.inputs.first?.features ?? (0..<width).map { "f\($0)" }
                var drift: [FeatureDrift] = []
                for f in 0..<width {
                    let ref = stride(from: f, to: referenceValues.count, by: width).map { referenceValues[$0] }
                    if let result = KolmogorovSmirnov.test(columns[f], ref) {
                        drift.append(FeatureDrift(feature: f < names.count ? names[f] : "f\(f)", statistic: result.statistic, pValue: result.pValue))
                    }
                }
                fresh[key] = (model, version, drift, count)
            }
        }
        reservoirs.withLock { all in all = all.filter { live.contains($0.key) } }
        results.withLock { $0 = fresh }
    }

    /// Recomputes every `interval` on a background queue until the returned timer is cancelled.
    public func startRecomputing(every interval: Duration, snapshot: @escaping @Sendable () -> RepositorySnapshot) -> any DispatchSourceTimer {
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "apus.drift", qos: .utility))
        let nanos = Int(interval.components.seconds) * 1_000_000_000 + Int(interval.components.attoseconds / 1_000_000_000)
        timer.schedule(deadline: .now() + .nanoseconds(nanos), repeating: .nanoseconds(nanos), leeway: .milliseconds(100))
        timer.setEventHandler { [self] in recompute(snapshot: snapshot()) }
        timer.resume()
        return timer
    }

    /// The last computed drift, per model version.
    public var current: [(model: String, version: Int, drift: [FeatureDrift], samples: Int)] {
        results.withLock { Array($0.values) }.sorted { ($0.model, $0.version) < ($1.model, $1.version) }
    }
}
