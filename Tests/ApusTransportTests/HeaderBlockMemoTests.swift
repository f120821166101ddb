import ApusCore
@testable import ApusTransport
import XCTest

/// A connection reuses its last accepted header block when the next one repeats it byte for byte
/// (`HeaderBlockMemo`): the requests must come out exactly as if every block had been checked
/// field by field, whatever differs and wherever.
final class HeaderBlockMemoTests: XCTestCase {
    typealias Machine = HTTP2ConnectionStateMachine

    /// A POST block as clients send it: pseudo-header fields, then `fields`.
    let base: [(String, String)] = [
        (":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1:8080"), (":path", "/v2/models/logreg/infer"),
        ("content-type", "application/x-protobuf"), ("user-agent", "h2load nghttp2/1.52.0"), ("content-length", "3"),
    ]

    /// Sends `fields` as stream `id`'s block, ends it with END_STREAM off, sends `body`; returns the
    /// last action and the request.
    func send(_ machine: inout Machine, _ id: Int32, _ fields: [(String, String)], body: [UInt8] = [1, 2, 3]) -> (Machine.Action?, Request?) {
        machine.streamOpened(id, now: 0)
        for (name, value) in fields { machine.headerReceived(id, name: name, value: value) }
        if let action = machine.headersComplete(id, endStream: false, now: 0) { return (action, nil) }
        _ = body.withUnsafeBytes { machine.dataReceived(id, $0) }
        let action = machine.endStreamReceived(id)
        return (action, machine.takeRequest(id))
    }

    func fieldPairs(_ request: Request?) -> [String] {
        (request?.headers.map { "\($0.name)=\($0.value)" }) ?? []
    }

    func testARepeatedBlockIsReusedAndMakesTheSameRequest() {
        var machine = Machine(limits: TransportLimits(), now: 0)
        let (first, a) = send(&machine, 1, base)
        XCTAssertEqual(first, .dispatch(streamID: 1))
        XCTAssertEqual(machine.repeatedBlocks, 0)
        for id in [3, 5, 7] as [Int32] {
            let (action, b) = send(&machine, id, base)
            XCTAssertEqual(action, .dispatch(streamID: id))
            XCTAssertEqual(b?.method, "POST")
            XCTAssertEqual(b?.path, "/v2/models/logreg/infer")
            XCTAssertEqual(b?.body, [1, 2, 3])
            XCTAssertEqual(fieldPairs(b), fieldPairs(a))
            XCTAssertEqual(b?.headers["host"], "127.0.0.1:8080")
        }
        XCTAssertEqual(machine.repeatedBlocks, 3)
        XCTAssertEqual(fieldPairs(a), ["host=127.0.0.1:8080", "content-type=application/x-protobuf", "user-agent=h2load nghttp2/1.52.0", "content-length=3"])
    }

    func testADifferenceAnywhereFallsBackToTheFieldByFieldPath() {
        // Each variant differs from `base` at one place: a value, a name, a dropped or an added
        // field, at the start, middle or end; each then becomes the block to repeat.
        var variants: [[(String, String)]] = []
        // (Not the authority, which every expectation below names, nor the content-length,
        // which must stay the body's length.)
        for i in base.indices where i != 2 && i != 6 {
            var changed = base
            changed[i].1 += "x"
            variants.append(changed)
        }
        variants.append(Array(base.dropLast()))
        variants.append(base + [("x-request-id", "abc")])
        variants.append(Array(base.prefix(4)) + [("accept", "application/json")] + Array(base.dropFirst(4)))
        for variant in variants {
            var machine = Machine(limits: TransportLimits(), now: 0)
            _ = send(&machine, 1, base)
            let (action, request) = send(&machine, 3, variant)
            XCTAssertEqual(action, .dispatch(streamID: 3), "\(variant)")
            XCTAssertEqual(machine.repeatedBlocks, 0, "\(variant)")
            XCTAssertEqual(request?.method, variant[0].1)
            XCTAssertEqual(request?.path, variant[3].1)
            let expected = variant.dropFirst(4).map { "\($0.0)=\($0.1)" }
            XCTAssertEqual(fieldPairs(request), ["host=127.0.0.1:8080"] + expected, "\(variant)")
            XCTAssertEqual(request?.headers["content-length"], variant.first { $0.0 == "content-length" }?.1)
            // The variant is now the block that repeats.
            let (again, repeated) = send(&machine, 5, variant)
            XCTAssertEqual(again, .dispatch(streamID: 5))
            XCTAssertEqual(machine.repeatedBlocks, 1, "\(variant)")
            XCTAssertEqual(fieldPairs(repeated), fieldPairs(request))
        }
    }

    func testARepeatedPrefixStillGoesThroughTheRulesForWhatFollows() {
        var machine = Machine(limits: TransportLimits(), now: 0)
        _ = send(&machine, 1, base)
        // The same fields, then one with an upper-case name (malformed in HTTP/2).
        let (action, _) = send(&machine, 3, base + [("X-Bad", "1")])
        guard case .respondWithError(3, 400, let message)? = action else { return XCTFail("\(String(describing: action))") }
        XCTAssertTrue(message.contains("X-Bad"), message)
        // A shorter block missing :path after the memo's first fields.
        let (short, _) = send(&machine, 5, Array(base.prefix(3)))
        guard case .respondWithError(5, 400, let missing)? = short else { return XCTFail("\(String(describing: short))") }
        XCTAssertTrue(missing.contains(":path"), missing)
        // Neither rejected block replaced the memo.
        XCTAssertEqual(send(&machine, 7, base).0, .dispatch(streamID: 7))
        XCTAssertEqual(machine.repeatedBlocks, 1)
    }

    func testARejectedBlockIsNeverReusedAndIsRejectedEveryTime() {
        var machine = Machine(limits: TransportLimits(), now: 0)
        let bad = base + [("connection", "keep-alive")]
        for id in [1, 3, 5] as [Int32] {
            let (action, _) = send(&machine, id, bad)
            guard case .respondWithError(id, 400, _)? = action else { return XCTFail("\(String(describing: action))") }
        }
        XCTAssertEqual(machine.repeatedBlocks, 0)
    }

    func testLimitsCountTheRepeatedFieldsOnceTheBlockDiverges() {
        // Room for exactly the base block's fields: a block repeating it plus one more is over.
        var limits = TransportLimits()
        limits.maxHeaderCount = base.count
        var machine = Machine(limits: limits, now: 0)
        XCTAssertEqual(send(&machine, 1, base).0, .dispatch(streamID: 1))
        let (action, _) = send(&machine, 3, base + [("accept", "*/*")])
        guard case .respondWithError(3, 431, _)? = action else { return XCTFail("\(String(describing: action))") }
        XCTAssertEqual(send(&machine, 5, base).0, .dispatch(streamID: 5))
        XCTAssertEqual(machine.repeatedBlocks, 1)
    }

    func testAResetStreamsUnfinishedBlockLeavesTheMemoUsable() {
        var machine = Machine(limits: TransportLimits(), now: 0)
        _ = send(&machine, 1, base)
        machine.streamOpened(3, now: 0)
        for (name, value) in base.prefix(4) { machine.headerReceived(3, name: name, value: value) }
        _ = machine.streamClosed(3, now: 0)
        let (action, request) = send(&machine, 5, base)
        XCTAssertEqual(action, .dispatch(streamID: 5))
        XCTAssertEqual(request?.headers["user-agent"], "h2load nghttp2/1.52.0")
        XCTAssertEqual(machine.repeatedBlocks, 1)
    }

    func testMemoTellsApartValuesOfEveryLengthDifferingInAnyOneByte() {
        // The comparison goes a word at a time with an overlapping last word: every length
        // around the word sizes, and a difference at every position, first and last included.
        for length in 0...41 {
            var memo = HeaderBlockMemo()
            let name = Array("x-field".utf8)
            let value = (0..<length).map { UInt8(ascii: "a") + UInt8($0 % 26) }
            name.withUnsafeBufferPointer { n in value.withUnsafeBufferPointer { v in memo.record(name: n, value: v) } }
            name.withUnsafeBufferPointer { n in
                value.withUnsafeBufferPointer { v in XCTAssertTrue(memo.matches(0, at: 0, name: n, value: v), "length \(length)") }
                for position in 0..<length {
                    var other = value
                    other[position] ^= 0x20
                    other.withUnsafeBufferPointer { v in XCTAssertFalse(memo.matches(0, at: 0, name: n, value: v), "length \(length), byte \(position)") }
                }
            }
            for position in 0..<name.count {
                var other = name
                other[position] ^= 0x01
                other.withUnsafeBufferPointer { n in value.withUnsafeBufferPointer { v in XCTAssertFalse(memo.matches(0, at: 0, name: n, value: v)) } }
            }
        }
    }

    func testMemoMatchesFieldsByteForByte() {
        var memo = HeaderBlockMemo()
        let fields: [([UInt8], [UInt8])] = [(Array(":path".utf8), Array("/a".utf8)), (Array("te".utf8), []), (Array("accept".utf8), Array("*/*".utf8))]
        for (name, value) in fields {
            name.withUnsafeBufferPointer { n in value.withUnsafeBufferPointer { v in memo.record(name: n, value: v) } }
        }
        XCTAssertEqual(memo.count, 3)
        var offset = 0
        for (i, (name, value)) in fields.enumerated() {
            name.withUnsafeBufferPointer { n in
                value.withUnsafeBufferPointer { v in
                    XCTAssertTrue(memo.matches(i, at: offset, name: n, value: v))
                    XCTAssertFalse(memo.matches((i + 1) % 3, at: offset, name: n, value: v))
                }
            }
            let other = value + [0x41]
            name.withUnsafeBufferPointer { n in other.withUnsafeBufferPointer { v in XCTAssertFalse(memo.matches(i, at: offset, name: n, value: v)) } }
            offset += name.count + value.count
        }
        var replayed: [String] = []
        memo.forEachField(upTo: 2) { name, value in
            replayed.append(String(decoding: name, as: UTF8.self) + "=" + String(decoding: value, as: UTF8.self))
            return true
        }
        XCTAssertEqual(replayed, [":path=/a", "te="])
        memo.removeAll()
        XCTAssertEqual(memo.count, 0)
        XCTAssertNil(memo.block)
    }
}
