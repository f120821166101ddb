import ApusONNX
import ApusRuntime
import Foundation
import XCTest

/// The conformance check shared by the zoo (Fixtures/zoo) and the generated fixtures
/// (Fixtures/extra, tools/gen_fixtures.py). A fixture folder holds `model.onnx`, `inputs.npy` (of
/// the graph input's element type: float32, or int64 for integer-coded inputs) and one
/// `expected_<output name>.npy` per graph output, computed by onnxruntime: labels must match
/// exactly, values within 1e-5 relative / 1e-6 absolute (NaN where onnxruntime gives NaN), on
/// every row.
enum Conformance {
    static var fixtures: URL {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    }

    static func check(_ folder: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let model = folder.lastPathComponent
        let compiled = try ONNXLoader.load(path: folder.appendingPathComponent("model.onnx").path)
        let input = try NPY.read(folder.appendingPathComponent("inputs.npy"))
        // The runtime does not convert feeds to the declared type: an int64 graph input must be fed int64 rows.
        if let declared = compiled.inputs.first?.elementType {
            XCTAssertEqual(input.elementType, declared, "\(model): inputs.npy vs the graph input's element type",
                           file: file, line: line)
        }
        let rowCount = input.shape.first ?? 1
        // All rows as one batch, then the same rows in other batchings: kernels take different
        // paths for full blocks of rows, leftover rows and single rows, and every path must agree.
        var batchings: [[Range<Int>]] = [[0..<rowCount]]
        if input.shape.count == 2, rowCount > 1 {
            batchings.append((0..<rowCount).map { $0..<($0 + 1) })
            batchings.append(stride(from: 0, to: rowCount, by: 13).map { $0..<min($0 + 13, rowCount) })
        }
        for ranges in batchings {
            var parts: [[Tensor]] = []
            for range in ranges { parts.append(try compiled.run([input.rows(range)])) }
            let outputs = try (0..<compiled.outputs.count).map { o in try Tensor.concatenateRows(parts.map { $0[o] }) }
            let label = ranges.count == 1 ? "one batch" : "batches of \(ranges[0].count)"
            try compare(model: "\(model) (\(label))", folder: folder, specs: compiled.outputs.map(\.name), outputs: outputs, file: file, line: line)
        }
    }

    static func compare(model: String, folder: URL, specs: [String], outputs: [Tensor], file: StaticString, line: UInt) throws {
        for (name, actual) in zip(specs, outputs) {
            let expected = try NPY.read(folder.appendingPathComponent("expected_\(name).npy"))
            XCTAssertEqual(actual.count, expected.count, "\(model) \(name): element count", file: file, line: line)
            switch expected.data {
            case .int64(let want):
                XCTAssertEqual(try actual.int64s(), want, "\(model) \(name): labels differ", file: file, line: line)
            default:
                let want = try expected.floats()
                let got = try actual.floats()
                for i in 0..<min(want.count, got.count) {
                    let tolerance = max(1e-6, 1e-5 * abs(want[i]))
                    if !(abs(got[i] - want[i]) <= tolerance || (got[i].isNaN && want[i].isNaN)) {
                        XCTFail("\(model) \(name)[\(i)] (row \(i / max(1, actual.shape.last ?? 1))): got \(got[i]), onnxruntime \(want[i])", file: file, line: line)
                        return
                    }
                }
            }
        }
    }
}
