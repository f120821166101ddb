import ApusCore
@testable import ApusServer
import ApusWire
import XCTest

/// How a request's deadline is worked out from its headers and body: counted from its arrival,
/// the earliest budget wins, 0 means none (Triton's convention), and a malformed value is a 400
/// naming the field instead of a silently ignored deadline.
final class RequestDeadlineTests: XCTestCase {
    private let arrival: UInt64 = 1_000_000_000

    private func headers(_ pairs: [(String, String)]) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in pairs { fields.add(name: name, value: value) }
        return fields
    }

    func testNoTimeoutMeansNoDeadline() throws {
        XCTAssertNil(try InferenceRoutes.deadline(headers([]), body: nil, from: arrival))
    }

    func testTimeoutHeaderIsMicrosecondsFromArrival() throws {
        XCTAssertEqual(try InferenceRoutes.deadline(headers([("timeout", "2500")]), body: nil, from: arrival), arrival + 2_500_000)
    }

    func testApusTimeoutIsMillisecondsFromArrival() throws {
        XCTAssertEqual(try InferenceRoutes.deadline(headers([("apus-timeout-ms", "1.5")]), body: nil, from: arrival), arrival + 1_500_000)
    }

    func testBodyTimeoutIsMicrosecondsFromArrival() throws {
        XCTAssertEqual(try InferenceRoutes.deadline(headers([]), body: 300, from: arrival), arrival + 300_000)
    }

    func testTheEarliestOfAllBudgetsWins() throws {
        let all = headers([("apus-timeout-ms", "5"), ("timeout", "4000")])
        XCTAssertEqual(try InferenceRoutes.deadline(all, body: 7000, from: arrival), arrival + 4_000_000)
        XCTAssertEqual(try InferenceRoutes.deadline(all, body: 100, from: arrival), arrival + 100_000)
        XCTAssertEqual(try InferenceRoutes.deadline(headers([("apus-timeout-ms", "0.002"), ("timeout", "4000")]), body: nil, from: arrival),
                       arrival + 2000)
    }

    func testZeroTimeoutHeaderMeansNone() throws {
        XCTAssertNil(try InferenceRoutes.deadline(headers([("timeout", "0")]), body: nil, from: arrival))
        XCTAssertEqual(try InferenceRoutes.deadline(headers([("timeout", "0")]), body: 10, from: arrival), arrival + 10_000)
    }

    func testMalformedTimeoutHeadersAreRejectedNamingTheHeader() {
        for (name, value) in [("timeout", "soon"), ("timeout", "-5"), ("timeout", "1.5"), ("timeout", "86400000000"),
                              ("apus-timeout-ms", "0"), ("apus-timeout-ms", "nan"), ("apus-timeout-ms", "-1")] {
            XCTAssertThrowsError(try InferenceRoutes.deadline(headers([(name, value)]), body: nil, from: arrival), "\(name): \(value)") { error in
                let apusError = error as? ApusError
                XCTAssertEqual(apusError?.code, .badRequest)
                XCTAssert(apusError?.message.hasPrefix(name) == true, apusError?.message ?? "")
            }
        }
    }

    func testJSONBodyTimeoutParameterIsDecodedInMicroseconds() throws {
        func decode(_ parameters: String) throws -> UInt64? {
            let body = "{\"parameters\": \(parameters), \"inputs\": [{\"name\": \"x\", \"shape\": [1], \"datatype\": \"FP32\", \"data\": [1]}]}"
            return try KServeJSONCodec.decodeRequest(Array(body.utf8), jsonLength: nil, model: "m", version: nil).timeoutMicroseconds
        }
        XCTAssertEqual(try decode("{\"timeout\": 1500}"), 1500)
        XCTAssertNil(try decode("{\"timeout\": 0}"))
        XCTAssertNil(try decode("{\"routing_key\": \"k\"}"))
        for bad in ["{\"timeout\": -1}", "{\"timeout\": 1.5}", "{\"timeout\": \"100\"}", "{\"timeout\": null}", "{\"timeout\": 1e300}",
                    "{\"timeout\": 86400000000}"] {
            XCTAssertThrowsError(try decode(bad), bad) { error in
                XCTAssertEqual((error as? ApusError)?.code, .badRequest)
                XCTAssert((error as? ApusError)?.message.contains("parameters.timeout") == true)
            }
        }
    }
}
