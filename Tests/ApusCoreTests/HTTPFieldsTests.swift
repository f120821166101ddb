import XCTest

@testable import ApusCore

final class HTTPFieldsTests: XCTestCase {
    func testEveryFieldIsFoundWhateverItsNameLengthAndAbsentOnesAreNot() {
        var fields = HTTPFields()
        // Lengths 1...80: past 64 the length filter wraps, and must still find them.
        let names = (1...80).map { n in String(repeating: "a", count: n - 1) + "z" }
        for (i, name) in names.enumerated() where i % 2 == 0 { fields.appendLowercased(name: name, value: "v\(i)") }
        for (i, name) in names.enumerated() {
            XCTAssertEqual(fields[lowercased: name], i % 2 == 0 ? "v\(i)" : nil, "length \(name.utf8.count)")
        }
        // Same length as a present field, other bytes.
        XCTAssertNil(fields[lowercased: "b"])
        XCTAssertNil(fields[lowercased: String(repeating: "b", count: 65)])
        // Names of one length (one filter bit), told apart by their bytes.
        var sameLength = HTTPFields()
        for byte in UInt8(ascii: "a")...UInt8(ascii: "z") where byte % 2 == 0 {
            sameLength.appendLowercased(name: String(UnicodeScalar(byte)) + "-twelve-byte", value: String(byte))
        }
        for byte in UInt8(ascii: "a")...UInt8(ascii: "z") {
            XCTAssertEqual(sameLength[lowercased: String(UnicodeScalar(byte)) + "-twelve-byte"], byte % 2 == 0 ? String(byte) : nil)
        }
    }

    func testReplacingAFieldForgetsTheOldOneAndLookupsStayCaseInsensitive() {
        var fields = HTTPFields([("Content-Type", "application/json"), ("X-Request-Id", "a"), ("x-request-id", "b")])
        XCTAssertEqual(fields["content-type"], "application/json")
        XCTAssertEqual(fields["X-REQUEST-ID"], "a")
        fields.replaceOrAdd(name: "X-Request-ID", value: "c")
        XCTAssertEqual(fields[lowercased: "x-request-id"], "c")
        XCTAssertEqual(fields.count, 2)
        fields.replaceOrAdd(name: "content-type", value: "text/plain")
        XCTAssertEqual(fields.map(\.name), ["x-request-id", "content-type"])
        XCTAssertNil(fields["accept"])
    }

    func testEqualityComparesTheFieldsInOrder() {
        var a = HTTPFields()
        a.add(name: "Accept", value: "*/*")
        a.add(name: "te", value: "trailers")
        let b = HTTPFields([("accept", "*/*"), ("TE", "trailers")])
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, HTTPFields([("te", "trailers"), ("accept", "*/*")]))
        var c = b
        c.replaceOrAdd(name: "accept", value: "*/*")
        XCTAssertNotEqual(b, c, "replaced fields move to the end")
    }
}
