@testable import ApusRuntime
import XCTest

/// Element counts are computed with overflow checks: shapes come from requests, answers and
/// files, and an unchecked product traps (the process ends) instead of refusing the input.
final class TensorShapeTests: XCTestCase {
    func testElementCountIsNilOnOverflowOrANegativeDimension() {
        XCTAssertEqual(Tensor.elementCount([]), 1)
        XCTAssertEqual(Tensor.elementCount([2, 3, 4]), 24)
        XCTAssertEqual(Tensor.elementCount([0, 1 << 40, 1 << 40]), 0)
        XCTAssertNil(Tensor.elementCount([1 << 40, 1 << 40, 0]), "overflows before the zero")
        XCTAssertNil(Tensor.elementCount([4_194_304, 2_097_152, 2_097_152]), "2^64 must not wrap to 0")
        XCTAssertNil(Tensor.elementCount([2, -3]))
        XCTAssertEqual(Tensor.elementCount([Int.max, 1]), Int.max)
    }

    func testBoundedElementCountCountsEmptyDimensionsAsOne() {
        XCTAssertEqual(Tensor.boundedElementCount([Tensor.maxElements]), Tensor.maxElements)
        XCTAssertNil(Tensor.boundedElementCount([Tensor.maxElements + 1]))
        XCTAssertEqual(Tensor.boundedElementCount([0, 8]), 0)
        XCTAssertNil(Tensor.boundedElementCount([0, 1_000_000, 1_000_000]), "no elements, but rows 10^12 wide")
        XCTAssertNil(Tensor.boundedElementCount([-1, 8]))
    }

    func testTensorInitRefusesAnOverflowingShapeInsteadOfTrapping() {
        XCTAssertThrowsError(try Tensor(shape: [4_194_304, 2_097_152, 2_097_152], data: .float32([])))
        XCTAssertThrowsError(try Tensor(shape: [-1, 1], data: .float32([1])))
        XCTAssertNoThrow(try Tensor(shape: [0, 1 << 40], data: .float32([])))
    }

    func testNPYHeadersWithOverflowingOrNegativeShapesAreRefused() throws {
        for shape in ["(4194304, 2097152, 2097152)", "(-1, 2)", "(9223372036854775807, 2)"] {
            var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
            while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
            header += "\n"
            let length = header.utf8.count
            let bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(length & 0xff), UInt8(length >> 8)] + Array(header.utf8) + [0, 0, 128, 63]
            XCTAssertThrowsError(try NPY.decode(bytes), shape)
        }
        // The same framing with a sane shape reads.
        let tensor = try NPY.decode(try NPY.encode(Tensor(shape: [1, 1], data: .float32([1]))))
        XCTAssertEqual(tensor.shape, [1, 1])
    }

    func testReshapeToAShapeWhoseProductOverflowsFailsTheNode() {
        let kernel = Reshape(name: "r", flattenAxis: nil)
        let x = Tensor(unchecked: [2, 4], .float32(Array(repeating: 1, count: 8)))
        for requested: [Int64] in [[-1, 1 << 62, 4], [1 << 40, 1 << 40], [-1, -1]] {
            let shape = Tensor(unchecked: [requested.count], .int64(requested))
            XCTAssertThrowsError(try kernel.run([x, shape]), "\(requested)")
        }
        XCTAssertEqual(try kernel.run([x, Tensor(unchecked: [2], .int64([-1, 2]))]).first?.shape, [4, 2])
    }
}
