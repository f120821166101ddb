@testable import ApusWire
import ApusInference
import ApusRuntime
import XCTest

/// The hand-written `InferResponse` encoder against swift-protobuf's generated code: the same
/// bytes for every datatype, empty and default fields, negative labels, many outputs.
final class ProtobufResponseEncodingTests: XCTestCase {
    func tensor(_ kind: Int, rows: Int, _ rng: inout SystemRandomNumberGenerator) throws -> Tensor {
        let n = rows * 2
        switch kind {
        case 0: return try Tensor(shape: [rows, 2], data: .float32((0..<n).map { _ in Float.random(in: -1e6...1e6, using: &rng) }))
        case 1: return try Tensor(shape: [rows, 2], data: .float64((0..<n).map { _ in Double.random(in: -1...1, using: &rng) }))
        case 2: return try Tensor(shape: [rows], data: .int64((0..<rows).map { _ in Int64.random(in: Int64.min...Int64.max, using: &rng) }))
        case 3: return try Tensor(shape: [rows], data: .int32((0..<rows).map { _ in Int32.random(in: Int32.min...Int32.max, using: &rng) }))
        case 4: return try Tensor(shape: [rows], data: .bool((0..<rows).map { _ in Bool.random(using: &rng) }))
        default: return try Tensor(shape: [rows], data: .string((0..<rows).map { "label-\($0)-é" }))
        }
    }

    func testDirectEncodingMatchesTheGeneratedCodeByteForByte() throws {
        var rng = SystemRandomNumberGenerator()
        for round in 0..<300 {
            var outputs: [NamedTensor] = []
            for k in 0..<(round % 4) {
                outputs.append(NamedTensor(name: k == 1 ? "" : "out\(k)", tensor: try tensor((round + k) % 6, rows: (round * 7 + k) % 5, &rng)))
            }
            let labels: [Int64]? = round % 3 == 0 ? nil : (round % 3 == 1 ? [] : [0, 1, -1, Int64.max, Int64.min, 300])
            let answer = InferResponse(model: round % 5 == 0 ? "" : "churn-ß\(round)", version: round % 11 == 0 ? 0 : round * 1000,
                                       variant: round % 2 == 0 ? nil : "canary", id: round % 4 == 0 ? nil : (round % 8 == 1 ? "" : "req-\(round)"),
                                       outputs: outputs, classLabels: labels)
            // The direct writer itself, not its fallback, must match.
            XCTAssertEqual(ProtobufCodec.encodeResponseDirectly(answer), ProtobufCodec.encodeResponseWithGeneratedCode(answer), "round \(round)")
            XCTAssertEqual(ProtobufCodec.encodeResponse(answer), ProtobufCodec.encodeResponseWithGeneratedCode(answer), "round \(round)")
        }
    }

    func testARequestsRowsOfABatchEncodeAsItsOwnTensorsWouldWithoutCopyingThemOut() throws {
        var rng = SystemRandomNumberGenerator()
        for round in 0..<200 {
            let batchRows = 1 + round % 7
            var batch: [NamedTensor] = []
            for k in 0..<(1 + round % 4) {
                batch.append(NamedTensor(name: "out\(k)", tensor: try tensor((round + k) % 6, rows: batchRows, &rng)))
            }
            // An output that is not per row (its first dimension is not the batch's) goes whole.
            if round % 3 == 0 { batch.append(NamedTensor(name: "scale", tensor: try Tensor(shape: [batchRows + 1], data: .float32(Array(repeating: 0.5, count: batchRows + 1))))) }
            let start = round % batchRows
            let rows = start..<(start + 1 + (round / 7) % (batchRows - start))
            let answer = InferResponse(model: "m", version: 3, variant: nil, id: "r\(round)",
                                       rows: OutputRows(batch: batch, rows: rows, batchRows: batchRows), classLabels: [0, 1])
            let copied = InferResponse(model: "m", version: 3, variant: nil, id: "r\(round)", outputs: answer.outputs, classLabels: [0, 1])
            for (k, output) in copied.outputs.enumerated() where output.name != "scale" {
                XCTAssertEqual(output.tensor, batch[k].tensor.rows(rows), "round \(round) output \(k)")
            }
            XCTAssertEqual(ProtobufCodec.encodeResponseDirectly(answer), ProtobufCodec.encodeResponseWithGeneratedCode(copied), "round \(round) rows \(rows) of \(batchRows)")
        }
    }

    /// Every answer of a batch after the first is written from the batch's template: byte for
    /// byte what the generated code writes for its own tensors, whatever its id, variant and
    /// window, with answers of two batches interleaved (each switch rebuilds the template).
    func testAnswersWrittenFromABatchTemplateMatchTheGeneratedCode() throws {
        var rng = SystemRandomNumberGenerator()
        for round in 0..<100 {
            var batches: [(outputs: [NamedTensor], rows: Int)] = []
            for b in 0..<2 {
                let batchRows = 2 + (round + b) % 6
                var outputs: [NamedTensor] = []
                // Numeric kinds only in most rounds (templates); BOOL/BYTES in some (general path).
                for k in 0..<(1 + (round + b) % 3) {
                    outputs.append(NamedTensor(name: "out\(k)", tensor: try tensor(round % 5 == 0 ? 4 + k % 2 : (round + b + k) % 4, rows: batchRows, &rng)))
                }
                if round % 4 == 0 { outputs.append(NamedTensor(name: "whole", tensor: try Tensor(shape: [3], data: .int32([7, -8, 9])))) }
                batches.append((outputs, batchRows))
            }
            let labels: [Int64]? = round % 2 == 0 ? [0, 1] : nil
            for step in 0..<12 {
                let (outputs, batchRows) = batches[step % 2]
                let width = 1 + round % 2
                let start = (step * 3) % (batchRows - width + 1)
                let rows = start..<(start + width)
                let id: String? = step % 5 == 0 ? nil : "req-\(round)-\(step)"
                let variant: String? = step % 3 == 0 ? "canary" : nil
                let answer = InferResponse(model: "churn", version: 2, variant: variant, id: id,
                                           rows: OutputRows(batch: outputs, rows: rows, batchRows: batchRows), classLabels: labels)
                let copied = InferResponse(model: "churn", version: 2, variant: variant, id: id, outputs: answer.outputs, classLabels: labels)
                XCTAssertEqual(ProtobufCodec.encodeResponseDirectly(answer), ProtobufCodec.encodeResponseWithGeneratedCode(copied),
                               "round \(round) step \(step) rows \(rows) of \(batchRows)")
            }
        }
    }

    func testATemplateIsBuiltAtABatchsSecondAnswerAndOnlyForNumericOutputs() throws {
        let batch = [NamedTensor(name: "p", tensor: try Tensor(shape: [4, 2], data: .float32((0..<8).map(Float.init))))]
        func answer(_ row: Int, _ outputs: [NamedTensor]) -> InferResponse {
            InferResponse(model: "m", version: 1, id: "r\(row)", rows: OutputRows(batch: outputs, rows: row..<(row + 1), batchRows: 4), classLabels: nil)
        }
        // Another batch, held alive, answered first: this thread's template and noted batch are
        // then its own, whose storage `batch` cannot share.
        let other = [NamedTensor(name: "q", tensor: try Tensor(shape: [4], data: .int64([1, 2, 3, 4])))]
        _ = ProtobufAnswerTemplate.encode(answer(0, other))
        XCTAssertNotNil(ProtobufAnswerTemplate.encode(answer(1, other)))
        XCTAssertNil(ProtobufAnswerTemplate.encode(answer(0, batch)), "the first answer of a batch only notes it")
        for row in 1..<4 {
            XCTAssertEqual(ProtobufAnswerTemplate.encode(answer(row, batch)), ProtobufCodec.encodeWithoutTemplate(answer(row, batch)))
        }
        let labels = [NamedTensor(name: "ok", tensor: try Tensor(shape: [4], data: .bool([true, false, true, true])))]
        XCTAssertNil(ProtobufAnswerTemplate.encode(answer(0, labels)))
        XCTAssertNil(ProtobufAnswerTemplate.encode(answer(1, labels)), "BOOL outputs are converted per answer, never templated")
        // A lone request's whole outputs never use one.
        XCTAssertNil(ProtobufAnswerTemplate.encode(InferResponse(model: "m", version: 1, id: "x", outputs: batch, classLabels: nil)))
    }

    func testVarintSizesMatchTheBytesWrittenAtEveryGroupBoundary() {
        var values: [UInt64] = [0, .max]
        for bits in 1..<64 { values += [(1 << bits) - 1, 1 << bits] }
        for value in values {
            let size = ProtobufWriter.varintSize(value)
            XCTAssertNotNil(ProtobufWriter.bytes(size: size) { $0.varint(value) }, "\(value) in \(size) bytes")
        }
    }

    func testAWriterGivenTheWrongSizeRefusesInsteadOfWritingPastItsBuffer() {
        let payload: [UInt8] = Array(repeating: 7, count: 40)
        let exact = ProtobufWriter.lengthDelimitedSize(4, count: payload.count)
        let write = { (writer: inout ProtobufWriter) in payload.withUnsafeBytes { writer.lengthDelimited(4, $0) } }
        XCTAssertEqual(ProtobufWriter.bytes(size: exact, write), [0x22, 40] + payload)
        XCTAssertNil(ProtobufWriter.bytes(size: exact - 1, write), "too small: truncated, refused")
        XCTAssertNil(ProtobufWriter.bytes(size: exact + 1, write), "too large: a gap, refused")
        XCTAssertNil(ProtobufWriter.bytes(size: 0, write))
        XCTAssertEqual(ProtobufWriter.bytes(size: 0) { _ in }, [])
    }
}
