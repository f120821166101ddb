@testable import ApusInference
import XCTest

final class SequentialTableTests: XCTestCase {
    /// Appends and removals in any order (mostly oldest first, like a batch queue, with random
    /// cancels), checked against a dictionary after every step.
    func testHoldsExactlyWhatADictionaryWouldUnderAnyRemovalOrder() {
        var table = SequentialTable<Int>()
        var model: [UInt64: Int] = [:]
        var rng = SystemRandomNumberGenerator()
        for step in 0..<50_000 {
            if model.isEmpty || Int.random(in: 0..<5, using: &rng) < 2 {
                let id = table.nextID
                XCTAssertNil(model[id])
                table.append(step)
                model[id] = step
            } else {
                let oldest = model.keys.min() ?? 0
                // Oldest first, a random held one, or one already gone or never added.
                let id: UInt64
                switch Int.random(in: 0..<10, using: &rng) {
                case 0..<6: id = oldest
                case 6..<9: id = model.keys.randomElement(using: &rng) ?? 0
                default: id = UInt64.random(in: 0...(table.nextID + 3), using: &rng)
                }
                XCTAssertEqual(table.remove(id), model.removeValue(forKey: id), "id \(id) at step \(step)")
            }
            XCTAssertEqual(table.count, model.count)
        }
        for id in model.keys.sorted() { XCTAssertEqual(table.remove(id), model[id]) }
        XCTAssertEqual(table.count, 0)
        XCTAssertNil(table.remove(0))
    }
}
