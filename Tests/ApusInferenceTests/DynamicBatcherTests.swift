import ApusCore
import ApusONNX
import ApusRuntime
import Foundation
import XCTest

@testable import ApusInference

/// The batcher's shell: where a batch runs (inline on the releasing thread or on the pool), and
/// that the answers are the model's either way. Completion order is observed, not timed.
final class DynamicBatcherTests: XCTestCase {
    static func batcher(inlineBudgetNanos: UInt64, maxBatchRows: Int = 64, slots: Int = 4) throws -> DynamicBatcher {
        guard let url = Bundle.module.url(forResource: "Fixtures/logreg_binary", withExtension: "onnx") else {
            throw XCTSkip("fixture logreg_binary missing")
        }
        let compiled = try ONNXLoader.load(data: try Data(contentsOf: url))
        var configuration = BatcherStateMachine<UInt64>.Configuration()
        configuration.maxBatchRows = maxBatchRows
        // Default: a free slot even while the previous batch's worker is still finishing after
        // answering (its slot frees just after the completion the test waits for).
        configuration.slots = slots
        return DynamicBatcher(compiled: compiled, configuration: configuration, model: "m", version: 1,
                              inlineBudgetNanos: inlineBudgetNanos, observer: nil)
    }

    static func row(_ value: Float = 0.5) throws -> [NamedTensor] {
        [NamedTensor(name: "input", tensor: try Tensor(shape: [1, 20], data: .float32(Array(repeating: value, count: 20))))]
    }

    /// Submits one request inside a burst scope on this thread (as an event loop does for one
    /// socket read); returns whether it was answered on this thread (inline) and the answer.
    func submitInBurst(_ batcher: DynamicBatcher) throws -> (answeredOnThisThread: Bool, result: Result<OutputRows, ApusError>) {
        // `Locked`, not `Mutex`: the thread sanitizer sees only pthread locking.
        let answer = Locked<(Result<OutputRows, ApusError>, UInt)?>(nil)
        let done = DispatchSemaphore(value: 0)
        let feeds = try Self.row()
        let me = UInt(pthread_self())
        WakeupCoalescer.batch {
            batcher.submit(ClosureJob { result in
                answer.withLock { $0 = (result, UInt(pthread_self())) }
                done.signal()
            }, feeds: feeds, rows: 1, deadline: nil, isCancelled: { false })
        }
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        let (result, thread) = try XCTUnwrap(answer.withLock { $0 })
        return (thread == me, result)
    }

    func testACheapBatchRunsInlineOnTheReleasingThreadOnceItsCostIsKnown() throws {
        let batcher = try Self.batcher(inlineBudgetNanos: 10_000_000)
        XCTAssertFalse(batcher.runsInline(rows: 1), "cost unknown before the first run: the pool")
        let first = try submitInBurst(batcher)
        XCTAssertFalse(first.answeredOnThisThread)
        XCTAssertNoThrow(try first.result.get())
        XCTAssertTrue(batcher.runsInline(rows: 1))
        let second = try submitInBurst(batcher)
        XCTAssertTrue(second.answeredOnThisThread, "answered on the releasing thread: ran inline")
        XCTAssertEqual(try second.result.get().tensors, try first.result.get().tensors)
    }

    func testBatchesStartedByAnInlineBatchsEndRunInlineToo() throws {
        // One row per batch and one slot: a burst of three is three batches in a row, the second
        // and third started by the end of the one before, as under steady load.
        let batcher = try Self.batcher(inlineBudgetNanos: 10_000_000, maxBatchRows: 1, slots: 1)
        _ = try submitInBurst(batcher)
        XCTAssertTrue(batcher.runsInline(rows: 1))
        // The first run's worker frees the slot just after answering: wait for that, not a time.
        let deadline = DispatchTime.now() + 10
        while batcher.runningBatches > 0, DispatchTime.now() < deadline { sched_yield() }
        XCTAssertEqual(batcher.runningBatches, 0)
        let answers = Locked<[(Result<OutputRows, ApusError>, UInt)]>([])
        let done = DispatchSemaphore(value: 0)
        let me = UInt(pthread_self())
        try WakeupCoalescer.batch {
            for value: Float in [0.1, 0.5, 0.9] {
                batcher.submit(ClosureJob { result in
                    answers.withLock { $0.append((result, UInt(pthread_self()))) }
                    done.signal()
                }, feeds: try Self.row(value), rows: 1, deadline: nil, isCancelled: { false })
            }
        }
        for _ in 0..<3 { XCTAssertEqual(done.wait(timeout: .now() + 10), .success) }
        let got = answers.withLock { $0 }
        XCTAssertEqual(got.map(\.1), [me, me, me], "all three batches ran on the releasing thread")
        // Each answer is its own row's: three different probabilities.
        let outputs = try got.map { try XCTUnwrap($0.0.get().tensors.last).tensor.floats() }
        XCTAssertEqual(Set(outputs.map { $0.description }).count, 3)
    }

    func testAZeroBudgetAlwaysUsesThePool() throws {
        let batcher = try Self.batcher(inlineBudgetNanos: 0)
        for _ in 0..<3 {
            XCTAssertFalse(try submitInBurst(batcher).answeredOnThisThread)
        }
        XCTAssertFalse(batcher.runsInline(rows: 1))
    }

    func testABatchOverTheBudgetGoesToThePool() throws {
        let batcher = try Self.batcher(inlineBudgetNanos: 1)
        _ = try submitInBurst(batcher)
        XCTAssertFalse(batcher.runsInline(rows: 1_000_000), "a measured cost per row of at least 1 ns times a million rows is over 1 ns")
    }

    /// Counts its answers; the test reads them after the batch.
    final class CountingJob: InferenceJob, @unchecked Sendable {
        let answers = Locked<[Result<OutputRows, ApusError>]>([])
        let done: DispatchSemaphore
        init(done: DispatchSemaphore) { self.done = done }
        override func finish(_ result: Result<OutputRows, ApusError>) {
            answers.withLock { $0.append(result) }
            done.signal()
        }
    }

    func testEachJobOfABatchIsFinishedOnceWithItsOwnRowAndACancelledOneWithoutRunning() throws {
        let batcher = try Self.batcher(inlineBudgetNanos: 0)
        let done = DispatchSemaphore(value: 0)
        let jobs = (0..<4).map { _ in CountingJob(done: done) }
        let values: [Float] = [0.1, 0.5, 0.9, 0.3]
        try WakeupCoalescer.batch {
            for (job, value) in zip(jobs, values) {
                // The last one's client has gone by the time the batch runs.
                batcher.submit(job, feeds: try Self.row(value), rows: 1, deadline: nil, isCancelled: { job === jobs[3] })
            }
        }
        for _ in jobs { XCTAssertEqual(done.wait(timeout: .now() + 10), .success) }
        XCTAssertEqual(jobs.map { $0.answers.withLock { $0.count } }, [1, 1, 1, 1])
        XCTAssertEqual(batcher.inflightRequests, 0)
        // Each ran job's answer is the model's for its own row (as when submitted alone).
        for (job, value) in zip(jobs.prefix(3), values) {
            let got = try XCTUnwrap(job.answers.withLock { $0.first }).get()
            XCTAssertEqual(got.rows?.count, 1, "one row of a batch of three")
            let alone = try submitAlone(batcher, value: value)
            XCTAssertEqual(try XCTUnwrap(got.tensors.last).tensor.floats(), try XCTUnwrap(alone.tensors.last).tensor.floats())
        }
        guard case .failure(let error) = try XCTUnwrap(jobs[3].answers.withLock { $0.first }) else { return XCTFail("the cancelled job ran") }
        XCTAssertEqual(error.code, .requestTimeout)
    }

    private func submitAlone(_ batcher: DynamicBatcher, value: Float) throws -> OutputRows {
        let done = DispatchSemaphore(value: 0)
        let job = CountingJob(done: done)
        batcher.submit(job, feeds: try Self.row(value), rows: 1, deadline: nil, isCancelled: { false })
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        return try XCTUnwrap(job.answers.withLock { $0.first }).get()
    }
}
