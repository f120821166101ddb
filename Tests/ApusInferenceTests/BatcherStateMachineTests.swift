@testable import ApusInference
import XCTest

/// The batching policy, driven by an injected clock (plain numbers): no threads, no sleeps.
final class BatcherStateMachineTests: XCTestCase {
    typealias Machine = BatcherStateMachine<Int>

    func machine(maxBatch: Int = 8, delay: UInt64 = 1000, preferred: [Int] = [], maxQueue: Int = 100, slots: Int = 1) -> Machine {
        var c = Machine.Configuration()
        c.maxBatchRows = maxBatch
        c.maxQueueDelayNanos = delay
        c.preferredBatchRows = preferred
        c.maxQueueRows = maxQueue
        c.slots = slots
        return Machine(configuration: c)
    }

    func testIdleExecutorRunsTheFirstRequestAtOnce() {
        var m = machine()
        XCTAssertEqual(m.enqueue(id: 1, rows: 1, deadline: nil, now: 0), [.execute([1])])
    }

    func testWorkArrivingWhileTheOnlySlotIsBusyGoesAsOneBatchWhenItFrees() {
        var m = machine(delay: 500)
        _ = m.enqueue(id: 1, rows: 1, deadline: nil, now: 0)
        XCTAssertEqual(m.enqueue(id: 2, rows: 1, deadline: nil, now: 10), [])
        XCTAssertEqual(m.enqueue(id: 3, rows: 1, deadline: nil, now: 20), [])
        XCTAssertEqual(m.batchFinished(now: 600), [.execute([2, 3])])
    }

    func testWorkWaitingPastTheDelayRunsWhenASlotFrees() {
        var m = machine(delay: 100, slots: 2)
        XCTAssertEqual(m.enqueue(id: 1, rows: 1, deadline: nil, now: 0), [.execute([1])])
        // One slot busy, one free: the second request waits (up to the delay) for company.
        XCTAssertEqual(m.enqueue(id: 2, rows: 1, deadline: nil, now: 10), [.scheduleTimer(at: 110)])
        XCTAssertEqual(m.timerFired(now: 110), [.execute([2])])
    }

    func testAFullPreferredBatchDoesNotWaitForTheDelay() {
        var m = machine(maxBatch: 4, delay: 1_000_000, preferred: [4], slots: 2)
        _ = m.enqueue(id: 1, rows: 1, deadline: nil, now: 0)
        _ = m.enqueue(id: 2, rows: 1, deadline: nil, now: 1)
        _ = m.enqueue(id: 3, rows: 1, deadline: nil, now: 2)
        _ = m.enqueue(id: 4, rows: 1, deadline: nil, now: 3)
        XCTAssertEqual(m.enqueue(id: 5, rows: 1, deadline: nil, now: 4), [.execute([2, 3, 4, 5])])
    }

    func testBatchesNeverExceedMaxRowsButAnOversizedRequestRunsAlone() {
        var m = machine(maxBatch: 4, delay: 0)
        _ = m.enqueue(id: 1, rows: 1, deadline: nil, now: 0)
        _ = m.enqueue(id: 2, rows: 3, deadline: nil, now: 1)
        _ = m.enqueue(id: 3, rows: 2, deadline: nil, now: 1)
        _ = m.enqueue(id: 4, rows: 10, deadline: nil, now: 1)
        XCTAssertEqual(m.batchFinished(now: 2), [.execute([2])])
        XCTAssertEqual(m.batchFinished(now: 3), [.execute([3])])
        XCTAssertEqual(m.batchFinished(now: 4), [.execute([4])])
    }

    func testAReleasedBurstRunsInOrderInBatchesOfAtMostMaxRows() {
        var m = machine(maxBatch: 4, delay: 0)
        for i in 0..<10 { XCTAssertEqual(m.enqueue(id: i, rows: 1, deadline: nil, now: 0, dispatch: false), []) }
        XCTAssertEqual(m.queuedRows, 10)
        XCTAssertEqual(m.release(now: 1), [.execute([0, 1, 2, 3])])
        XCTAssertEqual(m.queuedRows, 6)
        XCTAssertEqual(m.batchFinished(now: 2), [.execute([4, 5, 6, 7])])
        XCTAssertEqual(m.batchFinished(now: 3), [.execute([8, 9])])
        XCTAssertEqual(m.queuedRows, 0)
        XCTAssertEqual(m.batchFinished(now: 4), [])
    }

    func testQueueFullRejectsNewWork() {
        var m = machine(maxQueue: 3)
        _ = m.enqueue(id: 1, rows: 1, deadline: nil, now: 0)   // runs
        _ = m.enqueue(id: 2, rows: 2, deadline: nil, now: 0)   // queued: 2 rows
        XCTAssertEqual(m.enqueue(id: 3, rows: 2, deadline: nil, now: 0), [.reject(3)])
        XCTAssertEqual(m.queuedRows, 2)
    }

    func testExpiredDeadlineIsDroppedBeforeItRuns() {
        var m = machine(delay: 0)
        _ = m.enqueue(id: 1, rows: 1, deadline: nil, now: 0)
        _ = m.enqueue(id: 2, rows: 1, deadline: 50, now: 0)
        _ = m.enqueue(id: 3, rows: 1, deadline: 500, now: 0)
        XCTAssertEqual(m.batchFinished(now: 100), [.expire(2), .execute([3])])
        XCTAssertEqual(m.queuedRows, 0)
    }

    func testCancelledRequestLeavesTheQueue() {
        var m = machine()
        _ = m.enqueue(id: 1, rows: 1, deadline: nil, now: 0)
        _ = m.enqueue(id: 2, rows: 5, deadline: nil, now: 0)
        XCTAssertTrue(m.cancel(id: 2))
        XCTAssertEqual(m.queuedRows, 0)
        XCTAssertFalse(m.cancel(id: 2))
        XCTAssertEqual(m.batchFinished(now: 1), [])
    }

    func testLowLoadAddsNoDelay() {
        // One request at a time, each after the previous finished: every one runs at enqueue.
        var m = machine(delay: 1_000_000)
        for i in 0..<10 {
            XCTAssertEqual(m.enqueue(id: i, rows: 1, deadline: nil, now: UInt64(i) * 10), [.execute([i])])
            XCTAssertEqual(m.batchFinished(now: UInt64(i) * 10 + 5), [])
        }
    }
}
