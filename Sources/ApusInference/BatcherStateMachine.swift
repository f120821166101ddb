/// The dynamic batching policy of one served version, as a pure state machine: the shell
/// (`DynamicBatcher`) feeds it events with the current time (nanoseconds, injected) and carries
/// out the actions.
///
/// Policy: a batch starts at once when a slot is free and the executor is idle (no added latency
/// at low load); while other batches run, work waits up to `maxQueueDelay` for a preferred size
/// (then goes anyway); a batch never exceeds `maxBatchRows`, but a single request larger than that
/// runs alone (a request is one unit). Bounded: past `maxQueueRows` new work is rejected.
/// Expired deadlines are dropped before they run. Not thread-safe (the shell locks).
struct BatcherStateMachine<ID: Hashable & Sendable> {
    struct Item {
        var id: ID
        var rows: Int
        var enqueuedAt: UInt64
        var deadline: UInt64?
    }

    struct Configuration: Equatable {
        var maxBatchRows: Int = 64
        var maxQueueDelayNanos: UInt64 = 0
        var preferredBatchRows: [Int] = []
        var maxQueueRows: Int = 4096
        var slots: Int = 1
    }

    enum Action: Equatable {
        case execute([ID])
        case reject(ID)
        case expire(ID)
        /// Wake the machine at this time (`timerFired`).
        case scheduleTimer(at: UInt64)
    }

    let configuration: Configuration
    private(set) var queue: [Item] = []
    private(set) var queuedRows = 0
    private(set) var running = 0

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// A request arrives. `dispatch: false` only queues it (the caller is in a burst of
    /// arrivals and calls `release` at its end, so the burst forms one batch).
    mutating func enqueue(id: ID, rows: Int, deadline: UInt64?, now: UInt64, dispatch: Bool = true) -> [Action] {
        if queuedRows + rows > configuration.maxQueueRows, !queue.isEmpty {
            return [.reject(id)]
        }
        queue.append(Item(id: id, rows: rows, enqueuedAt: now, deadline: deadline))
        queuedRows += rows
        return dispatch ? drain(now: now) : []
    }

    /// The end of a burst of held arrivals: decide as if they had arrived together.
    mutating func release(now: UInt64) -> [Action] {
        drain(now: now)
    }

    /// A batch finished: its slot is free.
    mutating func batchFinished(now: UInt64) -> [Action] {
        running = max(0, running - 1)
        return drain(now: now)
    }

    mutating func timerFired(now: UInt64) -> [Action] {
        drain(now: now)
    }

    /// Removes a request nobody waits for any more (stream reset, connection closed).
    mutating func cancel(id: ID) -> Bool {
        guard let index = queue.firstIndex(where: { $0.id == id }) else { return false }
        queuedRows -= queue[index].rows
        queue.remove(at: index)
        return true
    }

    private mutating func drain(now: UInt64) -> [Action] {
        var actions: [Action] = []
        // Drop what can no longer be answered in time. Checked first: the queue is rebuilt only
        // when something expired, not on every release.
        if queue.contains(where: { $0.deadline.map { $0 <= now } ?? false }) {
            var kept: [Item] = []
            kept.reserveCapacity(queue.count)
            for item in queue {
                if let deadline = item.deadline, deadline <= now {
                    actions.append(.expire(item.id))
                    queuedRows -= item.rows
                } else {
                    kept.append(item)
                }
            }
            queue = kept
        }
        while running < configuration.slots, let oldest = queue.first {
            let preferred = configuration.preferredBatchRows.max() ?? configuration.maxBatchRows
            let waitedEnough = now >= oldest.enqueuedAt &+ configuration.maxQueueDelayNanos
            // Idle executor: go now. Busy: wait for a fuller batch, up to the delay.
            if running > 0, queuedRows < preferred, !waitedEnough {
                actions.append(.scheduleTimer(at: oldest.enqueuedAt &+ configuration.maxQueueDelayNanos))
                break
            }
            // The batch is the longest run from the front within maxBatchRows (at least one
            // request): measured first, then taken with one copy and one removal, not item by item.
            var count = 0
            var rows = 0
            while count < queue.count, count == 0 || rows + queue[count].rows <= configuration.maxBatchRows {
                rows += queue[count].rows
                count += 1
            }
            let batch = queue[..<count].map(\.id)
            queue.removeFirst(count)
            queuedRows -= rows
            running += 1
            actions.append(.execute(batch))
        }
        return actions
    }
}
