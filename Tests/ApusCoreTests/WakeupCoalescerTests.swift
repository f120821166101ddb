import ApusCore
import XCTest

/// The thread-local coalescing scopes: a plain scope ends with its body; a tick scope outlives
/// its body until the task it scheduled runs. The "loop" here is a list of scheduled tasks run
/// by hand, as NIO runs them after a tick's I/O.
final class WakeupCoalescerTests: XCTestCase {
    final class Key {}

    func testActionsDeferredInAScopeRunOncePerKeyWhenItEnds() {
        let a = Key(), b = Key()
        var ran: [String] = []
        WakeupCoalescer.batch {
            XCTAssertTrue(WakeupCoalescer.defer(key: a) { ran.append("a") })
            XCTAssertTrue(WakeupCoalescer.defer(key: b) { ran.append("b") })
            XCTAssertTrue(WakeupCoalescer.defer(key: a) { ran.append("a again") })
            XCTAssertEqual(ran, [])
        }
        XCTAssertEqual(ran, ["a", "b"])
        XCTAssertFalse(WakeupCoalescer.isBatching)
        XCTAssertFalse(WakeupCoalescer.defer(key: a) { ran.append("outside") }, "outside a scope the caller acts itself")
    }

    func testATickScopeSpansEveryReadUntilItsTaskRuns() {
        var tasks: [@Sendable () -> Void] = []
        let key = Key()
        var released = 0
        // Three socket reads in one tick: the first opens the scope, the others join it.
        for _ in 0..<3 {
            WakeupCoalescer.batchUntilTaskRuns({ tasks.append($0) }) {
                if !WakeupCoalescer.hasDeferred(key: key) { _ = WakeupCoalescer.defer(key: key) { released += 1 } }
            }
            XCTAssertTrue(WakeupCoalescer.isBatching, "still open after the read")
        }
        XCTAssertEqual(tasks.count, 1, "one task per tick, not per read")
        XCTAssertEqual(released, 0)
        // A plain scope inside the tick joins it rather than ending it.
        WakeupCoalescer.batch { _ = WakeupCoalescer.defer(key: Key()) { released += 10 } }
        XCTAssertEqual(released, 0)
        tasks[0]()
        XCTAssertEqual(released, 11, "the tick's actions ran once, in order")
        XCTAssertFalse(WakeupCoalescer.isBatching)
        // Running the task again does nothing; the next tick opens a new scope.
        tasks[0]()
        XCTAssertEqual(released, 11)
        WakeupCoalescer.batchUntilTaskRuns({ tasks.append($0) }) {}
        XCTAssertEqual(tasks.count, 2)
        tasks[1]()
        XCTAssertFalse(WakeupCoalescer.isBatching)
    }

    func testAnActionThatBatchesAgainGetsAScopeOfItsOwn() {
        // A release running an inline batch at the tick's end: the batch's answers coalesce in a
        // new scope that ends with the batch.
        var tasks: [@Sendable () -> Void] = []
        var flushed = 0
        WakeupCoalescer.batchUntilTaskRuns({ tasks.append($0) }) {
            _ = WakeupCoalescer.defer(key: Key()) {
                WakeupCoalescer.batch {
                    let connection = Key()
                    for _ in 0..<5 where !WakeupCoalescer.hasDeferred(key: connection) {
                        _ = WakeupCoalescer.defer(key: connection) { flushed += 1 }
                    }
                }
            }
        }
        tasks[0]()
        XCTAssertEqual(flushed, 1)
        XCTAssertFalse(WakeupCoalescer.isBatching)
    }
}
