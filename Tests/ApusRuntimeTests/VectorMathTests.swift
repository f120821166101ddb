@testable import ApusRuntime
import Foundation
import XCTest

/// The vectorised exp/logistic/softmax against libm, over the whole range they are used on.
final class VectorMathTests: XCTestCase {
    func testExpMatchesLibmWithinTwoUlpOverItsRange() {
        var x: Float = -87.3
        while x <= 0 {
            let got = VectorMath.expNonPositive(x)
            let want = Float(Foundation.exp(Double(x)))
            XCTAssertLessThanOrEqual(abs(got - want), 2 * want.ulp, "exp(\(x)) = \(got), libm \(want)")
            x += 0.0137
        }
        XCTAssertEqual(VectorMath.expNonPositive(0), 1)
        XCTAssertEqual(VectorMath.expNonPositive(-0.0), 1)
        XCTAssertEqual(VectorMath.expNonPositive(-Float.infinity), 0)
        XCTAssertEqual(VectorMath.expNonPositive(-1000), 0)
        XCTAssertTrue(VectorMath.expNonPositive(Float.nan).isNaN)
    }

    func testLogisticMatchesTheScalarFormulaAndKeepsNaN() {
        for x: Float in [-1e30, -90, -20, -3.5, -1, -1e-8, 0, 1e-8, 0.5, 2, 17, 90, 1e30, .infinity, -.infinity] {
            let v = 1 / (1 + Float(Foundation.exp(Double(-abs(x)))))
            let want = x < 0 ? 1 - v : v
            XCTAssertEqual(VectorMath.logistic(x), want, accuracy: max(1e-7, want * 1e-6), "logistic(\(x))")
        }
        XCTAssertTrue(VectorMath.logistic(Float.nan).isNaN)
    }

    func testBatchedLogisticEqualsOneValueAtATimeBitForBit() {
        var values: [Float] = (0..<37).map { Float($0) * 0.73 - 13 }
        let single = values.map { VectorMath.logistic($0) }
        values.withUnsafeMutableBufferPointer { VectorMath.logistic($0) }
        XCTAssertEqual(values, single)
    }

    func testSoftmaxRowsSumToOneAndNaNPoisonsOnlyItsRow() {
        var values: [Float] = [1, 2, 3, 1000, -1000, 0, .nan, 1, 2, -.infinity, 0, 5]
        values.withUnsafeMutableBufferPointer { VectorMath.softmaxRows($0, width: 3) }
        XCTAssertEqual(values[0] + values[1] + values[2], 1, accuracy: 1e-6)
        XCTAssertEqual(values[2], Float(exp(3.0) / (exp(1.0) + exp(2.0) + exp(3.0))), accuracy: 1e-6)
        XCTAssertEqual(Array(values[3...5]), [1, 0, 0])
        XCTAssertTrue(values[6...8].allSatisfy(\.isNaN))
        XCTAssertEqual(values[9], 0)
        XCTAssertEqual(values[11], Float(exp(5.0) / (1 + exp(5.0))), accuracy: 1e-6)
    }
}
