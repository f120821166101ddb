@testable import ApusServer
import XCTest

/// Generated request ids: the prefix, a dash and the counter in base 32, unique, and short
/// enough to stay inline in a `String`.
final class RequestIDGeneratorTests: XCTestCase {
    func testIdsArePrefixDashCounterInBase32AndNeverRepeat() {
        let generator = RequestIDGenerator(prefix: 0x1ABCDEF)   // 25 bits: 0b11010 10111 10011 01111 01111
        var seen = Set<String>()
        for n in 1...5000 {
            let id = generator.next()
            XCTAssertEqual(id, "qnjff-" + String(n, radix: 32))
            XCTAssertTrue(seen.insert(id).inserted)
        }
    }

    func testIdsStayWithinFifteenBytesForTrillionsOfRequests() {
        for start: UInt64 in [0, 1 << 24, 1 << 40, 32 * 32 * 32 * 32 * 32 * 32 * 32 * 32 * 32 - 2] {
            let id = RequestIDGenerator(prefix: 0, start: start).next()
            XCTAssertLessThanOrEqual(id.utf8.count, 15, id)
            XCTAssertEqual(UInt64(id.split(separator: "-")[1], radix: 32), start + 1, id)
        }
    }

    func testRandomPrefixesDifferAcrossGenerators() {
        let prefixes = Set((0..<20).map { _ in RequestIDGenerator().next().split(separator: "-")[0] })
        XCTAssertGreaterThan(prefixes.count, 1)
        XCTAssertEqual(prefixes.first?.count, 5)
    }
}
