@testable import ApusTransport
import XCTest

final class HeaderStringCacheTests: XCTestCase {
    func string(_ cache: inout HeaderStringCache, _ text: String) -> String {
        var text = text
        return text.withUTF8 { cache.string($0) }
    }

    func testRepeatedLongValuesComeBackEqualAndDistinctValuesStayDistinct() {
        var cache = HeaderStringCache(capacity: 4)
        let agent = "h2load nghttp2/1.52.0 (a long user agent)"
        XCTAssertEqual(string(&cache, agent), agent)
        XCTAssertEqual(string(&cache, agent), agent)
        // Same length, other bytes: never confused with the cached value.
        let other = "h2load nghttp2/1.52.0 (a long user agenT)"
        XCTAssertEqual(string(&cache, other), other)
        XCTAssertEqual(string(&cache, "short"), "short")
        XCTAssertEqual(string(&cache, ""), "")
    }

    func testMoreDistinctValuesThanCapacityEvictAndStillDecodeCorrectly() {
        var cache = HeaderStringCache(capacity: 3)
        let values = (0..<20).map { "a value that is long enough \($0)" }
        for _ in 0..<3 {
            for v in values { XCTAssertEqual(string(&cache, v), v) }
        }
    }

    func testNamesComeBackEqualWhetherKnownOrNot() {
        var cache = HeaderStringCache(capacity: 2)
        for name in ["user-agent", "content-type", "x-request-id", "te", "x-custom", "a-long-custom-field-name", "user-agenT", ""] {
            var bytes = name
            XCTAssertEqual(bytes.withUTF8 { cache.name($0) }, name)
        }
    }

    func testShortValuesChurningDoNotEvictLongOnesAndStayExact() {
        var cache = HeaderStringCache(capacity: 2)
        let agent = "h2load nghttp2/1.52.0 (a long user agent)"
        let kept = string(&cache, agent)
        XCTAssertEqual(kept, agent)
        // A content-length per request: short values that never repeat, then repeat.
        for n in 0..<50 { XCTAssertEqual(string(&cache, String(n * 37)), String(n * 37)) }
        for _ in 0..<3 {
            for short in ["81", "127.0.0.1:18091", "*/*", "8", "1", "", "81"] { XCTAssertEqual(string(&cache, short), short) }
        }
        // Same length as a kept short value, other bytes.
        XCTAssertEqual(string(&cache, "82"), "82")
        // The long value is the very string kept at first (same storage), not made again.
        let again = string(&cache, agent)
        XCTAssertEqual(again, agent)
        XCTAssertEqual(storage(again), storage(kept))
    }

    func testValuesAndNamesDifferingInAnyOneByteAreNeverConfused() {
        // Every byte must count: a match on a sampled key (the length and the first and last eight
        // bytes) would confuse runs longer than 16 that differ only in the middle.
        var cache = HeaderStringCache(capacity: 4)
        for length in [1, 7, 8, 9, 15, 16, 17, 24, 40] {
            let base = String(repeating: "a", count: length)
            for position in 0..<length {
                var bytes = Array(base.utf8)
                bytes[position] = UInt8(ascii: "b")
                let variant = String(decoding: bytes, as: UTF8.self)
                XCTAssertEqual(string(&cache, base), base)
                XCTAssertEqual(string(&cache, variant), variant, "length \(length), byte \(position)")
                XCTAssertEqual(string(&cache, base), base, "length \(length), byte \(position)")
            }
        }
        for name in HeaderStringCache.allKnownNames {
            var exact = name
            XCTAssertEqual(exact.withUTF8 { HeaderStringCache.knownName($0) }, name)
            for position in 0..<name.utf8.count {
                var bytes = Array(name.utf8)
                bytes[position] ^= 0x01
                XCTAssertNil(bytes.withUnsafeBufferPointer { HeaderStringCache.knownName($0) }, "\(name), byte \(position)")
            }
            var longer = name + "x"
            XCTAssertNil(longer.withUTF8 { HeaderStringCache.knownName($0) })
        }
    }

    private func storage(_ text: String) -> UnsafeRawPointer? {
        text.utf8.withContiguousStorageIfAvailable { UnsafeRawPointer($0.baseAddress) } ?? nil
    }
}
