import ApusONNX
import ApusRuntime
import Foundation
import XCTest

/// Every model of the conformance zoo (copied from ../shared/zoo) against onnxruntime's outputs:
/// labels exact, values within 1e-5 relative / 1e-6 absolute, every row (thresholds, NaN, extremes).
final class ZooConformanceTests: XCTestCase {
    static var zoo: URL {
        Conformance.fixtures.appendingPathComponent("zoo")
    }

    func check(_ model: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try Conformance.check(Self.zoo.appendingPathComponent(model), file: file, line: line)
    }

    func testRandomForestBinaryMatchesOnnxruntime() throws { try check("rf_binary") }
    func testRandomForestWithZipMapMatchesOnnxruntime() throws { try check("rf_binary_zipmap") }
    func testXGBoostWithMissingValuesMatchesOnnxruntime() throws { try check("xgb_binary") }
    func testGradientBoostingRegressorMatchesOnnxruntime() throws { try check("gbr_regression") }
    func testLogisticRegressionMatchesOnnxruntime() throws { try check("logreg_binary") }
    func testScalerThenLogisticRegressionMatchesOnnxruntime() throws { try check("scaler_logreg_binary") }
    func testMLPMatchesOnnxruntime() throws { try check("mlp_3class") }

    func testUnsupportedOpIsALoadErrorNamingNodeAndOp() throws {
        let graph = GraphSpec(
            inputs: [.init(name: "x", elementType: .float32, shape: [nil, 2])],
            outputs: [.init(name: "y", elementType: .float32, shape: nil)],
            initializers: [:],
            nodes: [GraphSpec.Node(name: "conv1", opType: "Conv", domain: "", inputs: ["x"], outputs: ["y"], attributes: [:])]
        )
        XCTAssertThrowsError(try CompiledModel(graph)) { error in
            XCTAssertEqual((error as? RuntimeError)?.message, "node conv1 (Conv): unsupported op ai.onnx::Conv")
        }
    }

    func testTruncatedFileIsALoadError() throws {
        let data = try Data(contentsOf: Self.zoo.appendingPathComponent("logreg_binary/model.onnx"))
        XCTAssertThrowsError(try ONNXLoader.load(data: data.prefix(data.count / 2), source: "half.onnx"))
    }

    func testWrongFeatureCountIsARunErrorNamingTheInput() throws {
        let compiled = try ONNXLoader.load(path: Self.zoo.appendingPathComponent("rf_binary/model.onnx").path)
        XCTAssertThrowsError(try compiled.run([Tensor(shape: [1, 3], data: .float32([1, 2, 3]))])) { error in
            XCTAssert("\(error)".contains("input"), "\(error)")
        }
    }
}
