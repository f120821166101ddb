import Foundation

/// Routing keys of simulated users: `users` distinct keys `user-<i>`, picked uniformly or with
/// Zipf popularity (exponent `s`; a few users send most requests, as real traffic does).
/// Precomputes the CDF once; a pick is one binary search. Value type.
public struct KeyChooser: Sendable {
    public let users: Int
    private let cdf: [Double]
    private var rng: SplitMix64

    public init(users: Int, zipfExponent: Double?, seed: UInt64) {
        self.users = max(1, users)
        self.rng = SplitMix64(seed: seed)
        if let s = zipfExponent, s > 0 {
            var weights = (1...self.users).map { 1 / pow(Double($0), s) }
            let total = weights.reduce(0, +)
            var running = 0.0
            for i in weights.indices {
                running += weights[i] / total
                weights[i] = running
            }
            cdf = weights
        } else {
            cdf = []
        }
    }

    /// The index of the next user.
    public mutating func nextIndex() -> Int {
        let u = rng.nextUnit()
        guard !cdf.isEmpty else { return min(users - 1, Int(u * Double(users))) }
        var low = 0, high = cdf.count - 1
        while low < high {
            let mid = (low + high) / 2
            if cdf[mid] < u { low = mid + 1 } else { high = mid }
        }
        return low
    }

    public mutating func next() -> String { "user-\(nextIndex())" }
}
