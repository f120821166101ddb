@testable import ApusWire
import ApusCore
import ApusInference
import ApusRuntime
import Foundation
import XCTest

/// Bodies decoded through a thread's request template answer exactly what the full decoder
/// answers; anything but the raw contents differing misses the template.
final class ProtobufRequestTemplateTests: XCTestCase {
    func body(model: String = "", id: String = "", shape: [Int64] = [1, 4], values: [Float]) throws -> [UInt8] {
        var message = Apus_V1_InferRequest()
        message.model = model
        message.id = id
        var tensor = Apus_V1_Tensor()
        tensor.name = "input"
        tensor.datatype = .fp32
        tensor.shape = shape
        tensor.rawContents = values.withUnsafeBytes { Data($0) }
        message.inputs = [tensor]
        return try message.serializedBytes()
    }

    /// What the full decoder answers, field by field.
    func assertSame(_ a: InferRequest, _ b: InferRequest, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.model, b.model, file: file, line: line)
        XCTAssertEqual(a.version, b.version, file: file, line: line)
        XCTAssertEqual(a.id, b.id, file: file, line: line)
        XCTAssertEqual(a.routingKey, b.routingKey, file: file, line: line)
        // By bit pattern: NaN is a value the decoder passes on, and NaN != NaN.
        XCTAssertEqual(a.inputs.map(\.name), b.inputs.map(\.name), file: file, line: line)
        XCTAssertEqual(a.inputs.map(\.tensor.shape), b.inputs.map(\.tensor.shape), file: file, line: line)
        XCTAssertEqual(a.inputs.map { (try? $0.tensor.floats())?.map(\.bitPattern) }, b.inputs.map { (try? $0.tensor.floats())?.map(\.bitPattern) }, file: file, line: line)
        XCTAssertEqual(a.requestedOutputs, b.requestedOutputs, file: file, line: line)
    }

    func full(_ body: [UInt8], model: String = "logreg", selector: VersionSelector? = nil) throws -> InferRequest {
        try ProtobufCodec.request(from: try ProtobufCodec.parseRequest(body), model: model, selector: selector)
    }

    func testBodiesDifferingOnlyInTheirValuesAreDecodedThroughTheTemplateAsTheDecoderWould() throws {
        let scratch = CodecScratch()
        for i in 0..<10 {
            let values: [Float] = [Float(i), -Float(i) / 3, .nan, 1e30]
            let bytes = try body(values: values)
            let decoded = try ProtobufRequestTemplate.decode(bytes, model: "logreg", selector: nil, scratch: scratch)
            assertSame(decoded, try full(bytes))
            XCTAssertEqual(try decoded.inputs[0].tensor.floats()[0], Float(i))
        }
        // The second body built the template; the later ones went through it.
        XCTAssertEqual(scratch.requestTemplate?.usedSinceMiss, true)
    }

    func testABodyDifferingOutsideItsValuesIsDecodedInFull() throws {
        let scratch = CodecScratch()
        for i in 0..<3 { _ = try ProtobufRequestTemplate.decode(try body(values: [Float(i), 0, 0, 0]), model: "logreg", selector: nil, scratch: scratch) }
        XCTAssertNotNil(scratch.requestTemplate)
        // Same length and same position of the values, another shape: [2, 2] is not [1, 4].
        let reshaped = try body(shape: [2, 2], values: [1, 2, 3, 4])
        XCTAssertEqual(reshaped.count, try body(values: [1, 2, 3, 4]).count)
        XCTAssertEqual(try ProtobufRequestTemplate.decode(reshaped, model: "logreg", selector: nil, scratch: scratch).inputs[0].tensor.shape, [2, 2])
        // The body's model must still agree with the route's.
        let named = try body(model: "logreh", values: [1, 2, 3, 4])
        for _ in 0..<3 { _ = try ProtobufRequestTemplate.decode(try body(model: "logreg", values: [5, 6, 7, 8]), model: "logreg", selector: nil, scratch: scratch) }
        XCTAssertThrowsError(try ProtobufRequestTemplate.decode(named, model: "logreg", selector: nil, scratch: scratch)) { error in
            XCTAssertEqual((error as? ApusError)?.code, .badRequest)
        }
        // Another route: the same bytes name that route's model and selector.
        let other = try ProtobufRequestTemplate.decode(try body(values: [1, 2, 3, 4]), model: "churn", selector: .version(2), scratch: scratch)
        XCTAssertEqual(other.model, "churn")
        XCTAssertEqual(other.version, .version(2))
    }

    func testBodiesThatDifferEveryTimeKeepTheirOwnIDsAndBuildFewTemplates() throws {
        let scratch = CodecScratch()
        var built = 0
        for i in 0..<400 {
            let bytes = try body(id: String(format: "id-%05d", i), values: [Float(i), 0, 0, 0])
            let hadTemplate = scratch.requestTemplate != nil
            let decoded = try ProtobufRequestTemplate.decode(bytes, model: "logreg", selector: nil, scratch: scratch)
            XCTAssertEqual(decoded.id, String(format: "id-%05d", i))
            assertSame(decoded, try full(bytes))
            if !hadTemplate, scratch.requestTemplate != nil { built += 1 }
        }
        // One template per backoff period at most, never one per request.
        XCTAssertLessThanOrEqual(built, 400 / ProtobufRequestTemplate.backoff + 1)
        XCTAssertGreaterThan(built, 0)
    }
}
