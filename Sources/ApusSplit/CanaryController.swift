import ApusCore
import ApusInference
import Dispatch
import Logging
import Synchronization

/// Runs canary progressions (`CanaryStateMachine`) for models with an A/B split: collects each
/// variant's requests, errors and latency per window (it is a `RequestObserver`), joins outcome
/// accuracy from the `OutcomeTracker`, evaluates on a timer, and applies weight changes by
/// rewriting the model's split (bucket ranges of the baseline stay stable as the canary grows).
/// Every step is logged and exported. Thread-safe.
public final class CanaryController: RequestObserver, Sendable {
    public struct Status: Sendable {
        public var model: String
        public var policy: CanaryStateMachine.Policy
        public var state: CanaryStateMachine.State
        public var canaryWeight: Int
        public var steps: Int
        public var history: [String]
    }

    struct Run {
        var machine: CanaryStateMachine
        var windows: [String: VariantWindow] = [:]
        var outcomesAtStart: [String: OutcomeTracker.VariantOutcomes] = [:]
        var stepsTaken = 0
        var history: [String] = []
    }

    private let repository: ModelRepository
    private let outcomes: OutcomeTracker
    private let logger: Logger
    private let runs = Locked<[String: Run]>([:])
    private let clock: @Sendable () -> UInt64

    public init(repository: ModelRepository, outcomes: OutcomeTracker, logger: Logger,
                clock: @escaping @Sendable () -> UInt64 = { MonotonicClock.nanoseconds() }) {
        self.repository = repository
        self.outcomes = outcomes
        self.logger = logger
        self.clock = clock
    }

    /// Starts (or restarts) a progression. The model's split must contain both variants.
    public func start(model: String, policy: CanaryStateMachine.Policy) throws -> Status {
        if let problem = policy.problem { throw ApusError(.badRequest, "canary: \(problem)") }
        guard let split = repository.snapshot.models[model]?.settings.split else {
            throw ApusError(.badRequest, "canary: model \(model) has no split; PUT /v2/models/\(model)/split first")
        }
        for name in [policy.baseline, policy.canary] where !split.variants.contains(where: { $0.name == name }) {
            throw ApusError(.badRequest, "canary: the split of \(model) has no variant \(name)")
        }
        let machine = CanaryStateMachine(policy: policy, now: clock())
        try apply(machine.startActions(), model: model, policy: policy)
        runs.withLock { runs in
            var run = Run(machine: machine)
            run.outcomesAtStart = outcomes.totals[model] ?? [:]
            run.history = ["started: \(policy.steps.map { "\($0)%" }.joined(separator: " -> "))"]
            runs[model] = run
        }
        return try status(model: model)
    }

    public func abort(model: String) throws -> Status {
        let (actions, policy) = try runs.withLock { runs -> ([CanaryStateMachine.Action], CanaryStateMachine.Policy) in
            guard var run = runs[model] else { throw ApusError(.notFound, "no canary for \(model)") }
            let actions = run.machine.abort()
            for case .log(let line) in actions { run.history.append(line) }
            runs[model] = run
            return (actions, run.machine.policy)
        }
        try apply(actions, model: model, policy: policy)
        return try status(model: model)
    }

    public func status(model: String) throws -> Status {
        try runs.withLock { runs in
            guard let run = runs[model] else { throw ApusError(.notFound, "no canary for \(model)") }
            return Status(model: model, policy: run.machine.policy, state: run.machine.state, canaryWeight: run.machine.canaryWeight,
                          steps: run.stepsTaken, history: run.history)
        }
    }

    public var all: [Status] {
        runs.withLock { runs in
            runs.map { Status(model: $0.key, policy: $0.value.machine.policy, state: $0.value.machine.state, canaryWeight: $0.value.machine.canaryWeight,
                              steps: $0.value.stepsTaken, history: $0.value.history) }
        }
    }

    public func requestFinished(model: String, version: Int?, variant: String?, status: Int, durationNanos: UInt64) {
        guard let variant else { return }
        runs.withLock { runs in
            guard runs[model] != nil else { return }
            runs[model]?.windows[variant, default: VariantWindow()].record(status: status, durationNanos: durationNanos)
        }
    }

    /// Evaluates every running progression now (the timer calls this; tests call it directly).
    public func tick() {
        let now = clock()
        let totals = outcomes.totals
        let pending = runs.withLock { runs -> [(String, CanaryStateMachine.Policy, [CanaryStateMachine.Action])] in
            var out: [(String, CanaryStateMachine.Policy, [CanaryStateMachine.Action])] = []
            for (model, var run) in runs {
                guard case .running = run.machine.state else { continue }
                let policy = run.machine.policy
                func stats(_ variant: String) -> CanaryStateMachine.WindowStats {
                    let window = run.windows[variant] ?? VariantWindow()
                    let now = totals[model]?[variant] ?? OutcomeTracker.VariantOutcomes()
                    let start = run.outcomesAtStart[variant] ?? OutcomeTracker.VariantOutcomes()
                    return .init(requests: window.requests, errors: window.errors, p99Nanos: window.percentile(99),
                                 outcomes: now.outcomes - start.outcomes, correct: now.correct - start.correct)
                }
                let actions = run.machine.evaluate(now: now, baseline: stats(policy.baseline), canary: stats(policy.canary))
                if !actions.isEmpty {
                    // A new step (or the end) starts a new window.
                    run.windows = [:]
                    run.outcomesAtStart = totals[model] ?? [:]
                    run.stepsTaken += 1
                    for case .log(let line) in actions { run.history.append(line) }
                    runs[model] = run
                    out.append((model, policy, actions))
                }
            }
            return out
        }
        for (model, policy, actions) in pending {
            do {
                try apply(actions, model: model, policy: policy)
            } catch {
                logger.error("canary: cannot apply a step", metadata: ["model": "\(model)", "error": "\(error)"])
            }
        }
    }

    /// Evaluates every `interval` until the returned timer is cancelled.
    public func startTimer(interval: Duration) -> any DispatchSourceTimer {
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "apus.canary"))
        let nanos = Int(interval.components.seconds) * 1_000_000_000 + Int(interval.components.attoseconds / 1_000_000_000)
        timer.schedule(deadline: .now() + .nanoseconds(nanos), repeating: .nanoseconds(nanos), leeway: .milliseconds(50))
        timer.setEventHandler { [self] in tick() }
        timer.resume()
        return timer
    }

    private func apply(_ actions: [CanaryStateMachine.Action], model: String, policy: CanaryStateMachine.Policy) throws {
        for action in actions {
            switch action {
            case .log(let line):
                logger.notice("\(line)", metadata: ["model": "\(model)"])
            case .setCanaryWeight(let weight):
                try setWeight(model: model, policy: policy, canaryWeight: weight)
            }
        }
    }

    private func setWeight(model: String, policy: CanaryStateMachine.Policy, canaryWeight: Int) throws {
        guard let old = repository.snapshot.models[model]?.settings.split else { throw ApusError(.badRequest, "model \(model) lost its split") }
        var new = old
        let others = old.variants.filter { $0.name != policy.baseline && $0.name != policy.canary }.reduce(0) { $0 + $1.weight }
        let available = BucketTable.bucketCount - others
        let canary = min(canaryWeight, available)
        for i in new.variants.indices {
            if new.variants[i].name == policy.canary { new.variants[i].weight = canary }
            if new.variants[i].name == policy.baseline { new.variants[i].weight = available - canary }
        }
        try repository.setSplit(model: model, split: try TrafficSplitter.replacement(old: old, new: new))
    }
}
