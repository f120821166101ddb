import ApusCore

/// One series of a Prometheus histogram recorded on the request path: per-bucket counts, a sum
/// and a count, rendered in the text exposition format by `ServerMetrics`.
///
/// Why not swift-prometheus' `ValueHistogram`: its `record` walks and increments every bucket
/// at or above the value (it stores cumulative counts) under a pthread lock, about 235
/// instructions, and two latencies are recorded per request. This one finds the value's bucket
/// (latencies mostly fall in the first), increments one count under a lock (`Locked`: the thread
/// sanitizer sees its pthread mutex, not `Synchronization.Mutex`), and makes the counts
/// cumulative only at scrape time.
///
/// Invariant: `bounds` ascend; `counts` has one slot per bound plus one for values above the
/// last (the `+Inf` bucket). A scrape reads counts, sum and count under the lock, so they agree.
/// Thread-safe.
final class LatencyHistogram: Sendable {
    struct State {
        /// Non-cumulative: slot i counts values in (bounds[i-1], bounds[i]].
        var counts: [UInt64]
        var sum = 0.0
        var count: UInt64 = 0
    }

    let bounds: [Double]
    private let state: Locked<State>

    init(bounds: [Double]) {
        self.bounds = bounds
        self.state = Locked(State(counts: Array(repeating: 0, count: bounds.count + 1)))
    }

    func record(_ value: Double) {
        let i = bucket(of: value)
        state.withLock { s in
            s.counts[i] += 1
            s.sum += value
            s.count += 1
        }
    }

    /// Records every value of `nanoseconds` as seconds, under one lock (a batch's queue waits).
    func record(nanoseconds: [UInt64]) {
        state.withLock { s in
            for n in nanoseconds {
                let value = ServerMetrics.seconds(n)
                s.counts[bucket(of: value)] += 1
                s.sum += value
            }
            s.count += UInt64(nanoseconds.count)
        }
    }

    /// The first bound at or above `value` (NaN falls through to +Inf, as in Prometheus).
    private func bucket(of value: Double) -> Int {
        var i = 0
        while i < bounds.count, !(value <= bounds[i]) { i += 1 }
        return i
    }

    var snapshot: State { state.withLock { $0 } }

    /// The series' `_bucket`, `_sum` and `_count` lines. `labels`: rendered `name="value"` pairs
    /// joined by commas, or empty. `le` reads as swift-prometheus writes it (`5e-05`, `1.0`).
    func render(name: String, labels: String, into text: inout String) {
        let s = snapshot
        let prefix = labels.isEmpty ? "" : labels + ","
        var cumulative: UInt64 = 0
        for (bound, count) in zip(bounds, s.counts) {
            cumulative += count
            text += "\(name)_bucket{\(prefix)le=\"\(bound)\"} \(cumulative)\n"
        }
        text += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(s.count)\n"
        let braced = labels.isEmpty ? "" : "{\(labels)}"
        text += "\(name)_sum\(braced) \(s.sum)\n"
        text += "\(name)_count\(braced) \(s.count)\n"
    }
}
