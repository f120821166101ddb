import ApusRuntime
import XCTest

final class TensorRowsTests: XCTestCase {
    func testRowsSliceTheBatchDimensionWithOrWithoutAGivenShape() throws {
        let batch = try Tensor(shape: [3, 2], data: .float32([1, 2, 3, 4, 5, 6]))
        XCTAssertEqual(batch.rows(1..<2), try Tensor(shape: [1, 2], data: .float32([3, 4])))
        XCTAssertEqual(batch.rows(1..<2, shape: [1, 2]), batch.rows(1..<2))
        XCTAssertEqual(batch.rows(0..<3), batch)
        let labels = try Tensor(shape: [3], data: .int64([7, 8, 9]))
        XCTAssertEqual(labels.rows(2..<3, shape: [1]), try Tensor(shape: [1], data: .int64([9])))
        XCTAssertEqual(try Tensor.concatenateRows([batch.rows(0..<1), batch.rows(1..<3)]), batch)
    }
}
