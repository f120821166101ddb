@testable import ApusTransport
import NIOCore
import XCTest

final class UsableCoresTests: XCTestCase {
    func testTheAffinityMaskOfProcStatusIsCountedAcrossItsCommaSeparatedWords() {
        XCTAssertEqual(UsableCores.affinityCount(status: "Name:\tapus\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n"), 2)
        XCTAssertEqual(UsableCores.affinityCount(status: "Cpus_allowed:\t1\n"), 1)
        XCTAssertEqual(UsableCores.affinityCount(status: "Cpus_allowed:\tff,00000001\n"), 9)
        XCTAssertEqual(UsableCores.affinityCount(status: "Cpus_allowed:\tffffffff,ffffffff\n"), 64)
    }

    func testAMissingOrMalformedMaskIsNoRestriction() {
        XCTAssertNil(UsableCores.affinityCount(status: "Name:\tapus\n"))
        XCTAssertNil(UsableCores.affinityCount(status: "Cpus_allowed:\tzz\n"))
        XCTAssertNil(UsableCores.affinityCount(status: "Cpus_allowed:\t0\n"))
    }

    func testThisProcessMayUseAtLeastOneCoreAndNoMoreThanNIOCounts() {
        XCTAssertGreaterThanOrEqual(UsableCores.count, 1)
        XCTAssertLessThanOrEqual(UsableCores.count, System.coreCount)
    }
}
