import ApusCore
import XCTest

final class ApusErrorTests: XCTestCase {
    func testEveryCodeMapsToAClientOrServerErrorStatus() {
        for code in ApusError.Code.allCases {
            XCTAssert((400...599).contains(code.httpStatus), "\(code) -> \(code.httpStatus)")
        }
        XCTAssertEqual(ApusError.Code.headersTooLarge.httpStatus, 431)
        XCTAssertEqual(ApusError.Code.payloadTooLarge.httpStatus, 413)
        XCTAssertEqual(ApusError.Code.deadlineExceeded.httpStatus, 504)
    }

    func testErrorBodyIsJSONWithTheMessageEscaped() {
        let error = ApusError(.badRequest, "tensor \"x\"\nbad\u{01}")
        XCTAssertEqual(error.jsonBody, #"{"error":"tensor \"x\"\nbad\u0001","code":"bad_request"}"#)
    }

    func testErrorResponseCarriesStatusAndRetryAfter() {
        let response = Response.error(ApusError(.tooManyRequests, "queue full", retryAfterSeconds: 1))
        XCTAssertEqual(response.status, 429)
        XCTAssertEqual(response.headers["Retry-After"], "1")
        XCTAssertEqual(response.headers["content-type"], "application/json")
    }

    func testRequestSplitsPathAndQuery() {
        let request = Request(method: "GET", target: "/v2/models/a?x=1&y=2", headers: HTTPFields(), version: .http1_1)
        XCTAssertEqual(request.path, "/v2/models/a")
        XCTAssertEqual(request.query, "x=1&y=2")
    }

    func testHeaderNamesAreCaseInsensitive() {
        var fields = HTTPFields([("Content-Type", "application/json")])
        XCTAssertEqual(fields["content-type"], "application/json")
        fields.replaceOrAdd(name: "CONTENT-TYPE", value: "text/plain")
        XCTAssertEqual(fields.count, 1)
        XCTAssertEqual(fields["Content-Type"], "text/plain")
        // Stored names are lower case, so a lower-case literal finds them without a case scan.
        XCTAssertEqual(fields[lowercased: "content-type"], "text/plain")
        XCTAssertNil(fields[lowercased: "content-length"])
        XCTAssertNil(fields["Content-Length"])
    }
}
