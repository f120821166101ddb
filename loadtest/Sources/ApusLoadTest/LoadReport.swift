import Foundation
import Histogram

/// What one connection observed; merged into a `LoadReport` at the end. Not thread-safe: each
/// connection owns one on its event loop.
public struct LoadRecorder: Sendable {
    /// From each request's intended send time (open loop: its slot in the schedule) to its
    /// answer, so a stalled server or a late generator shows up (coordinated-omission free).
    public var latency = Histogram<UInt64>(highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: .three)
    /// From the moment the request's HEADERS frame was serialized for the socket to the close
    /// of its stream: what h2load reports, at the same points.
    public var serviceTime = Histogram<UInt64>(highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: .three)
    public var succeeded = 0
    public var failed = 0
    /// Answers by HTTP status (three digits, as the client parses them). Counted in an array:
    /// hashing the status into a dictionary was a measurable share of a generator's request.
    private var statusCounts = [Int](repeating: 0, count: 1000)
    /// Transport failures (reset, refused, connection lost) by message.
    public var errors: [String: Int] = [:]
    private var variantTally = Tally()
    private var versionTally = Tally()

    public init() {}

    public var statuses: [Int: Int] {
        var out: [Int: Int] = [:]
        for (status, count) in statusCounts.enumerated() where count > 0 { out[status] = count }
        return out
    }
    public var variants: [String: Int] { variantTally.counts }
    public var versions: [String: Int] { versionTally.counts }

    /// A request that was due but never sent (it had no service time): its latency and failure.
    public mutating func recordUnsent(latencyNanos: UInt64, error: String) {
        _ = latency.record(max(1, latencyNanos))
        failed += 1
        errors[error, default: 0] += 1
    }

    /// `serviceNanos`: time since the actual send (nil: the same as `latencyNanos`).
    public mutating func record(latencyNanos: UInt64, serviceNanos: UInt64? = nil, status: Int?, variant: String?, version: String?, error: String? = nil) {
        _ = latency.record(max(1, latencyNanos))
        _ = serviceTime.record(max(1, serviceNanos ?? latencyNanos))
        if let status {
            if statusCounts.indices.contains(status) { statusCounts[status] += 1 }
            if (200..<300).contains(status) { succeeded += 1 } else { failed += 1 }
        } else {
            failed += 1
            errors[error ?? "transport error", default: 0] += 1
        }
        if let variant { variantTally.add(variant) }
        if let version { versionTally.add(version) }
    }

    public mutating func merge(_ other: LoadRecorder) {
        latency.add(other.latency)
        serviceTime.add(other.serviceTime)
        succeeded += other.succeeded
        failed += other.failed
        for (status, count) in other.statusCounts.enumerated() where count > 0 { statusCounts[status] += count }
        errors.merge(other.errors, uniquingKeysWith: +)
        variantTally.merge(other.variantTally)
        versionTally.merge(other.versionTally)
    }

    /// Counts by name, run-length first: consecutive answers mostly name the same version or
    /// variant (short values compare by their bits, long ones are usually the client's cached
    /// string), and only a change of name touches the dictionary.
    struct Tally: Sendable {
        private var settled: [String: Int] = [:]
        private var current: String?
        private var run = 0

        mutating func add(_ name: String) {
            if name == current {
                run += 1
            } else {
                if let current { settled[current, default: 0] += run }
                current = name
                run = 1
            }
        }

        var counts: [String: Int] {
            var out = settled
            if let current { out[current, default: 0] += run }
            return out
        }

        mutating func merge(_ other: Tally) {
            settled = counts.merging(other.counts, uniquingKeysWith: +)
            current = nil
            run = 0
        }
    }
}

/// The result of a run: latency percentiles, throughput, errors by status, and the observed
/// A/B split against the configured one. Renders as a table and as JSON. Value type.
public struct LoadReport: Sendable {
    public var recorder: LoadRecorder
    public var durationSeconds: Double
    public var offeredRate: Double?
    /// Configured variant weights (fractions), when the model has a split.
    public var configuredSplit: [String: Double]

    public init(recorder: LoadRecorder, durationSeconds: Double, offeredRate: Double?, configuredSplit: [String: Double] = [:]) {
        self.recorder = recorder
        self.durationSeconds = durationSeconds
        self.offeredRate = offeredRate
        self.configuredSplit = configuredSplit
    }

    public var total: Int { recorder.succeeded + recorder.failed }
    public var failed: Int { recorder.failed }
    public var throughput: Double { durationSeconds > 0 ? Double(total) / durationSeconds : 0 }
    public var errorRate: Double { total > 0 ? Double(recorder.failed) / Double(total) : 0 }
    public var meanLatencyNanos: Double { recorder.latency.mean }

    public func latencyNanos(percentile: Double) -> UInt64 { Self.value(recorder.latency, percentile) }
    public func serviceNanos(percentile: Double) -> UInt64 { Self.value(recorder.serviceTime, percentile) }

    static func value(_ histogram: Histogram<UInt64>, _ percentile: Double) -> UInt64 {
        guard histogram.totalCount > 0 else { return 0 }
        return percentile >= 100 ? histogram.max : histogram.valueAtPercentile(percentile)
    }

    func percentileLine(_ value: (Double) -> UInt64) -> String {
        Self.percentiles.map { p in "\(p == 100 ? "max" : "p" + Self.trim(p))=\(Self.format(nanos: value(p)))" }.joined(separator: "  ")
    }

    static func format(nanos: UInt64) -> String {
        let d = Double(nanos)
        if d < 1e3 { return "\(nanos)ns" }
        if d < 1e6 { return String(format: "%.1fus", d / 1e3) }
        if d < 1e9 { return String(format: "%.2fms", d / 1e6) }
        return String(format: "%.3fs", d / 1e9)
    }

    public static let percentiles: [Double] = [50, 90, 99, 99.9, 100]

    public var table: String {
        var lines: [String] = []
        lines.append(String(format: "requests %d in %.2fs: %.0f req/s%@", total, durationSeconds, throughput,
                            offeredRate.map { String(format: " (offered %.0f req/s)", $0) } ?? ""))
        lines.append(String(format: "succeeded %d, failed %d (error rate %.4f%%)", recorder.succeeded, recorder.failed, errorRate * 100))
        lines.append("latency  " + percentileLine(latencyNanos(percentile:)))
        if offeredRate != nil {
            // Open loop: latency above counts from the intended send time; this counts from the
            // actual send, as h2load does (the gap is the generator's or the server's backlog).
            lines.append("service  " + percentileLine(serviceNanos(percentile:)) + "  (HEADERS sent -> stream closed)")
        }
        if !recorder.statuses.isEmpty {
            lines.append("status   " + recorder.statuses.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "  "))
        }
        for (message, count) in recorder.errors.sorted(by: { $0.value > $1.value }) { lines.append("error    \(count) x \(message)") }
        if !recorder.versions.isEmpty {
            lines.append("versions " + recorder.versions.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "  "))
        }
        let variants = recorder.variants
        let answered = variants.values.reduce(0, +)
        if answered > 0 {
            lines.append("variant  observed  configured")
            for name in Set(variants.keys).union(configuredSplit.keys).sorted() {
                let observed = Double(variants[name] ?? 0) / Double(answered)
                let configured = configuredSplit[name].map { String(format: "%.2f%%", $0 * 100) } ?? "-"
                lines.append(String(format: "  %@  %.2f%%  %@", name, observed * 100, configured))
            }
        }
        return lines.joined(separator: "\n")
    }

    static func trim(_ d: Double) -> String { d == d.rounded() ? String(Int(d)) : String(d) }

    /// Machine-readable summary for CI.
    public var json: [String: Any] {
        var latency: [String: Double] = [:]
        for p in Self.percentiles { latency[p == 100 ? "max_us" : "p\(Self.trim(p))_us"] = Double(latencyNanos(percentile: p)) / 1e3 }
        latency["mean_us"] = meanLatencyNanos / 1e3
        var service: [String: Double] = [:]
        for p in Self.percentiles { service[p == 100 ? "max_us" : "p\(Self.trim(p))_us"] = Double(serviceNanos(percentile: p)) / 1e3 }
        service["mean_us"] = recorder.serviceTime.mean / 1e3
        var out: [String: Any] = [
            "requests": total, "succeeded": recorder.succeeded, "failed": recorder.failed,
            "duration_s": durationSeconds, "throughput_rps": throughput, "error_rate": errorRate,
            "latency": latency, "service_time": service,
            "statuses": Dictionary(uniqueKeysWithValues: recorder.statuses.map { (String($0.key), $0.value) }),
            "errors": recorder.errors, "variants": recorder.variants, "versions": recorder.versions,
        ]
        if let offeredRate { out["offered_rps"] = offeredRate }
        if !configuredSplit.isEmpty { out["configured_split"] = configuredSplit }
        return out
    }
}
