@testable import ApusServer
import XCTest

/// Generated request ids: the prefix, a dash and the counter in lowercase hex, unique.
final class RequestIDGeneratorTests: XCTestCase {
    func testIdsArePrefixDashCounterInHexAndNeverRepeat() {
        let generator = RequestIDGenerator(prefix: 0xbeef01)
        var seen = Set<String>()
        for n in 1...5000 {
            let id = generator.next()
            XCTAssertEqual(id, "beef01-" + String(n, radix: 16))
            XCTAssertTrue(seen.insert(id).inserted)
        }
    }

    func testRandomPrefixesDifferAcrossGenerators() {
        let prefixes = Set((0..<20).map { _ in RequestIDGenerator().next().split(separator: "-")[0] })
        XCTAssertGreaterThan(prefixes.count, 1)
    }
}
