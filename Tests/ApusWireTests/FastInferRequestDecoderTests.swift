@testable import ApusWire
import Foundation
import SwiftProtobuf
import XCTest

/// The fast InferRequest decoder against swift-protobuf's: wherever the fast one answers, the
/// general one accepts the same bytes with the same values. Run over the protocol vectors, over
/// requests the generated code encodes, and over thousands of mutations of both.
final class FastInferRequestDecoderTests: XCTestCase {
    func assertAgrees(_ body: [UInt8], _ label: String, file: StaticString = #filePath, line: UInt = #line) -> Bool {
        guard let fast = FastInferRequestDecoder.decode(body) else { return false }
        guard let general = try? ProtobufCodec.parseRequestWithGeneratedCode(body) else {
            XCTFail("\(label): the fast decoder accepted bytes the general decoder rejects: \(body)", file: file, line: line)
            return true
        }
        XCTAssertEqual(fast, general, "\(label): \(body)", file: file, line: line)
        return true
    }

    func bases() throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        let dir = ProtocolVectorTests.directory
        for file in try FileManager.default.contentsOfDirectory(atPath: dir.path).filter({ $0.hasSuffix(".hex") }).sorted() {
            let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent(file.replacingOccurrences(of: ".hex", with: ".json")))) as? [String: Any]
            guard meta?["message"] as? String == "apus.v1.InferRequest" else { continue }
            out.append(ProtocolVectorTests.hexBytes(try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)))
        }
        var message = Apus_V1_InferRequest()
        message.model = "churn"
        message.routingKey = "user-ü-7"
        message.id = "r1"
        message.outputs = ["label", "probabilities"]
        var tensor = Apus_V1_Tensor()
        tensor.name = "x"
        tensor.datatype = .fp32
        tensor.shape = [2, 3]
        tensor.rawContents = Data((0..<24).map { UInt8($0) })
        message.inputs = [tensor, tensor]
        out.append(try message.serializedBytes())
        message.label = "canary"
        message.parameters = ["k": "v"]
        out.append(try message.serializedBytes())
        return out
    }

    func testFastAnswersEqualTheGeneratedDecoderOnVectorsAndMutations() throws {
        var rng = SplitMix(seed: 42)
        var fastAnswered = 0
        for (b, base) in try bases().enumerated() {
            if assertAgrees(base, "base \(b)") { fastAnswered += 1 }
            for m in 0..<3000 {
                var body = base
                switch rng.next() % 5 {
                case 0 where !body.isEmpty: body[Int(rng.next() % UInt64(body.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
                case 1 where !body.isEmpty: body.removeLast(Int(rng.next() % UInt64(body.count)))
                case 2: body.insert(UInt8(truncatingIfNeeded: rng.next()), at: Int(rng.next() % UInt64(body.count + 1)))
                case 3 where !body.isEmpty: body[Int(rng.next() % UInt64(body.count))] = [0x08, 0x10, 0x12, 0x1a, 0x22, 0x2a, 0x32, 0x3a, 0x42, 0x80, 0xff][Int(rng.next() % 11)]
                default: body += base.prefix(Int(rng.next() % UInt64(base.count + 1)))
                }
                if assertAgrees(body, "base \(b) mutation \(m)") { fastAnswered += 1 }
            }
        }
        // The comparison means something only if the fast path took a good share of the inputs.
        XCTAssertGreaterThan(fastAnswered, 1000)
    }

    func testUnusualInputsFallBackToTheGeneralDecoder() throws {
        // A parameters map, a group, an unknown datatype, invalid UTF-8 in a string.
        XCTAssertNil(FastInferRequestDecoder.decode([0x42, 0x06, 0x0a, 0x01, 0x6b, 0x12, 0x01, 0x76]))
        XCTAssertNil(FastInferRequestDecoder.decode([0x4b, 0x4c]))
        XCTAssertNil(FastInferRequestDecoder.decode([0x32, 0x02, 0x10, 0x09]))
        XCTAssertNil(FastInferRequestDecoder.decode([0x0a, 0x02, 0xc3, 0x28]))
        XCTAssertThrowsError(try ProtobufCodec.decodeRequest([0x0a, 0x02, 0xc3, 0x28], model: "m", selector: nil))
    }
}

private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
