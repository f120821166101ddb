import ApusCore
import ApusInference
@testable import ApusONNX
import ApusRuntime
import Foundation
import Logging
import SwiftProtobuf
import XCTest

/// A model with two named inputs: requests may list them in any order and still reach the model
/// in its own input order; a missing, unknown or repeated input is a 400 naming it.
final class InputOrderTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "apus-order-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// out = Concat(a, b) on axis 1, with a [N, 2] and b [N, 3] (the model's input order: a, b).
    static func concatModel() throws -> [UInt8] {
        func value(_ name: String, _ width: Int64) -> Onnx_ValueInfoProto {
            var info = Onnx_ValueInfoProto()
            info.name = name
            var batch = Onnx_TensorShapeProto.Dimension()
            batch.dimParam = "N"
            var columns = Onnx_TensorShapeProto.Dimension()
            columns.dimValue = width
            var tensor = Onnx_TypeProto.Tensor()
            tensor.elemType = 1   // FLOAT
            tensor.shape.dim = [batch, columns]
            info.type.tensorType = tensor
            return info
        }
        var axis = Onnx_AttributeProto()
        axis.name = "axis"
        axis.type = .int
        axis.i = 1
        var node = Onnx_NodeProto()
        node.opType = "Concat"
        node.input = ["a", "b"]
        node.output = ["out"]
        node.attribute = [axis]
        var graph = Onnx_GraphProto()
        graph.name = "concat"
        graph.node = [node]
        graph.input = [value("a", 2), value("b", 3)]
        graph.output = [value("out", 5)]
        var opset = Onnx_OperatorSetIdProto()
        opset.version = 13
        var model = Onnx_ModelProto()
        model.irVersion = 8
        model.opsetImport = [opset]
        model.graph = graph
        return try model.serializedBytes()
    }

    func served() throws -> (InferenceService, ServedVersion) {
        let directory = "\(root)/pair/1"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let onnx = try Self.concatModel()
        try Data(onnx).write(to: URL(fileURLWithPath: directory + "/model.onnx"))
        let manifest = """
        {"name": "pair", "version": 1, "model_file": "model.onnx",
         "inputs": [{"name": "a", "datatype": "FP32", "shape": [-1, 2]}, {"name": "b", "datatype": "FP32", "shape": [-1, 3]}],
         "sha256": {"model.onnx": "\(SHA256.hex(onnx))"}}
        """
        try manifest.write(toFile: directory + "/manifest.json", atomically: true, encoding: .utf8)
        let repository = ModelRepository(root: root, workers: 1, logger: Logger(label: "test"))
        repository.reload()
        let service = InferenceService(repository: repository)
        return (service, try service.resolve(model: "pair", selector: nil))
    }

    func infer(_ inputs: [NamedTensor], _ service: InferenceService, _ served: ServedVersion) throws -> Result<InferResponse, ApusError> {
        let done = DispatchSemaphore(value: 0)
        let box = Locked<Result<InferResponse, ApusError>?>(nil)
        service.infer(InferRequest(model: "pair", inputs: inputs), on: served) { result in
            box.withLock { $0 = result }
            done.signal()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        return try XCTUnwrap(box.withLock { $0 })
    }

    func testInputsInEitherOrderReachTheModelInItsOwnOrder() throws {
        let (service, served) = try served()
        let a = NamedTensor(name: "a", tensor: try Tensor(shape: [2, 2], data: .float32([1, 2, 3, 4])))
        let b = NamedTensor(name: "b", tensor: try Tensor(shape: [2, 3], data: .float32([5, 6, 7, 8, 9, 10])))
        let expected: [Float] = [1, 2, 5, 6, 7, 3, 4, 8, 9, 10]
        for inputs in [[a, b], [b, a]] {
            let answer = try infer(inputs, service, served).get()
            XCTAssertEqual(answer.outputs.map(\.name), ["out"])
            XCTAssertEqual(answer.outputs.first?.tensor.shape, [2, 5])
            XCTAssertEqual(try answer.outputs.first?.tensor.floats(), expected, "inputs sent as \(inputs.map(\.name))")
        }
    }

    func testAMissingUnknownOrRepeatedInputIsRefusedByName() throws {
        let (service, served) = try served()
        let a = NamedTensor(name: "a", tensor: try Tensor(shape: [1, 2], data: .float32([1, 2])))
        let b = NamedTensor(name: "b", tensor: try Tensor(shape: [1, 3], data: .float32([3, 4, 5])))
        let c = NamedTensor(name: "c", tensor: try Tensor(shape: [1, 3], data: .float32([3, 4, 5])))
        let narrow = NamedTensor(name: "b", tensor: try Tensor(shape: [1, 2], data: .float32([3, 4])))
        for (inputs, words) in [([a], "input b is missing"), ([a, c], "unknown input c"), ([a, a, b], "input a is given twice"),
                                ([b, a, a], "input a is given twice"), ([narrow, a], "input b: shape [1, 2]")] {
            guard case .failure(let error) = try infer(inputs, service, served) else {
                XCTFail("\(inputs.map(\.name)) was accepted")
                continue
            }
            XCTAssertEqual(error.code.httpStatus, 400)
            XCTAssertTrue(error.message.contains(words), "\(error.message) should say \(words)")
        }
    }
}
