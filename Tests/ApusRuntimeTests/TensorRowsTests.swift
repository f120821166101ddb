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

    func testConcatenatingRowsKeepsEveryRowInOrderAndRejectsMismatchedShapes() throws {
        let a = try Tensor(shape: [1, 3], data: .float32([1, 2, 3]))
        let b = try Tensor(shape: [2, 3], data: .float32([4, 5, 6, 7, 8, 9]))
        let c = try Tensor(shape: [1, 3], data: .float32([10, 11, 12]))
        XCTAssertEqual(try Tensor.concatenateRows([a, b, c]), try Tensor(shape: [4, 3], data: .float32((1...12).map(Float.init))))
        // Mixed numeric types are stacked as float32.
        let d = try Tensor(shape: [1, 3], data: .float64([13, 14, 15]))
        XCTAssertEqual(try Tensor.concatenateRows([a, d]), try Tensor(shape: [2, 3], data: .float32([1, 2, 3, 13, 14, 15])))
        XCTAssertThrowsError(try Tensor.concatenateRows([a, try Tensor(shape: [1, 2], data: .float32([1, 2]))]))
        XCTAssertThrowsError(try Tensor.concatenateRows([a, try Tensor(shape: [3], data: .float32([1, 2, 3]))]))
        XCTAssertThrowsError(try Tensor.concatenateRows([]))
    }
}
