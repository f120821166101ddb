@testable import ApusTransport
import XCTest

final class PrefaceSnifferTests: XCTestCase {
    func testWholePrefaceAtOnceIsHTTP2() {
        var sniffer = PrefaceSniffer()
        XCTAssertEqual(sniffer.feed(PrefaceSniffer.preface + [0, 0, 0]), .http2)
    }

    func testPrefaceByteByByteIsHTTP2OnlyAtTheLastByte() {
        var sniffer = PrefaceSniffer()
        for (i, byte) in PrefaceSniffer.preface.enumerated() {
            let verdict = sniffer.feed([byte])
            XCTAssertEqual(verdict, i == PrefaceSniffer.preface.count - 1 ? .http2 : .needMoreBytes, "byte \(i)")
        }
    }

    func testPrefaceSplitAtEveryPointIsHTTP2() {
        let preface = PrefaceSniffer.preface
        for cut in 0...preface.count {
            var sniffer = PrefaceSniffer()
            _ = sniffer.feed(preface[..<cut])
            XCTAssertEqual(sniffer.feed(preface[cut...]), .http2, "cut at \(cut)")
        }
    }

    func testHTTP1RequestLineIsHTTP1AtTheFirstByte() {
        var sniffer = PrefaceSniffer()
        XCTAssertEqual(sniffer.feed(Array("GET / HTTP/1.1\r\n".utf8).prefix(1)), .http1)
    }

    func testRequestStartingLikeThePrefaceButDifferingIsHTTP1() {
        var sniffer = PrefaceSniffer()
        XCTAssertEqual(sniffer.feed(Array("PRI * HTTP/1.1".utf8)), .http1)
    }

    func testVerdictIsStickyAfterDecision() {
        var sniffer = PrefaceSniffer()
        _ = sniffer.feed(Array("GET".utf8))
        XCTAssertEqual(sniffer.feed(PrefaceSniffer.preface), .http1)
    }
}
