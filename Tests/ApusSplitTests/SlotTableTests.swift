@testable import ApusSplit
import XCTest

final class SlotTableTests: XCTestCase {
    /// Random inserts and removals, with keys crowded onto a few home positions (and repeated
    /// keys), checked after every step against a plain dictionary of slot -> key.
    func testFindsEverySlotThroughCollisionsAndRemovalsLikeADictionary() {
        let capacity = 64
        var table = SlotTable(capacity: capacity)
        var model: [Int: Int] = [:]
        var rng = SystemRandomNumberGenerator()
        for step in 0..<20_000 {
            let slot = Int.random(in: 0..<capacity, using: &rng)
            if let key = model[slot] {
                table.remove(slot: slot, key: key)
                model[slot] = nil
            } else {
                // Few distinct low bits: long runs that wrap around the table's end.
                let key = Int.random(in: 0..<6, using: &rng) * 37 + (step % 3 == 0 ? 127 : 0) + (Int.random(in: 0...1, using: &rng) << 40)
                table.insert(slot: slot, key: key)
                model[slot] = key
            }
            if step % 97 == 0 || step < 500 {
                for probe in 0..<capacity {
                    let found = model[probe].flatMap { key in table.first(key: key, where: { $0 == probe }) }
                    XCTAssertEqual(found, model[probe] == nil ? nil : probe, "slot \(probe) at step \(step)")
                }
            }
        }
    }

    func testRemovingAnAbsentSlotChangesNothing() {
        var table = SlotTable(capacity: 4)
        table.insert(slot: 1, key: 5)
        table.remove(slot: 2, key: 5)
        table.remove(slot: 1, key: 6)
        XCTAssertEqual(table.first(key: 5) { $0 == 1 }, 1)
        XCTAssertNil(table.first(key: 5) { $0 == 2 })
    }
}
