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
}
