@testable import ApusWire
import ApusCore
import ApusInference
import ApusRuntime
import Foundation
import SwiftProtobuf
import XCTest

/// Every committed protocol vector (proto-spec/vectors/messages, written by protoc's Python
/// output) decodes, re-encodes byte-identical, and means what its .json says.
final class ProtocolVectorTests: XCTestCase {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("proto-spec/vectors/messages")

    static func hexBytes(_ text: String) -> [UInt8] {
        let chars = Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        return stride(from: 0, to: chars.count - 1, by: 2).compactMap { UInt8(String(decoding: chars[$0...$0 + 1], as: UTF8.self), radix: 16) }
    }

    func roundTrip<M: SwiftProtobuf.Message>(_ type: M.Type, _ bytes: [UInt8], meaning: Any, name: String) throws -> M {
        let message = try M(serializedBytes: bytes)
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        XCTAssertEqual(try message.serializedBytes(options: options) as [UInt8], bytes, "\(name) does not re-encode byte-identical")
        var json = JSONEncodingOptions()
        json.preserveProtoFieldNames = true
        let ours = try JSONSerialization.jsonObject(with: Data(message.jsonString(options: json).utf8))
        XCTAssertEqual(ours as? NSDictionary, meaning as? NSDictionary, "\(name): meaning differs")
        return message
    }

    func testEveryVectorDecodesAndReencodesByteIdenticalWithItsMeaning() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path).filter { $0.hasSuffix(".hex") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 10)
        for file in files {
            let bytes = Self.hexBytes(try String(contentsOf: Self.directory.appendingPathComponent(file), encoding: .utf8))
            let meta = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.directory.appendingPathComponent(file.replacingOccurrences(of: ".hex", with: ".json")))) as? [String: Any])
            let meaning = meta["meaning"] ?? [:]
            switch meta["message"] as? String {
            case "apus.v1.InferRequest": _ = try roundTrip(Apus_V1_InferRequest.self, bytes, meaning: meaning, name: file)
            case "apus.v1.InferResponse": _ = try roundTrip(Apus_V1_InferResponse.self, bytes, meaning: meaning, name: file)
            case "apus.v1.Error": _ = try roundTrip(Apus_V1_Error.self, bytes, meaning: meaning, name: file)
            case "apus.v1.ModelMetadata": _ = try roundTrip(Apus_V1_ModelMetadata.self, bytes, meaning: meaning, name: file)
            case "apus.v1.ReadyResponse": _ = try roundTrip(Apus_V1_ReadyResponse.self, bytes, meaning: meaning, name: file)
            case "apus.v1.RepositoryIndex": _ = try roundTrip(Apus_V1_RepositoryIndex.self, bytes, meaning: meaning, name: file)
            default: XCTFail("\(file): unknown message \(String(describing: meta["message"]))")
            }
        }
    }

    func testRequestVectorsDecodeIntoTensorsWithTheirValues() throws {
        func request(_ name: String) throws -> InferRequest {
            let bytes = Self.hexBytes(try String(contentsOf: Self.directory.appendingPathComponent(name), encoding: .utf8))
            return try ProtobufCodec.decodeRequest(bytes, model: "churn", selector: nil)
        }
        XCTAssertEqual(try request("01-fp32-one-row.hex").inputs[0].tensor, try Tensor(shape: [1, 4], data: .float32([0.5, -1.25, 3.0, 1e-3])))
        XCTAssertEqual(try request("02-fp64-version.hex").version, .version(2))
        XCTAssertEqual(try request("03-int32.hex").inputs[0].tensor.data, .int32([0, -7, Int32.max]))
        XCTAssertEqual(try request("04-int64.hex").inputs[0].tensor.data, .int64([1, -1, 9_007_199_254_740_993]))
        XCTAssertEqual(try request("05-bool.hex").inputs[0].tensor.data, .bool([true, false, false, true]))
        XCTAssertEqual(try request("06-three-rows.hex").rows, 3)
        let keyed = try request("07-key-id-params-outputs.hex")
        XCTAssertEqual(keyed.routingKey, "user-42")
        XCTAssertEqual(keyed.id, "req-7")
        XCTAssertEqual(Array(keyed.requestedOutputs.keys), ["probabilities"])
        XCTAssertEqual(try request("08-label-nan.hex").version, .label("canary"))
    }

    func testMalformedAndTruncatedBodiesAre400sFedByteByByte() throws {
        let bytes = Self.hexBytes(try String(contentsOf: Self.directory.appendingPathComponent("07-key-id-params-outputs.hex"), encoding: .utf8))
        // Every strict prefix either decodes (a valid shorter message) or fails with 400 — never a crash.
        for n in 0..<bytes.count {
            do {
                _ = try ProtobufCodec.decodeRequest(Array(bytes[0..<n]), model: "churn", selector: nil)
            } catch let error as ApusError {
                XCTAssertEqual(error.code.httpStatus, 400, "prefix \(n): \(error)")
            }
        }
        XCTAssertThrowsError(try ProtobufCodec.decodeRequest([0xff, 0xff, 0xff], model: "m", selector: nil))
        XCTAssertNoThrow(try ProtobufCodec.decodeRequest(bytes, model: "churn", selector: nil))
    }

    func testJSONDecoderRefusesNaNDeepNestingAndShapeMismatchNamingTheTensor() {
        func status(_ text: String) -> Int? {
            do {
                _ = try KServeJSONCodec.decodeRequest(Array(text.utf8), jsonLength: nil, model: "m", version: nil)
                return nil
            } catch let error as ApusError {
                return error.code.httpStatus
            } catch {
                return -1
            }
        }
        XCTAssertEqual(status(#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[NaN]}]}"#), 400)
        XCTAssertEqual(status(String(repeating: "[", count: 100_000)), 400)
        XCTAssertEqual(status(#"{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1]}]}"#), 400)
        XCTAssertNil(status(#"{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,2]}]}"#))
        // Split anywhere, each prefix of a valid document is refused cleanly.
        let doc = Array(#"{"inputs":[{"name":"x","shape":[2],"datatype":"INT64","data":[1,2]}]}"#.utf8)
        for n in 0..<doc.count { XCTAssertNotNil(status(String(decoding: doc[0..<n], as: UTF8.self))) }
    }

    func testCompressionRoundTripsAndBoundsDecompression() throws {
        let body = Array(String(repeating: "{\"inputs\":[]}", count: 1000).utf8)
        for encoding in [Compression.Encoding.gzip, .deflate] {
            let packed = try Compression.deflate(body, encoding: encoding)
            XCTAssertEqual(try Compression.inflate(packed, encoding: encoding, limit: 1 << 20), body)
            XCTAssertThrowsError(try Compression.inflate(packed, encoding: encoding, limit: 100)) { error in
                XCTAssertEqual((error as? ApusError)?.code, .payloadTooLarge)
            }
            XCTAssertThrowsError(try Compression.inflate(Array(packed.dropLast(4)), encoding: encoding, limit: 1 << 20))
        }
    }
}
