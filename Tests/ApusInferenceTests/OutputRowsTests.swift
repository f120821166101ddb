import ApusInference
import ApusRuntime
import XCTest

/// A request's share of its batch's outputs: which outputs are cut to its rows, where its values
/// lie, and the tensors it copies out when asked.
final class OutputRowsTests: XCTestCase {
    /// A batch of 4 rows: probabilities [4, 2], labels [4], and a non-per-row output [3].
    func batch() throws -> [NamedTensor] {
        [NamedTensor(name: "probabilities", tensor: try Tensor(shape: [4, 2], data: .float32([0, 1, 2, 3, 4, 5, 6, 7]))),
         NamedTensor(name: "label", tensor: try Tensor(shape: [4], data: .int64([10, 11, 12, 13]))),
         NamedTensor(name: "scale", tensor: try Tensor(shape: [3], data: .float64([7, 8, 9])))]
    }

    func testPerRowOutputsAreCutToTheRequestsRowsAndOthersGoWhole() throws {
        let rows = OutputRows(batch: try batch(), rows: 1..<3, batchRows: 4)
        XCTAssertEqual(rows.window(0).elements, 2..<6)
        XCTAssertEqual(rows.window(0).firstDimension, 2)
        XCTAssertEqual(rows.window(1).elements, 1..<3)
        XCTAssertEqual(rows.window(2).elements, 0..<3)
        XCTAssertNil(rows.window(2).firstDimension, "not per row: its own shape")
        XCTAssertEqual(rows.tensors.map(\.tensor), [try Tensor(shape: [2, 2], data: .float32([2, 3, 4, 5])),
                                                    try Tensor(shape: [2], data: .int64([11, 12])),
                                                    try Tensor(shape: [3], data: .float64([7, 8, 9]))])
        XCTAssertEqual(rows.tensors.map(\.name), ["probabilities", "label", "scale"])
    }

    func testARequestThatIsTheWholeBatchOrHasNoWindowGetsTheOutputsAsTheyAre() throws {
        let whole = try batch()
        XCTAssertEqual(OutputRows(batch: whole, rows: 0..<4, batchRows: 4).tensors, whole)
        XCTAssertEqual(OutputRows(whole: whole).tensors, whole)
        XCTAssertEqual(OutputRows(whole: whole).window(0).elements, 0..<8)
        XCTAssertNil(OutputRows(whole: whole).window(1).firstDimension)
    }

    func testFilteringKeepsTheRequestsRows() throws {
        let kept = OutputRows(batch: try batch(), rows: 3..<4, batchRows: 4).filter { $0.name == "label" }
        XCTAssertEqual(kept.tensors, [NamedTensor(name: "label", tensor: try Tensor(shape: [1], data: .int64([13])))])
    }

    func testAnAnswersOutputsAreTheRequestsRowsAndSettingThemReplacesTheWindow() throws {
        var answer = InferResponse(model: "m", version: 1, id: nil, rows: OutputRows(batch: try batch(), rows: 2..<3, batchRows: 4), classLabels: nil)
        XCTAssertEqual(answer.outputs[1].tensor, try Tensor(shape: [1], data: .int64([12])))
        answer.outputs = [NamedTensor(name: "x", tensor: try Tensor(shape: [1], data: .float32([1])))]
        XCTAssertNil(answer.rows.rows)
        XCTAssertEqual(answer.outputs.map(\.name), ["x"])
    }
}
