import ApusCore

/// `--fail-if` conditions, e.g. `p99>2ms`, `error_rate>0`, `p50>=500us`, `throughput<1000`.
/// Any condition that holds fails the run (non-zero exit), so CI and canary pipelines can gate
/// on a load test. Value type.
public struct Threshold: Sendable, Equatable, CustomStringConvertible {
    public enum Metric: Sendable, Equatable {
        case percentile(Double)
        case max, mean, errorRate, errors, throughput
    }

    public enum Comparison: String, Sendable {
        case greater = ">", greaterOrEqual = ">=", less = "<", lessOrEqual = "<="
    }

    public var metric: Metric
    public var comparison: Comparison
    /// Latencies in nanoseconds; rates as fractions; throughput in requests per second.
    public var value: Double
    public var text: String

    public var description: String { text }

    /// Parses a comma-separated list.
    public static func parseList(_ text: String) throws -> [Threshold] {
        try text.split(separator: ",").map { try parse(String($0).trimmingCharacters(in: .whitespaces)) }
    }

    public static func parse(_ text: String) throws -> Threshold {
        let operators: [Comparison] = [.greaterOrEqual, .lessOrEqual, .greater, .less]
        guard let op = operators.first(where: { text.contains($0.rawValue) }), let range = text.range(of: op.rawValue) else {
            throw ApusError(.badRequest, "--fail-if \(text): expected <metric><op><value>, e.g. p99>2ms")
        }
        let name = text[..<range.lowerBound].trimmingCharacters(in: .whitespaces).lowercased()
        let valueText = text[range.upperBound...].trimmingCharacters(in: .whitespaces).lowercased()
        let metric: Metric
        var isLatency = false
        switch name {
        case "max": metric = .max; isLatency = true
        case "mean": metric = .mean; isLatency = true
        case "error_rate", "errors_rate": metric = .errorRate
        case "errors": metric = .errors
        case "throughput", "rps": metric = .throughput
        default:
            guard name.hasPrefix("p"), let p = Double(name.dropFirst()), p > 0, p <= 100 else {
                throw ApusError(.badRequest, "--fail-if \(text): unknown metric \(name) (p50, p99, p99.9, max, mean, error_rate, errors, throughput)")
            }
            metric = .percentile(p)
            isLatency = true
        }
        let value: Double
        if isLatency {
            let units: [(String, Double)] = [("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("ns", 1), ("s", 1e9)]
            guard let unit = units.first(where: { valueText.hasSuffix($0.0) }), let number = Double(valueText.dropLast(unit.0.count)) else {
                throw ApusError(.badRequest, "--fail-if \(text): latency needs a unit (ns, us, ms, s)")
            }
            value = number * unit.1
        } else if valueText.hasSuffix("%"), let number = Double(valueText.dropLast()) {
            value = number / 100
        } else if let number = Double(valueText) {
            value = number
        } else {
            throw ApusError(.badRequest, "--fail-if \(text): \(valueText) is not a number")
        }
        return Threshold(metric: metric, comparison: op, value: value, text: text)
    }

    /// Whether the condition holds for `report` (i.e. the run fails).
    public func isViolated(by report: LoadReport) -> Bool {
        let observed: Double
        switch metric {
        case .percentile(let p): observed = Double(report.latencyNanos(percentile: p))
        case .max: observed = Double(report.latencyNanos(percentile: 100))
        case .mean: observed = report.meanLatencyNanos
        case .errorRate: observed = report.errorRate
        case .errors: observed = Double(report.failed)
        case .throughput: observed = report.throughput
        }
        switch comparison {
        case .greater: return observed > value
        case .greaterOrEqual: return observed >= value
        case .less: return observed < value
        case .lessOrEqual: return observed <= value
        }
    }
}
