@testable import ApusWire
import ApusCore
import ApusInference
import ApusRuntime
import Foundation
import XCTest

/// Shapes whose element count overflows `Int`, or wraps to a small number, or multiplies out to
/// zero around huge dimensions, are refused with a 400 naming the tensor, in both request
/// formats; and the client refuses such answers with an error. One JSON request of
/// `[4194304, 2097152, 2097152]` with no data used to pass the 10^8 bound (its product wrapped to
/// 0) and then trapped where the tensor was built, ending the server.
final class ShapeBoundsTests: XCTestCase {
    /// The status and message a JSON request body gets (nil: accepted).
    func jsonRefusal(_ text: String, binaryTail: [UInt8] = []) -> (status: Int, message: String)? {
        let json = Array(text.utf8)
        do {
            _ = try KServeJSONCodec.decodeRequest(json + binaryTail, jsonLength: binaryTail.isEmpty ? nil : json.count, model: "m", version: nil)
            return nil
        } catch let error as ApusError {
            return (error.code.httpStatus, error.message)
        } catch {
            return (-1, "\(error)")
        }
    }

    static let hostileShapes: [[Int]] = [
        [4_194_304, 2_097_152, 2_097_152],          // 2^64: wraps to 0
        [999_999_999, 999_999_999, 999_999_999],    // wraps to a large positive
        [1, 8, 4_194_304, 2_097_152, 2_097_152, 1], // wraps to 8
        [0, 999_999_999, 999_999_999],              // holds nothing, rows 10^18 wide
        [999_999_999, 999_999_999, 0],              // overflows before the zero
        [100_000_001],                              // just over the bound
    ]

    func testJSONShapesThatOverflowWrapOrHideBehindAZeroAre400sNamingTheInput() {
        for shape in Self.hostileShapes {
            for data in ["[]", "[1,2,3,4,5,6,7,8]"] {
                let body = #"{"inputs":[{"name":"x","datatype":"FP32","shape":\#(shape),"data":\#(data)}]}"#
                guard let refusal = jsonRefusal(body) else { XCTFail("\(shape) was accepted"); continue }
                XCTAssertEqual(refusal.status, 400, "\(shape): \(refusal.message)")
                XCTAssertTrue(refusal.message.hasPrefix("input x: shape"), refusal.message)
            }
        }
        // The bound itself and empty tensors of sane shapes still decode.
        XCTAssertNil(jsonRefusal(#"{"inputs":[{"name":"x","datatype":"FP32","shape":[0,8],"data":[]}]}"#))
        XCTAssertNil(jsonRefusal(#"{"inputs":[{"name":"x","datatype":"BOOL","shape":[2,0,3],"data":[]}]}"#))
    }

    func testBinaryExtensionShapesAndSizesBeyondIntAre400sNotTraps() {
        for shape in Self.hostileShapes {
            let body = #"{"inputs":[{"name":"x","datatype":"FP32","shape":\#(shape),"parameters":{"binary_data_size":0}}]}"#
            XCTAssertEqual(jsonRefusal(body, binaryTail: [0])?.status, 400, "\(shape)")
        }
        for size in ["1e300", "-1e300", "-4", "2.5", "9223372036854775807", "18446744073709551616"] {
            let body = #"{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":\#(size)}}]}"#
            let refusal = jsonRefusal(body, binaryTail: [0, 0, 128, 63])
            XCTAssertEqual(refusal?.status, 400, "binary_data_size \(size)")
            XCTAssertTrue(refusal?.message.contains("input x: binary_data_size") ?? false, refusal?.message ?? "accepted")
        }
        // A well-formed binary input still decodes (1.0 as little-endian FP32).
        let body = #"{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}}]}"#
        XCTAssertNil(jsonRefusal(body, binaryTail: [0, 0, 128, 63]))
    }

    func testProtobufShapesThatOverflowOrHideBehindAZeroAre400sNamingTheInput() throws {
        let shapes: [[Int64]] = [[0, (1 << 31) - 1, (1 << 31) - 1], [1 << 30, 1 << 30], [(1 << 31) - 1, (1 << 31) - 1, 0], [100_000_001]]
        for shape in shapes {
            var tensor = Apus_V1_Tensor()
            tensor.name = "x"
            tensor.datatype = .fp32
            tensor.shape = shape
            var message = Apus_V1_InferRequest()
            message.inputs = [tensor]
            let bytes: [UInt8] = try message.serializedBytes()
            XCTAssertThrowsError(try ProtobufCodec.decodeRequest(bytes, model: "m", selector: nil), "\(shape)") { error in
                XCTAssertEqual((error as? ApusError)?.code.httpStatus, 400)
                XCTAssertTrue((error as? ApusError)?.message.hasPrefix("input x: shape") ?? false, "\(error)")
            }
        }
    }

    func testOptionalFieldsOfTheWrongTypeAre400sNamingTheFieldNotIgnored() {
        let input = #""inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]"#
        let cases: [(String, String)] = [
            (#"{"id":5,\#(input)}"#, #""id" must be a string"#),
            (#"{"outputs":"label",\#(input)}"#, #""outputs" must be an array"#),
            (#"{"outputs":[{"name":"y","parameters":{"binary_data":"yes"}}],\#(input)}"#, "outputs[0].parameters.binary_data must be true or false"),
            (#"{"parameters":[1],\#(input)}"#, #""parameters" must be an object"#),
            (#"{"parameters":{"routing_key":7},\#(input)}"#, #""parameters.routing_key" must be a string"#),
        ]
        for (body, message) in cases {
            let refusal = jsonRefusal(body)
            XCTAssertEqual(refusal?.status, 400, body)
            XCTAssertEqual(refusal?.message, message, body)
        }
        // Absent or null means "not given", as before.
        XCTAssertNil(jsonRefusal(#"{"id":null,"outputs":null,"parameters":{"routing_key":null},\#(input)}"#))
        XCTAssertNil(jsonRefusal(#"{"id":"r1","outputs":[{"name":"y"}],"parameters":{"routing_key":"k"},\#(input)}"#))
    }

    func testClientRefusesAnswersWithHostileShapesSizesAndLabelsWithAnError() {
        func decode(_ text: String, tail: [UInt8] = []) -> Error? {
            let json = Array(text.utf8)
            do {
                _ = try ClientCodec.decodeResponse(status: 200, contentType: "application/json", body: json + tail, headerLength: tail.isEmpty ? nil : json.count)
                return nil
            } catch {
                return error
            }
        }
        let answers = [
            #"{"outputs":[{"name":"y","datatype":"FP32","shape":[4194304,2097152,2097152],"data":[]}]}"#,
            #"{"outputs":[{"name":"y","datatype":"FP32","shape":[1e300],"data":[]}]}"#,
            #"{"outputs":[{"name":"y","datatype":"FP32","shape":[-1],"data":[]}]}"#,
            #"{"outputs":[{"name":"y","datatype":"FP32","shape":[0,999999999999,999999999999],"data":[]}]}"#,
            #"{"outputs":[{"name":"y","datatype":"FP32","shape":[1],"data":[1]}],"class_labels":[1e300]}"#,
        ]
        for answer in answers {
            XCTAssertTrue(decode(answer) is ApusError, answer)
        }
        for size in ["1e300", "-5", "0.5"] {
            let answer = #"{"outputs":[{"name":"y","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":\#(size)}}]}"#
            XCTAssertTrue(decode(answer, tail: [0, 0, 128, 63]) is ApusError, size)
        }
        XCTAssertNil(decode(#"{"outputs":[{"name":"y","datatype":"FP32","shape":[1],"data":[1]}],"class_labels":[0,1]}"#))
    }
}
