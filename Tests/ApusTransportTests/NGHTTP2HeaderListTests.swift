import CNghttp2
import XCTest

@testable import ApusTransport

final class NGHTTP2HeaderListTests: XCTestCase {
    /// The (name, value, flags) triples nghttp2 would be handed.
    func fields(_ list: inout NGHTTP2HeaderList) -> [(String, String, UInt8)] {
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
        var list = NGHTTP2HeaderList()
        for value in [0, 7, 10, 200, 404, 12345, Int.max] { list.append("n", decimal: value) }
        XCTAssertEqual(fields(&list).map(\.1), ["0", "7", "10", "200", "404", "12345", String(Int.max)])
    }

    func testFieldsKeepTheirOrderAndOnlyUnindexedOnesAreFlagged() {
        var list = NGHTTP2HeaderList()
        list.append(":status", decimal: 200)
        list.append("content-type", "application/json")
        list.append("x-request-id", "a-value-longer-than-fifteen-bytes", indexed: false)
        let out = fields(&list)
        XCTAssertEqual(out.map(\.0), [":status", "content-type", "x-request-id"])
        XCTAssertEqual(out.map(\.1), ["200", "application/json", "a-value-longer-than-fifteen-bytes"])
        XCTAssertEqual(out.map(\.2), [0, 0, UInt8(NGHTTP2_NV_FLAG_NO_INDEX.rawValue)])
    }

    func testRemoveAllStartsAFreshList() {
        var list = NGHTTP2HeaderList()
        list.append("a", "1")
        list.removeAll()
        list.append("content-length", decimal: 42)
        XCTAssertEqual(fields(&list).map { "\($0.0)=\($0.1)" }, ["content-length=42"])
    }
}
