import ApusCore
import ApusInference
import ApusRuntime
import ApusSplit
import XCTest

/// Canary progression driven by an injected clock (plain nanoseconds): no timers, no sleeps.
final class CanaryStateMachineTests: XCTestCase {
    typealias Machine = CanaryStateMachine
    let second: UInt64 = 1_000_000_000

    func policy() -> Machine.Policy {
        Machine.Policy(baseline: "stable", canary: "canary", steps: [5, 25, 50, 100], windowSeconds: 60, minRequests: 100,
                       maxErrorRateIncrease: 0.01, maxP99Ratio: 1.5, maxAccuracyDrop: 0.02, minOutcomes: 50)
    }

    let healthy = Machine.WindowStats(requests: 1000, errors: 1, p99Nanos: 2_000_000)

    func testStartsAtTheFirstStep() {
        let m = Machine(policy: policy(), now: 0)
        XCTAssertEqual(m.startActions().first, .setCanaryWeight(500))
    }

    func testAdvancesOnlyAfterAFullHealthyWindowAndPromotesAtTheEnd() {
        var m = Machine(policy: policy(), now: 0)
        XCTAssertEqual(m.evaluate(now: 30 * second, baseline: healthy, canary: healthy), [])
        XCTAssertEqual(m.evaluate(now: 60 * second, baseline: healthy, canary: healthy).first, .setCanaryWeight(2500))
        XCTAssertEqual(m.evaluate(now: 121 * second, baseline: healthy, canary: healthy).first, .setCanaryWeight(5000))
        XCTAssertEqual(m.evaluate(now: 182 * second, baseline: healthy, canary: healthy).first, .setCanaryWeight(10_000))
        XCTAssertEqual(m.evaluate(now: 243 * second, baseline: healthy, canary: healthy).first, .setCanaryWeight(10_000))
        XCTAssertEqual(m.state, .promoted)
    }

    func testTooFewCanaryRequestsHoldTheStep() {
        var m = Machine(policy: policy(), now: 0)
        XCTAssertEqual(m.evaluate(now: 600 * second, baseline: healthy, canary: .init(requests: 10, errors: 0, p99Nanos: 1)), [])
    }

    func testErrorRateBreachRollsBackAtOnce() {
        var m = Machine(policy: policy(), now: 0)
        let actions = m.evaluate(now: 5 * second, baseline: healthy, canary: .init(requests: 200, errors: 10, p99Nanos: 2_000_000))
        XCTAssertEqual(actions.first, .setCanaryWeight(0))
        guard case .rolledBack(let reason) = m.state else { return XCTFail("\(m.state)") }
        XCTAssertTrue(reason.contains("error rate"), reason)
        XCTAssertEqual(m.evaluate(now: 100 * second, baseline: healthy, canary: healthy), [])
    }

    func testLatencyBreachRollsBack() {
        var m = Machine(policy: policy(), now: 0)
        XCTAssertEqual(m.evaluate(now: 1, baseline: healthy, canary: .init(requests: 200, errors: 0, p99Nanos: 5_000_000)).first, .setCanaryWeight(0))
    }

    func testAccuracyDropRollsBackOnlyWithEnoughOutcomes() {
        var m = Machine(policy: policy(), now: 0)
        let base = Machine.WindowStats(requests: 1000, errors: 0, p99Nanos: 1000, outcomes: 100, correct: 90)
        XCTAssertEqual(m.evaluate(now: 1, baseline: base, canary: .init(requests: 10, errors: 0, p99Nanos: 1000, outcomes: 10, correct: 1)), [])
        XCTAssertEqual(m.evaluate(now: 2, baseline: base, canary: .init(requests: 100, errors: 0, p99Nanos: 1000, outcomes: 60, correct: 45)).first, .setCanaryWeight(0))
    }

    func testInvalidPoliciesAreNamed() {
        var p = policy()
        p.steps = [50, 25]
        XCTAssertNotNil(p.problem)
        p = policy()
        p.canary = "stable"
        XCTAssertNotNil(p.problem)
    }
}

final class OutcomeTrackerTests: XCTestCase {
    func prediction(_ variant: String, _ value: Double) -> OutcomeTracker.Prediction {
        OutcomeTracker.Prediction(model: "churn", variant: variant, version: 1, value: value, isClassification: true)
    }

    func testFeedbackJoinsByRequestIDOrRoutingKeyAndCountsPerVariant() throws {
        let tracker = OutcomeTracker(capacity: 10)
        tracker.log(requestID: "r1", routingKey: "u1", prediction: prediction("stable", 1))
        tracker.log(requestID: "r2", routingKey: "u2", prediction: prediction("canary", 0))
        XCTAssertEqual(try tracker.feedback(model: "churn", requestID: "r1", routingKey: nil, truth: 1).variant, "stable")
        XCTAssertEqual(try tracker.feedback(model: "churn", requestID: nil, routingKey: "u2", truth: 1).variant, "canary")
        XCTAssertEqual(tracker.totals["churn"]?["stable"], .init(outcomes: 1, correct: 1, absoluteErrorSum: 0))
        XCTAssertEqual(tracker.totals["churn"]?["canary"], .init(outcomes: 1, correct: 0, absoluteErrorSum: 1))
        // One feedback per prediction; unknown ids are 404s.
        XCTAssertThrowsError(try tracker.feedback(model: "churn", requestID: "r1", routingKey: nil, truth: 1)) { error in
            XCTAssertEqual((error as? ApusError)?.code, .notFound)
        }
    }

    func testMemoryIsBoundedAndOldPredictionsExpire() {
        let tracker = OutcomeTracker(capacity: 3)
        for i in 0..<10 { tracker.log(requestID: "r\(i)", routingKey: "u\(i)", prediction: prediction("stable", 1)) }
        XCTAssertThrowsError(try tracker.feedback(model: "churn", requestID: "r0", routingKey: nil, truth: 1))
        XCTAssertNoThrow(try tracker.feedback(model: "churn", requestID: "r9", routingKey: nil, truth: 1))
        XCTAssertThrowsError(try tracker.feedback(model: "churn", requestID: nil, routingKey: "u0", truth: 1))
        // The three newest routing keys are kept, older ones are forgotten.
        XCTAssertNoThrow(try tracker.feedback(model: "churn", requestID: nil, routingKey: "u8", truth: 1))
        XCTAssertThrowsError(try tracker.feedback(model: "churn", requestID: nil, routingKey: "u6", truth: 1))
        // A key seen again keeps its place and points at its latest request.
        tracker.log(requestID: "r10", routingKey: "u7", prediction: prediction("stable", 1))
        XCTAssertEqual(try tracker.feedback(model: "churn", requestID: nil, routingKey: "u7", truth: 1).version, 1)
    }

    func testACapacityBelowOneStillRemembersTheLatestPrediction() throws {
        let tracker = OutcomeTracker(capacity: 0)
        XCTAssertEqual(tracker.capacity, 1)
        tracker.log(requestID: "a", routingKey: nil, prediction: prediction("stable", 1))
        tracker.log(requestID: "b", routingKey: nil, prediction: prediction("stable", 0))
        XCTAssertThrowsError(try tracker.feedback(model: "churn", requestID: "a", routingKey: nil, truth: 1))
        XCTAssertEqual(try tracker.feedback(model: "churn", requestID: "b", routingKey: nil, truth: 0).value, 0)
    }

    func testAReusedRequestIDJoinsItsLatestPredictionAcrossManyRingWraps() throws {
        let tracker = OutcomeTracker(capacity: 7)
        for round in 0..<50 {
            for i in 0..<5 { tracker.log(requestID: "r\(i)", routingKey: nil, prediction: prediction(round % 2 == 0 ? "stable" : "canary", 1)) }
        }
        // Round 49 was "canary": each id joins its newest entry, once.
        for i in 0..<5 { XCTAssertEqual(try tracker.feedback(model: "churn", requestID: "r\(i)", routingKey: nil, truth: 1).variant, "canary") }
        XCTAssertThrowsError(try tracker.feedback(model: "churn", requestID: "r0", routingKey: nil, truth: 1))
        for i in 0..<1000 { tracker.log(requestID: "x\(i)", routingKey: nil, prediction: prediction("stable", 1)) }
        XCTAssertNoThrow(try tracker.feedback(model: "churn", requestID: "x999", routingKey: nil, truth: 1))
        XCTAssertNoThrow(try tracker.feedback(model: "churn", requestID: "x993", routingKey: nil, truth: 1))
        XCTAssertThrowsError(try tracker.feedback(model: "churn", requestID: "x992", routingKey: nil, truth: 1))
    }

    func testFeedbackJoinsTheSameWhetherIDsWereFiledAsLoggedOrAtTheFirstFeedback() {
        // `eager` files every log as it comes (a feedback call came first); `lazy` files its ring
        // at its first feedback, after ids were reused and the ring wrapped.
        let eager = OutcomeTracker(capacity: 5), lazy = OutcomeTracker(capacity: 5)
        XCTAssertThrowsError(try eager.feedback(model: "churn", requestID: "none", routingKey: nil, truth: 1))
        for i in 0..<13 {
            for tracker in [eager, lazy] {
                tracker.log(requestID: "r\(i % 4)", routingKey: nil, prediction: prediction("v\(i)", Double(i)))
            }
        }
        // Live logs are i = 8...12; each id joins its newest, once (r0 a second time: none left).
        let expected: [(String, Double?)] = [("r0", 12), ("r1", 9), ("r2", 10), ("r3", 11), ("r0", nil), ("r9", nil)]
        for (id, value) in expected {
            XCTAssertEqual((try? eager.feedback(model: "churn", requestID: id, routingKey: nil, truth: 1))?.value, value, id)
            XCTAssertEqual((try? lazy.feedback(model: "churn", requestID: id, routingKey: nil, truth: 1))?.value, value, id)
        }
        for i in 13..<15 { lazy.log(requestID: "s\(i)", routingKey: nil, prediction: prediction("late", Double(i))) }
        XCTAssertEqual(try lazy.feedback(model: "churn", requestID: "s14", routingKey: nil, truth: 1).value, 14)
    }

    func testPredictionIsTheLabelForClassifiersAndTheValueForRegressors() throws {
        let classifier = InferResponse(model: "m", version: 1, id: nil, outputs: [
            .init(name: "label", tensor: try Tensor(shape: [1], data: .int64([2]))),
            .init(name: "probabilities", tensor: try Tensor(shape: [1, 3], data: .float32([0.1, 0.2, 0.7]))),
        ], classLabels: [0, 1, 2])
        XCTAssertEqual(OutcomeTracker.prediction(of: classifier, variant: "a")?.value, 2)
        XCTAssertEqual(OutcomeTracker.prediction(of: classifier, variant: "a")?.isClassification, true)
        let regressor = InferResponse(model: "m", version: 1, id: nil, outputs: [.init(name: "variable", tensor: try Tensor(shape: [1, 1], data: .float32([3.5])))], classLabels: nil)
        XCTAssertEqual(OutcomeTracker.prediction(of: regressor, variant: "a")?.value, 3.5)
    }

    func testPredictionIsReadFromTheRequestsOwnRowOfItsBatch() throws {
        let batch: [NamedTensor] = [
            .init(name: "label", tensor: try Tensor(shape: [3], data: .int64([5, 6, 7]))),
            .init(name: "probabilities", tensor: try Tensor(shape: [3, 2], data: .float32([0, 1, 0, 1, 1, 0]))),
        ]
        let classifier = InferResponse(model: "m", version: 1, id: nil, rows: OutputRows(batch: batch, rows: 2..<3, batchRows: 3), classLabels: nil)
        XCTAssertEqual(OutcomeTracker.prediction(of: classifier, variant: "a")?.value, 7)
        let values: [NamedTensor] = [.init(name: "variable", tensor: try Tensor(shape: [3, 1], data: .float64([1.5, 2.5, 3.5])))]
        let regressor = InferResponse(model: "m", version: 1, id: nil, rows: OutputRows(batch: values, rows: 1..<2, batchRows: 3), classLabels: nil)
        XCTAssertEqual(OutcomeTracker.prediction(of: regressor, variant: "a")?.value, 2.5)
        XCTAssertEqual(OutcomeTracker.prediction(of: regressor, variant: "a")?.isClassification, false)
    }
}
