import ApusInference
import XCTest

final class VersionLifecycleTests: XCTestCase {
    func testLoadedVersionServesThenDrainsThenIsFreedWhenIdle() {
        var v = VersionLifecycle()
        XCTAssertEqual(v.state, .loading)
        XCTAssertEqual(v.loaded(), .startServing)
        XCTAssertEqual(v.retire(inflight: 3), .stopServing)
        XCTAssertEqual(v.state, .draining)
        XCTAssertEqual(v.observed(inflight: 1), .none)
        XCTAssertEqual(v.observed(inflight: 0), .free)
        XCTAssertEqual(v.state, .unloaded)
    }

    func testIdleVersionIsFreedAtOnceOnRetire() {
        var v = VersionLifecycle()
        _ = v.loaded()
        XCTAssertEqual(v.retire(inflight: 0), .free)
    }

    func testFailedVersionNeverServes() {
        var v = VersionLifecycle()
        XCTAssertEqual(v.failed("checksum"), .reportFailure("checksum"))
        XCTAssertEqual(v.loaded(), .none)
        XCTAssertEqual(v.state, .failed("checksum"))
        XCTAssertEqual(v.state.name, "FAILED")
        XCTAssertEqual(v.retire(inflight: 0), .free)
    }
}
