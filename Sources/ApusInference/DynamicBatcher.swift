import ApusCore
import ApusRuntime
import Dispatch
import Synchronization

/// The I/O shell of `BatcherStateMachine`: holds queued work under a lock, runs batches on the
/// global concurrent queue (the machine bounds how many at once), splits results back per request.
/// Thread-safe.
///
/// Inline execution: a batch released at the end of an event loop's burst whose estimated compute
/// (measured nanoseconds per row x rows) is under `inlineBudgetNanos` runs right there on the
/// loop. Two thread hand-offs cost more than such a batch (a 1-row logistic regression computes in
/// well under a microsecond; a hand-off is a wake-up and, on a pinned core, a context switch), and
/// the budget bounds how long a loop can be kept from its sockets: it counts per release, and the
/// batches an inline batch's end starts run inline too while it lasts. Until a version has run
/// once, its cost is unknown and it goes to the pool.
final class DynamicBatcher: CancellationTarget, Sendable {
    private struct State {
        var machine: BatcherStateMachine<UInt64>
        var work = SequentialTable<InferenceJob>()
        var timerArmedAt: UInt64?
    }

    private let compiled: CompiledModel
    /// The model's output names, in output order: answers are named here, once, so the route
    /// can pass them on without building another array per request.
    private let outputNames: [String]
    private let state: Locked<State>
    private let queue = DispatchQueue.global(qos: .userInitiated)
    private let observer: (any InferenceObserver)?
    private let model: String
    private let version: Int
    private let inlineBudgetNanos: UInt64
    /// Requests submitted and not yet answered (queued or running): a retired version is freed
    /// only once this is 0.
    private let inflight = Atomic<Int>(0)
    /// Moving average of compute nanoseconds per row (0: not measured yet).
    private let nanosPerRow = Atomic<UInt64>(0)

    init(compiled: CompiledModel, configuration: BatcherStateMachine<UInt64>.Configuration, model: String, version: Int,
         inlineBudgetNanos: UInt64 = 0, observer: (any InferenceObserver)?) {
        self.compiled = compiled
        self.outputNames = compiled.outputs.map(\.name)
        self.inlineBudgetNanos = inlineBudgetNanos
        self.state = Locked(State(machine: BatcherStateMachine(configuration: configuration)))
        self.model = model
        self.version = version
        self.observer = observer
    }

    var inflightRequests: Int { inflight.load(ordering: .acquiring) }

    /// Batches started and not yet finished (a batch's slot frees just after its answers).
    var runningBatches: Int { state.withLock { $0.machine.running } }

    /// Rows waiting (not yet running), for the queue-depth gauge.
    var queuedRows: Int { state.withLock { $0.machine.queuedRows } }

    static func now() -> UInt64 { MonotonicClock.nanoseconds() }

    /// Queues `job` (whose `finish` is called once with its answer).
    func submit(_ job: InferenceJob, feeds: [NamedTensor], rows: Int, deadline: UInt64?, isCancelled: (@Sendable () -> Bool)? = nil,
                cancellation: RequestContext? = nil) {
        // Inside a burst (an event loop dispatching the socket reads of one tick), hold the
        // request and decide once at the burst's end, so the burst runs as one batch with one
        // hand-off.
        let hold = WakeupCoalescer.isBatching
        inflight.add(1, ordering: .relaxed)
        // Set before the lock publishes the job to other threads; only read after.
        job.feeds = feeds
        job.rows = rows
        job.isCancelled = isCancelled
        job.cancellation = cancellation
        let (id, actions) = state.withLock { state -> (UInt64, [BatcherStateMachine<UInt64>.Action]) in
            let id = state.work.nextID
            let now = Self.now()
            job.enqueuedAt = now
            state.work.append(job)
            return (id, state.machine.enqueue(id: id, rows: rows, deadline: deadline, now: now, dispatch: !hold))
        }
        perform(actions)
        // A reset stream or closed connection takes its request out of the queue at once.
        cancellation?.onCancel(self, token: id)
        // Only the burst's first request registers the release (checked first: the closure
        // would otherwise be allocated for every request and dropped).
        if hold, !WakeupCoalescer.hasDeferred(key: self) {
            _ = WakeupCoalescer.defer(key: self) { [self] in
                perform(state.withLock { $0.machine.release(now: Self.now()) }, inlineBudget: inlineBudgetNanos)
            }
        }
    }

    func requestCancelled(token: UInt64) { cancel(id: token) }

    /// Removes a queued request (no effect once it runs) and answers it.
    func cancel(id: UInt64) {
        let work = state.withLock { state -> InferenceJob? in
            guard state.machine.cancel(id: id) else { return nil }
            return state.work.remove(id)
        }
        guard let work else { return }
        observer?.requestDropped(model: model, version: version, reason: .cancelled)
        answer(work, .failure(ApusError(.requestTimeout, "the client cancelled the request")))
    }

    /// Whether a batch of `rows` is cheap enough to run on the releasing event loop.
    func runsInline(rows: Int) -> Bool {
        inlineCost(rows: rows).map { $0 <= inlineBudgetNanos } ?? false
    }

    /// Estimated compute nanoseconds of a batch of `rows`; nil when inline execution is off or
    /// the version has not run yet (its cost is unknown).
    private func inlineCost(rows: Int) -> UInt64? {
        let perRow = nanosPerRow.load(ordering: .relaxed)
        guard inlineBudgetNanos > 0, perRow > 0 else { return nil }
        return perRow.multipliedReportingOverflow(by: UInt64(max(rows, 1))).partialValue
    }

    /// Carries out the machine's actions. `inlineBudget`: the compute nanoseconds this thread (an
    /// event loop at the end of its burst) may still spend running batches itself; nil on any
    /// other thread.
    ///
    /// The batches an inline batch's end starts (the rest of a burst larger than one batch, or
    /// work another loop queued meanwhile) run inline too while the budget lasts. Handing them to
    /// the pool instead kept every later batch there: with one slot, the next burst queues behind
    /// the worker's batch and the worker's finish starts it on the pool again, so under steady load
    /// each batch paid two thread hand-offs even on a server confined to one core.
    private func perform(_ actions: [BatcherStateMachine<UInt64>.Action], inlineBudget: UInt64? = nil) {
        guard inlineBudget != nil else { return carryOut(actions, inlineBudget: nil) }
        // The answers of every batch this release runs reach their connections together at its
        // end: one write per connection, not one per batch (with max_batch_size 1, one per
        // request). The budget bounds how long the first batch's answers wait.
        WakeupCoalescer.batch { carryOut(actions, inlineBudget: inlineBudget) }
    }

    private func carryOut(_ actions: [BatcherStateMachine<UInt64>.Action], inlineBudget: UInt64?) {
        var budget = inlineBudget
        // A worklist, not recursion: a long queue drained inline must not grow the loop's stack.
        var pending = actions
        var next = 0
        while next < pending.count {
            let action = pending[next]
            next += 1
            switch action {
            case .execute(let ids):
                let items = state.withLock { state in ids.compactMap { state.work.remove($0) } }
                if let left = budget, let cost = inlineCost(rows: items.reduce(0) { $0 + $1.rows }), cost <= left {
                    budget = left - cost
                    pending += runBatch(items)
                } else {
                    queue.async { self.run(items) }
                }
            case .reject(let id):
                let work = state.withLock { $0.work.remove(id) }
                observer?.requestDropped(model: model, version: version, reason: .queueFull)
                if let work { answer(work, .failure(ApusError(.tooManyRequests, "the model's queue is full; retry later", retryAfterSeconds: 1))) }
            case .expire(let id):
                let work = state.withLock { $0.work.remove(id) }
                observer?.requestDropped(model: model, version: version, reason: .deadline)
                if let work { answer(work, .failure(ApusError(.deadlineExceeded, "the request's deadline passed before it could run"))) }
            case .scheduleTimer(let at):
                let arm = state.withLock { state -> Bool in
                    if let armed = state.timerArmedAt, armed <= at { return false }
                    state.timerArmedAt = at
                    return true
                }
                if arm {
                    // Relative to DispatchTime's own now: `at` is a MonotonicClock reading.
                    queue.asyncAfter(deadline: .now() + .nanoseconds(Int(clamping: at &- min(at, Self.now())))) {
                        let actions = self.state.withLock { state -> [BatcherStateMachine<UInt64>.Action] in
                            state.timerArmedAt = nil
                            return state.machine.timerFired(now: Self.now())
                        }
                        self.perform(actions)
                    }
                }
            }
        }
    }

    /// A batch on a pool thread; what its end starts runs on the pool too.
    private func run(_ items: [InferenceJob]) {
        // Answers of this batch reach each connection with one wake-up.
        WakeupCoalescer.batch { perform(runBatch(items)) }
    }

    /// Runs a batch and frees its slot; returns the machine's actions for what that starts.
    private func runBatch(_ items: [InferenceJob]) -> [BatcherStateMachine<UInt64>.Action] {
        // Cancelled requests (stream reset, client gone) leave here without running.
        var live: [InferenceJob] = []
        for item in items {
            if item.isCancelled?() ?? item.cancellation?.isCancelled ?? false {
                observer?.requestDropped(model: model, version: version, reason: .cancelled)
                answer(item, .failure(ApusError(.requestTimeout, "the client cancelled the request")))
            } else {
                live.append(item)
            }
        }
        if !live.isEmpty { execute(live) }
        return state.withLock { $0.machine.batchFinished(now: Self.now()) }
    }

    private func execute(_ items: [InferenceJob]) {
        do {
            let feeds: [Tensor]
            if items.count == 1 {
                feeds = items[0].feeds.map(\.tensor)
            } else {
                feeds = try (0..<items[0].feeds.count).map { i in try Tensor.concatenateRows(items.map { $0.feeds[i].tensor }) }
            }
            let totalRows = items.reduce(0) { $0 + $1.rows }
            let started = Self.now()
            let outputs = try compiled.run(feeds)
            let finished = Self.now()
            let perRow = (finished &- started) / UInt64(max(totalRows, 1))
            let previous = nanosPerRow.load(ordering: .relaxed)
            // Racy read-modify-write on purpose: a lost update only skews an estimate.
            nanosPerRow.store(previous == 0 ? max(perRow, 1) : max((previous * 7 + perRow) / 8, 1), ordering: .relaxed)
            if let observer {
                observer.batchRan(model: model, version: version, rows: totalRows,
                                  queueWaitNanos: items.map { started &- $0.enqueuedAt }, computeNanos: finished &- started)
                observer.inputsSeen(model: model, version: version, feeds: feeds)
            }
            // Named once per batch; each request gets its rows of these (no copies).
            let named = outputs.indices.map { k in NamedTensor(name: name(ofOutput: k), tensor: outputs[k]) }
            var start = 0
            for item in items {
                let range = start..<(start + item.rows)
                start += item.rows
                answer(item, .success(items.count == 1 ? OutputRows(whole: named) : OutputRows(batch: named, rows: range, batchRows: totalRows)))
            }
        } catch {
            let message = (error as? RuntimeError)?.message ?? "\(error)"
            // Inputs were validated per request, so a failure here is the model's.
            for item in items { answer(item, .failure(ApusError(.internalError, "model execution failed: \(message)"))) }
        }
    }

    /// The name of output `k` (a model that returned more outputs than it declares gets the rest
    /// named by position rather than dropped).
    private func name(ofOutput k: Int) -> String {
        k < outputNames.count ? outputNames[k] : "output\(k)"
    }

    /// Every request leaves through here, once: no longer in flight, then answered.
    private func answer(_ work: InferenceJob, _ result: Result<OutputRows, ApusError>) {
        inflight.subtract(1, ordering: .releasing)
        work.finish(result)
    }
}
