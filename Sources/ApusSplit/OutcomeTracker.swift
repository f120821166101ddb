import ApusCore
import ApusInference
import ApusRuntime
import Synchronization

/// Joins ground truth to served predictions, so a canary can be judged on accuracy and not only
/// on errors and latency. Every answered request is logged (request id, routing key, variant,
/// version, prediction) in a bounded ring; `POST /v2/models/{m}/feedback` with the request id
/// (or the routing key: its latest request) and the true label or value looks it up and counts,
/// per model and variant, outcomes, correct answers (classifiers) and absolute error (regressors).
///
/// Memory is bounded by `capacity` logged predictions; older ones are forgotten (feedback for
/// them is answered 404). Thread-safe.
public final class OutcomeTracker: Sendable {
    public struct Prediction: Sendable, Equatable {
        public var model: String
        public var variant: String
        public var version: Int
        /// The class label (classifiers) or the first output value (regressors).
        public var value: Double
        public var isClassification: Bool

        public init(model: String, variant: String, version: Int, value: Double, isClassification: Bool) {
            self.model = model
            self.variant = variant
            self.version = version
            self.value = value
            self.isClassification = isClassification
        }
    }

    public struct VariantOutcomes: Sendable, Equatable {
        public var outcomes = 0
        public var correct = 0
        public var absoluteErrorSum = 0.0

        public init(outcomes: Int = 0, correct: Int = 0, absoluteErrorSum: Double = 0) {
            self.outcomes = outcomes
            self.correct = correct
            self.absoluteErrorSum = absoluteErrorSum
        }
        public var accuracy: Double? { outcomes > 0 ? Double(correct) / Double(outcomes) : nil }
        public var meanAbsoluteError: Double? { outcomes > 0 ? absoluteErrorSum / Double(outcomes) : nil }
    }

    struct State {
        /// Slot `sequence % capacity` holds the log numbered `sequence`.
        var ring: [(id: String, prediction: Prediction)?]
        /// The number the next log takes.
        var sequence: UInt64 = 0
        /// Ring slots by the id's in-process hash (`String.hashValue`, seeded per process, so ids
        /// cannot be crafted to collide): integer keys keep the table small and spare a string
        /// comparison per probe. A lookup checks the slot's id, so ids with the same hash are
        /// told apart and feedback never joins the wrong request.
        var byID: SlotTable
        /// Whether `byID` files every log as it comes. Off until the first feedback call: filing
        /// an id is a hash and a random access into a table of megabytes, about 4% of a served
        /// request's CPU, which servers that never get feedback should not pay. The first call
        /// files the ring's live logs in order (the same table eager filing would have built) and
        /// turns it on.
        var indexing = false
        var byKey: [String: String] = [:]
        /// Routing keys in first-seen order, as a ring of `capacity` slots (the oldest is evicted
        /// in O(1); removing the first element of an array moved all 100,000 per request).
        var keyRing: [String?]
        var keyNext = 0
        var totals: [String: [String: VariantOutcomes]] = [:]
    }

    public let capacity: Int
    private let state: Locked<State>

    /// `capacity`: predictions remembered, clamped to 1...`maxCapacity`.
    public init(capacity: Int = 100_000) {
        let capacity = min(max(1, capacity), Self.maxCapacity)
        self.capacity = capacity
        self.state = Locked(State(ring: Array(repeating: nil, count: capacity), byID: SlotTable(capacity: capacity),
                                  keyRing: Array(repeating: nil, count: capacity)))
    }

    /// The id table tells stale entries by 31-bit sequence numbers, which needs the ring far
    /// shorter than 2^31; 2^26 predictions is several gigabytes of ring already.
    public static let maxCapacity = 1 << 26

    /// The prediction an answer carries: a label output if there is one, else the first value.
    public static func prediction(of answer: InferResponse, variant: String) -> Prediction? {
        // Read in place from the batch's outputs: the first value of the request's rows.
        let rows = answer.rows
        for output in rows.batch {
            let first = rows.window(of: output.tensor).elements.lowerBound
            switch output.tensor.data {
            case .int64(let v) where first < v.count:
                return Prediction(model: answer.model, variant: variant, version: answer.version, value: Double(v[first]), isClassification: true)
            case .int32(let v) where first < v.count:
                return Prediction(model: answer.model, variant: variant, version: answer.version, value: Double(v[first]), isClassification: true)
            default: continue
            }
        }
        guard let output = rows.batch.first else { return nil }
        let first = rows.window(of: output.tensor).elements.lowerBound
        let value: Double
        switch output.tensor.data {
        case .float32(let v) where first < v.count: value = Double(v[first])
        case .float64(let v) where first < v.count: value = v[first]
        case .bool(let v) where first < v.count: value = v[first] ? 1 : 0
        default: return nil
        }
        return Prediction(model: answer.model, variant: variant, version: answer.version, value: value, isClassification: false)
    }

    /// Logs a served prediction (single-row requests; a multi-row request logs its first row).
    public func log(requestID: String, routingKey: String?, prediction: Prediction) {
        state.withLock { s in
            // The overwritten prediction's entry is not looked up: the table knows it is stale
            // from its sequence number. An id logged again answers for its latest prediction
            // (`latest`), and feedback consumes all of its entries.
            s.ring[Int(s.sequence % UInt64(capacity))] = (requestID, prediction)
            if s.indexing { s.byID.insert(sequence: s.sequence, key: requestID.hashValue) }
            s.sequence += 1
            if let routingKey {
                if s.byKey[routingKey] == nil {
                    if let dropped = s.keyRing[s.keyNext] { s.byKey[dropped] = nil }
                    s.keyRing[s.keyNext] = routingKey
                    s.keyNext = (s.keyNext + 1) % capacity
                }
                s.byKey[routingKey] = requestID
            }
        }
    }

    /// Records the truth for a logged request; returns the joined prediction.
    public func feedback(model: String, requestID: String?, routingKey: String?, truth: Double) throws -> Prediction {
        guard truth.isFinite else { throw ApusError(.badRequest, "value must be a finite number") }
        return try state.withLock { s in
            if !s.indexing { Self.fileLiveLogs(&s, capacity: capacity) }
            guard let id = requestID ?? routingKey.flatMap({ s.byKey[$0] }) else {
                throw ApusError(.notFound, routingKey.map { "no logged prediction for routing key \($0) (it may have expired)" } ?? "give request_id or routing_key")
            }
            let key = id.hashValue
            guard let slot = s.byID.latest(key: key, where: { s.ring[$0]?.id == id }), let entry = s.ring[slot] else {
                throw ApusError(.notFound, "no logged prediction for request id \(id) (it may have expired)")
            }
            guard entry.prediction.model == model else {
                throw ApusError(.badRequest, "request \(id) was served by model \(entry.prediction.model), not \(model)")
            }
            var totals = s.totals[model, default: [:]][entry.prediction.variant] ?? VariantOutcomes()
            totals.outcomes += 1
            if entry.prediction.isClassification, entry.prediction.value == truth { totals.correct += 1 }
            totals.absoluteErrorSum += abs(entry.prediction.value - truth)
            s.totals[model, default: [:]][entry.prediction.variant] = totals
            // One feedback per prediction: this one and any earlier prediction under the same id.
            var consumed: [Int] = []
            do {
                let ring = s.ring   // read while the table changes; released before the ring is written
                s.byID.removeAll(key: key, where: { slot in
                    guard ring[slot]?.id == id else { return false }
                    consumed.append(slot)
                    return true
                })
            }
            for slot in consumed { s.ring[slot] = nil }
            return entry.prediction
        }
    }

    /// Files the ring's live logs, oldest first, and files every later log as it comes.
    private static func fileLiveLogs(_ s: inout State, capacity: Int) {
        s.indexing = true
        let first = s.sequence >= UInt64(capacity) ? s.sequence - UInt64(capacity) : 0
        for sequence in first..<s.sequence {
            if let entry = s.ring[Int(sequence % UInt64(capacity))] { s.byID.insert(sequence: sequence, key: entry.id.hashValue) }
        }
    }

    /// model -> variant -> outcomes so far.
    public var totals: [String: [String: VariantOutcomes]] { state.withLock { $0.totals } }
}
