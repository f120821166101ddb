import CNghttp2
import XCTest

@testable import ApusTransport

final class NGHTTP2HeaderListTests: XCTestCase {
    /// The (name, value, flags) triples nghttp2 would be handed.
    func fields(_ list: NGHTTP2HeaderList) -> [(String, String, UInt8)] {
        var out: [(String, String, UInt8)] = []
        _ = list.withNV { nv, count in
            for i in 0..<count {
                let field = nv[i]
                out.append((String(decoding: UnsafeBufferPointer(start: field.name, count: field.namelen), as: UTF8.self),
                            String(decoding: UnsafeBufferPointer(start: field.value, count: field.valuelen), as: UTF8.self), field.flags))
            }
            return 0
        }
        return out
    }

    func testDecimalValuesAreWrittenAsTheirDigits() {
        let list = NGHTTP2HeaderList()
        for value in [0, 7, 10, 200, 404, 12345, Int.max] { list.append("n", decimal: value) }
        list.append(literal: "content-length", decimal: 81)
        XCTAssertEqual(fields(list).map(\.1), ["0", "7", "10", "200", "404", "12345", String(Int.max), "81"])
        XCTAssertEqual(fields(list).last?.0, "content-length")
    }

    func testFieldsKeepTheirOrderAndOnlyUnindexedOnesAreFlagged() {
        let list = NGHTTP2HeaderList()
        list.append(":status", decimal: 200)
        list.append("content-type", "application/json")
        list.append("x-request-id", "a-value-longer-than-fifteen-bytes", indexed: false)
        let out = fields(list)
        XCTAssertEqual(out.map(\.0), [":status", "content-type", "x-request-id"])
        XCTAssertEqual(out.map(\.1), ["200", "application/json", "a-value-longer-than-fifteen-bytes"])
        XCTAssertEqual(out.map(\.2), [0, 0, UInt8(NGHTTP2_NV_FLAG_NO_INDEX.rawValue)])
    }

    func testRemoveAllStartsAFreshList() {
        let list = NGHTTP2HeaderList()
        list.append("a", "1")
        list.removeAll()
        list.append("content-length", decimal: 42)
        XCTAssertEqual(fields(list).map { "\($0.0)=\($0.1)" }, ["content-length=42"])
    }

    func testAListGrownPastItsCapacityKeepsEveryFieldIntact() {
        let list = NGHTTP2HeaderList(capacity: 16, count: 4)
        var expected: [String] = []
        for i in 0..<40 {
            // Small (inline) strings, long ones and substrings made native by concatenation.
            let name = i % 2 == 0 ? "h\(i)" : "a-longer-header-name-\(i)"
            let value = String(repeating: "v", count: i * 7) + "\(i)"
            list.append(name, value, indexed: i % 3 != 0)
            list.append("len-\(i)", decimal: i * 1000)
            expected += ["\(name)=\(value)", "len-\(i)=\(i * 1000)"]
        }
        let out = fields(list)
        XCTAssertEqual(out.map { "\($0.0)=\($0.1)" }, expected)
        XCTAssertEqual(list.count, 80)
        list.removeAll()
        list.append(literal: ":status", decimal: 204)
        XCTAssertEqual(fields(list).map { "\($0.0)=\($0.1)" }, [":status=204"])
    }

    func testAnEmptyValueIsAZeroLengthField() {
        let list = NGHTTP2HeaderList()
        list.append("x-empty", "")
        list.append("after", "1")
        XCTAssertEqual(fields(list).map { "\($0.0)=\($0.1)" }, ["x-empty=", "after=1"])
    }
}
