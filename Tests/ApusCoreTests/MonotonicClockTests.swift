import ApusCore
import Dispatch
import XCTest

final class MonotonicClockTests: XCTestCase {
    func testReadingsNeverGoBackwards() {
        var last = MonotonicClock.nanoseconds()
        for _ in 0..<10_000 {
            let now = MonotonicClock.nanoseconds()
            XCTAssertGreaterThanOrEqual(now, last)
            last = now
        }
    }

    /// Code outside the serving path (and older tests) may still read `DispatchTime`: on Linux
    /// both read CLOCK_MONOTONIC, so readings taken together agree to well within a millisecond.
    func testItReadsTheClockDispatchTimeReads() {
        let before = DispatchTime.now().uptimeNanoseconds
        let ours = MonotonicClock.nanoseconds()
        let after = DispatchTime.now().uptimeNanoseconds
        XCTAssertLessThanOrEqual(before, ours + 1_000_000)
        XCTAssertLessThanOrEqual(ours, after + 1_000_000)
    }
}
