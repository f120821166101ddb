import ApusInference
import Foundation
import XCTest

/// The bundle checksum: FIPS 180-4 test vectors, and the same digest however the data is split
/// across updates (whole blocks, partial blocks, single bytes) and whatever its container.
final class SHA256Tests: XCTestCase {
    func testFIPSVectors() {
        XCTAssertEqual(SHA256.hex([UInt8]()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testDigestDoesNotDependOnHowTheDataIsSplit() {
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 55, 56, 63, 64, 65, 119, 127, 128, 129, 1000, 4097] {
            let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let whole = SHA256.hex(data)
            // Byte by byte, through a non-contiguous collection, and in random chunks.
            var bytewise = SHA256()
            for byte in data { bytewise.update(CollectionOfOne(byte)) }
            XCTAssertEqual(bytewise.finalizeHex(), whole, "length \(length), byte by byte")
            var lazy = SHA256()
            lazy.update(data.lazy.map { $0 })
            XCTAssertEqual(lazy.finalizeHex(), whole, "length \(length), lazy collection")
            var chunked = SHA256()
            var offset = 0
            while offset < data.count {
                let n = min(Int.random(in: 1...150, using: &generator), data.count - offset)
                chunked.update(Data(data[offset..<(offset + n)]))
                offset += n
            }
            XCTAssertEqual(chunked.finalizeHex(), whole, "length \(length), random chunks")
        }
    }
}
