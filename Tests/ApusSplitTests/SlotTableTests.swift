@testable import ApusSplit
import XCTest

final class SlotTableTests: XCTestCase {
    /// A ring of `capacity` slots logged through many wraps, with keys crowded onto a few home
    /// positions and repeated, checked against a plain model of the ring: every live slot is
    /// found under its key, overwritten slots never are, and a repeated key answers its latest.
    func testFindsTheLatestLiveSlotOfEveryKeyThroughCollisionsWrapsAndRemovals() {
        let capacity = 64
        var table = SlotTable(capacity: capacity)
        var ring = [Int?](repeating: nil, count: capacity)   // slot -> key, nil: consumed or never written
        var rng = SystemRandomNumberGenerator()
        for sequence in 0..<UInt64(20_000) {
            // Few distinct low bits: long runs that wrap around the table's end.
            let key = Int.random(in: 0..<6, using: &rng) * 37 + (sequence % 3 == 0 ? 127 : 0) + (Int.random(in: 0...1, using: &rng) << 40)
            let slot = Int(sequence % UInt64(capacity))
            ring[slot] = key
            table.insert(sequence: sequence, key: key)
            if sequence % 5 == 0 {
                // Feedback for a random key consumes all its live slots.
                let victim = ring.compactMap { $0 }.randomElement(using: &rng) ?? key
                table.removeAll(key: victim) { ring[$0] == victim }
                for i in ring.indices where ring[i] == victim { ring[i] = nil }
            }
            if sequence % 97 == 0 || sequence < 300 {
                for probe in Set(ring.compactMap { $0 }) {
                    // The latest slot holding `probe`: walk back from the newest slot.
                    let expected = (0..<capacity).lazy.map { Int((sequence + UInt64(capacity) - UInt64($0)) % UInt64(capacity)) }.first { ring[$0] == probe }
                    XCTAssertEqual(table.latest(key: probe) { ring[$0] == probe }, expected, "key \(probe) at \(sequence)")
                }
            }
        }
    }

    func testAnOverwrittenSlotIsNoLongerFoundUnderItsOldKey() {
        var table = SlotTable(capacity: 4)
        for sequence in 0..<UInt64(4) { table.insert(sequence: sequence, key: Int(sequence) + 100) }
        XCTAssertEqual(table.latest(key: 100) { _ in true }, 0)
        table.insert(sequence: 4, key: 7)   // slot 0 again
        XCTAssertNil(table.latest(key: 100) { _ in true }, "stale: four logs came after it")
        XCTAssertEqual(table.latest(key: 7) { _ in true }, 0)
        XCTAssertEqual(table.latest(key: 103) { _ in true }, 3)
    }

    func testStaleEntriesAreSweptSoTheTableStaysUnderFiveEighthsFull() {
        // Distinct keys through a ring of 8 in a table of 16: without the sweep, stale entries
        // would fill every position, and a lookup (which stops at an empty one) would never end.
        var table = SlotTable(capacity: 8)
        XCTAssertEqual(table.positions, 16)
        let key = { (sequence: UInt64) in Int(truncatingIfNeeded: sequence &* 0x9E37_79B9_7F4A_7C15) }
        for sequence in 0..<UInt64(100_000) {
            table.insert(sequence: sequence, key: key(sequence))
            XCTAssertLessThanOrEqual(table.occupiedPositions, 10, "after \(sequence)")
        }
        XCTAssertEqual(table.latest(key: key(99_999)) { _ in true }, 99_999 % 8)
        XCTAssertNil(table.latest(key: key(99_990)) { _ in true }, "overwritten")
    }
}
