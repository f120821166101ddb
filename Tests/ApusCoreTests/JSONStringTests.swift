import ApusCore
import Foundation
import XCTest

final class JSONStringTests: XCTestCase {
    func testQuoteEscapesQuotesBackslashesAndEveryControlCharacter() {
        XCTAssertEqual(JSONString.quote(""), #""""#)
        XCTAssertEqual(JSONString.quote("plain text"), #""plain text""#)
        XCTAssertEqual(JSONString.quote("a\"b\\c"), #""a\"b\\c""#)
        XCTAssertEqual(JSONString.quote("\n\r\t"), #""\n\r\t""#)
        XCTAssertEqual(JSONString.quote("\u{00}\u{1f}\u{0b}"), #""\u0000\u001f\u000b""#)
        // DEL and non-ASCII need no escape in JSON text.
        XCTAssertEqual(JSONString.quote("\u{7f}é€😀"), "\"\u{7f}é€😀\"")
    }

    func testQuotedStringsDecodeBackToTheOriginalWithFoundation() throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [Character] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\r", "\t", "\u{00}", "\u{08}", "\u{0c}", "\u{1f}",
                                     "\u{7f}", "é", "€", "😀", "\u{2028}"]
        for _ in 0..<500 {
            let length = Int.random(in: 0...24, using: &generator)
            let original = String((0..<length).map { _ in alphabet.randomElement(using: &generator) ?? "a" })
            let quoted = JSONString.quote(original)
            let decoded = try JSONDecoder().decode([String].self, from: Data("[\(quoted)]".utf8))
            XCTAssertEqual(decoded, [original], "quoted as \(quoted)")
        }
    }

    func testWritingQuotedBytesGivesExactlyWhatQuoteGivesWithinTheRoomItAsksFor() {
        let cases = ["", "plain", "\"", "\\", "a\"b\\c", "\n\r\t", "\u{00}\u{1f}x", "tail\u{01}", "\u{01}head", "é€😀\u{7f}",
                     String(repeating: "\u{01}", count: 40)]
        for text in cases {
            let room = JSONString.maxQuotedCount(text)
            // A guard byte after the room: a write past it would change it.
            var buffer = [UInt8](repeating: 0xAA, count: room + 1)
            let written = buffer.withUnsafeMutableBufferPointer { JSONString.write(text, quotedTo: $0.baseAddress!) }
            XCTAssertLessThanOrEqual(written, room)
            XCTAssertEqual(buffer[room], 0xAA)
            XCTAssertEqual(String(decoding: buffer[..<written], as: UTF8.self), JSONString.quote(text), "\(Array(text.utf8))")
        }
    }
}
