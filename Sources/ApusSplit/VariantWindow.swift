/// Requests, server errors and a latency histogram of one variant since its window began, for
/// canary judgement. Log-spaced buckets (4 per power of two, ~19% wide) bound memory and give
/// p99 within a bucket. Value type; the controller locks.
struct VariantWindow: Sendable {
    var requests = 0
    var errors = 0
    var buckets = [Int](repeating: 0, count: 160)

    mutating func record(status: Int, durationNanos: UInt64) {
        requests += 1
        if status >= 500 { errors += 1 }
        buckets[Self.bucket(durationNanos)] += 1
    }

    static func bucket(_ nanos: UInt64) -> Int {
        guard nanos > 1 else { return 0 }
        return min(159, Int(4 * Foundation.log2(Double(nanos))))
    }

    static func upperBound(_ bucket: Int) -> UInt64 {
        UInt64(Foundation.pow(2.0, Double(bucket + 1) / 4))
    }

    func percentile(_ p: Double) -> UInt64 {
        guard requests > 0 else { return 0 }
        let rank = Int((Double(requests) * p / 100).rounded(.up))
        var seen = 0
        for (i, count) in buckets.enumerated() {
            seen += count
            if seen >= rank { return Self.upperBound(i) }
        }
        return Self.upperBound(buckets.count - 1)
    }
}

import Foundation
