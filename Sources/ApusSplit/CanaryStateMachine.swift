/// Automatic canary progression for one model, as a pure state machine: the controller feeds it
/// the clock and each variant's statistics over the current step; it answers with the canary
/// weight to apply. Steps (e.g. 5, 25, 50, 100 %) advance when, for a whole window, the canary's
/// error rate, p99 latency and outcome accuracy stay within bounds of the baseline's; any breach
/// rolls the canary back to 0 %. Not thread-safe (the controller locks).
public struct CanaryStateMachine: Sendable {
    public struct Policy: Codable, Sendable, Equatable {
        public var baseline: String
        public var canary: String
        /// Canary share per step, in percent, increasing; the last is usually 100.
        public var steps: [Double]
        public var windowSeconds: Double
        /// Requests the canary must serve in a window before it can be judged.
        public var minRequests: Int
        /// Allowed canary error rate minus baseline error rate (absolute, e.g. 0.01).
        public var maxErrorRateIncrease: Double
        /// Allowed canary p99 / baseline p99.
        public var maxP99Ratio: Double
        /// Allowed baseline accuracy minus canary accuracy, when both have `minOutcomes` outcomes.
        public var maxAccuracyDrop: Double
        public var minOutcomes: Int

        enum CodingKeys: String, CodingKey {
            case baseline, canary, steps
            case windowSeconds = "window_s"
            case minRequests = "min_requests"
            case maxErrorRateIncrease = "max_error_rate_increase"
            case maxP99Ratio = "max_p99_ratio"
            case maxAccuracyDrop = "max_accuracy_drop"
            case minOutcomes = "min_outcomes"
        }

        public init(baseline: String, canary: String, steps: [Double] = [5, 25, 50, 100], windowSeconds: Double = 60, minRequests: Int = 100,
                    maxErrorRateIncrease: Double = 0.01, maxP99Ratio: Double = 1.5, maxAccuracyDrop: Double = 0.02, minOutcomes: Int = 50) {
            self.baseline = baseline
            self.canary = canary
            self.steps = steps
            self.windowSeconds = windowSeconds
            self.minRequests = minRequests
            self.maxErrorRateIncrease = maxErrorRateIncrease
            self.maxP99Ratio = maxP99Ratio
            self.maxAccuracyDrop = maxAccuracyDrop
            self.minOutcomes = minOutcomes
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let defaults = Policy(baseline: "", canary: "")
            self.init(baseline: try c.decode(String.self, forKey: .baseline), canary: try c.decode(String.self, forKey: .canary),
                      steps: try c.decodeIfPresent([Double].self, forKey: .steps) ?? defaults.steps,
                      windowSeconds: try c.decodeIfPresent(Double.self, forKey: .windowSeconds) ?? defaults.windowSeconds,
                      minRequests: try c.decodeIfPresent(Int.self, forKey: .minRequests) ?? defaults.minRequests,
                      maxErrorRateIncrease: try c.decodeIfPresent(Double.self, forKey: .maxErrorRateIncrease) ?? defaults.maxErrorRateIncrease,
                      maxP99Ratio: try c.decodeIfPresent(Double.self, forKey: .maxP99Ratio) ?? defaults.maxP99Ratio,
                      maxAccuracyDrop: try c.decodeIfPresent(Double.self, forKey: .maxAccuracyDrop) ?? defaults.maxAccuracyDrop,
                      minOutcomes: try c.decodeIfPresent(Int.self, forKey: .minOutcomes) ?? defaults.minOutcomes)
        }

        /// Why the policy is unusable, or nil.
        public var problem: String? {
            if baseline == canary { return "baseline and canary must differ" }
            if steps.isEmpty { return "steps must not be empty" }
            if zip(steps, steps.dropFirst()).contains(where: { $0 >= $1 }) || steps.contains(where: { $0 <= 0 || $0 > 100 }) {
                return "steps must increase, each in (0, 100]"
            }
            if !(windowSeconds > 0) { return "window_s must be positive" }
            if minRequests < 1 { return "min_requests must be at least 1" }
            return nil
        }
    }

    /// One variant over the current window.
    public struct WindowStats: Sendable, Equatable {
        public var requests = 0
        public var errors = 0
        public var p99Nanos: UInt64 = 0
        public var outcomes = 0
        public var correct = 0
        public init(requests: Int = 0, errors: Int = 0, p99Nanos: UInt64 = 0, outcomes: Int = 0, correct: Int = 0) {
            self.requests = requests
            self.errors = errors
            self.p99Nanos = p99Nanos
            self.outcomes = outcomes
            self.correct = correct
        }
        var errorRate: Double { requests > 0 ? Double(errors) / Double(requests) : 0 }
        var accuracy: Double { outcomes > 0 ? Double(correct) / Double(outcomes) : 0 }
    }

    public enum State: Sendable, Equatable {
        case running(step: Int, since: UInt64)
        case promoted
        case rolledBack(String)
    }

    public enum Action: Sendable, Equatable {
        /// Give the canary this share (basis points, 0...10000); start a new window.
        case setCanaryWeight(Int)
        case log(String)
    }

    public let policy: Policy
    public private(set) var state: State

    public init(policy: Policy, now: UInt64) {
        self.policy = policy
        self.state = .running(step: 0, since: now)
    }

    public var canaryWeight: Int {
        switch state {
        case .running(let step, _): Self.basisPoints(policy.steps[step])
        case .promoted: 10_000
        case .rolledBack: 0
        }
    }

    static func basisPoints(_ percent: Double) -> Int { Int((percent * 100).rounded()) }

    public func startActions() -> [Action] {
        [.setCanaryWeight(canaryWeight), .log("canary \(policy.canary) started at \(policy.steps[0])%")]
    }

    /// Judges the current window; call periodically with the window's statistics.
    public mutating func evaluate(now: UInt64, baseline: WindowStats, canary: WindowStats) -> [Action] {
        guard case .running(let step, let since) = state else { return [] }
        // Breaches roll back at once, without waiting for the window to end.
        if canary.requests >= policy.minRequests {
            if canary.errorRate - baseline.errorRate > policy.maxErrorRateIncrease {
                return rollBack("error rate \(Self.percent(canary.errorRate)) vs baseline \(Self.percent(baseline.errorRate))")
            }
            if baseline.p99Nanos > 0, Double(canary.p99Nanos) > Double(baseline.p99Nanos) * policy.maxP99Ratio {
                return rollBack("p99 \(canary.p99Nanos / 1000)us vs baseline \(baseline.p99Nanos / 1000)us")
            }
        }
        if canary.outcomes >= policy.minOutcomes, baseline.outcomes >= policy.minOutcomes,
           baseline.accuracy - canary.accuracy > policy.maxAccuracyDrop {
            return rollBack("accuracy \(Self.percent(canary.accuracy)) vs baseline \(Self.percent(baseline.accuracy))")
        }
        guard now >= since + UInt64(policy.windowSeconds * 1e9), canary.requests >= policy.minRequests else { return [] }
        if step + 1 < policy.steps.count {
            state = .running(step: step + 1, since: now)
            return [.setCanaryWeight(canaryWeight), .log("canary \(policy.canary) healthy for \(policy.windowSeconds)s: step \(step + 2)/\(policy.steps.count), \(policy.steps[step + 1])%")]
        }
        state = .promoted
        return [.setCanaryWeight(10_000), .log("canary \(policy.canary) promoted: every step held")]
    }

    mutating func rollBack(_ reason: String) -> [Action] {
        state = .rolledBack(reason)
        return [.setCanaryWeight(0), .log("canary \(policy.canary) rolled back: \(reason)")]
    }

    /// Operator abort.
    public mutating func abort() -> [Action] {
        guard case .running = state else { return [] }
        return rollBack("aborted by the operator")
    }

    static func percent(_ x: Double) -> String { "\((x * 10000).rounded() / 100)%" }
}
