import ApusCore
import CNghttp2
@testable import ApusTransport
import XCTest

/// A connection packs each answer's head into one reused list, keeping the prefix it shares with
/// the previous answer (`ResponseHeadMemo`): the list must always come out exactly as a fresh
/// packing of that answer, whatever changed and wherever.
final class ResponseHeadMemoTests: XCTestCase {
    struct Head {
        var status = 200
        var bodyCount = 81
        var fields: [(String, String)] = [("content-type", "application/x-protobuf"), ("apus-model-version", "1"), ("x-request-id", "uvdff-1")]
    }

    /// (name, value, flags) as nghttp2 would be handed them.
    func packed(_ list: NGHTTP2HeaderList) -> [String] {
        var out: [String] = []
        _ = list.withNV { nv, count in
            for i in 0..<count {
                let field = nv[i]
                let name = String(decoding: UnsafeBufferPointer(start: field.name, count: field.namelen), as: UTF8.self)
                let value = String(decoding: UnsafeBufferPointer(start: field.value, count: field.valuelen), as: UTF8.self)
                out.append("\(name)=\(value)/\(field.flags)")
            }
            return 0
        }
        return out
    }

    /// What the head must pack to, written out independently of the memo: status and length
    /// first, the transport's own fields dropped, request ids never indexed.
    func expected(_ head: Head) -> [String] {
        let noIndex = UInt8(NGHTTP2_NV_FLAG_NO_INDEX.rawValue)
        return [":status=\(head.status)/0", "content-length=\(head.bodyCount)/0"]
            + head.fields.filter { $0.0 != "content-length" && $0.0 != "connection" }
                .map { "\($0.0)=\($0.1)/\($0.0 == "x-request-id" ? noIndex : 0)" }
    }

    func pack(_ memo: inout ResponseHeadMemo, _ head: Head, into list: NGHTTP2HeaderList) {
        memo.pack(status: head.status, bodyCount: head.bodyCount, headers: HTTPFields(head.fields), into: list)
    }

    func testARepeatedHeadKeepsItsPackingAndOnlyTheRequestIDIsRepacked() {
        var memo = ResponseHeadMemo()
        let list = NGHTTP2HeaderList()
        for n in 1...5 {
            var head = Head()
            head.fields[2].1 = "uvdff-\(n)"
            pack(&memo, head, into: list)
            XCTAssertEqual(packed(list), expected(head))
        }
        XCTAssertEqual(memo.reusedHeads, 4)
    }

    func testEveryKindOfDifferenceAfterAnyHeadPacksLikeAFreshList() {
        var heads: [Head] = [Head()]
        var statusChanged = Head()
        statusChanged.status = 429
        var lengthChanged = Head()
        lengthChanged.bodyCount = 1234
        var dropped = Head()
        dropped.fields.remove(at: 1)
        var added = Head()
        added.fields.append(("apus-variant", "canary"))
        var inserted = Head()
        inserted.fields.insert(("retry-after", "1"), at: 0)
        var versionChanged = Head()
        versionChanged.fields[1].1 = "2"
        var withOwnFields = Head()
        withOwnFields.fields.insert(("content-length", "999"), at: 1)
        withOwnFields.fields.append(("connection", "close"))
        var longValues = Head()
        longValues.fields[0].1 = "application/json; charset=utf-8; a-parameter-long-enough-to-live-on-the-heap"
        heads += [statusChanged, lengthChanged, dropped, added, inserted, versionChanged, withOwnFields, longValues, Head(fields: [])]
        // Every ordered pair, so each difference is met after each kind of head.
        for first in heads {
            for second in heads {
                var memo = ResponseHeadMemo()
                let list = NGHTTP2HeaderList()
                pack(&memo, first, into: list)
                pack(&memo, second, into: list)
                XCTAssertEqual(packed(list), expected(second), "\(first) then \(second)")
                pack(&memo, first, into: list)
                XCTAssertEqual(packed(list), expected(first), "\(first) after \(second)")
            }
        }
    }

    func testAFieldTheTransportSetsItselfInsideTheSharedPrefixIsStillLeftOut() {
        var memo = ResponseHeadMemo()
        let list = NGHTTP2HeaderList()
        var head = Head()
        head.fields.insert(("content-length", "999"), at: 0)
        pack(&memo, head, into: list)
        head.fields[3].1 = "uvdff-2"
        pack(&memo, head, into: list)
        XCTAssertEqual(packed(list), expected(head))
        XCTAssertEqual(memo.reusedHeads, 1)
    }

    func testAListPackedForSomethingElseIsNotReusedAfterForget() {
        var memo = ResponseHeadMemo()
        let list = NGHTTP2HeaderList()
        pack(&memo, Head(), into: list)
        // What the handler does for a 100 Continue: the list now holds another head.
        memo.forget()
        list.removeAll()
        list.append(literal: ":status", decimal: 100)
        pack(&memo, Head(), into: list)
        XCTAssertEqual(packed(list), expected(Head()))
        XCTAssertEqual(memo.reusedHeads, 0)
    }

    func testKeepingTheFirstFieldsDropsExactlyTheRest() {
        let list = NGHTTP2HeaderList(capacity: 16, count: 4)
        for i in 0..<10 { list.append("name-\(i)", String(repeating: "v", count: i)) }
        list.removeAll(keepingFirst: 4)
        list.append("after", "x")
        XCTAssertEqual(packed(list), (0..<4).map { "name-\($0)=\(String(repeating: "v", count: $0))/0" } + ["after=x/0"])
        list.removeAll(keepingFirst: 99)
        XCTAssertEqual(packed(list).count, 5)
        list.removeAll(keepingFirst: 0)
        XCTAssertEqual(packed(list), [])
    }
}
