import ApusCore
@testable import ApusInference
import Foundation
import XCTest

final class ConfigJSONTests: XCTestCase {
    private func message<T: Decodable>(_ type: T.Type, _ json: String) -> String? {
        do {
            _ = try ConfigJSON.decode(type, from: Data(json.utf8), what: "split")
            return nil
        } catch {
            return (error as? ApusError)?.message
        }
    }

    func testFractionalWeightNamesTheFieldInsteadOfCallingValidJSONInvalid() {
        let json = #"{"salt": "s", "variants": [{"name": "a", "label": "stable", "weight": 7500.5}, {"name": "b", "label": "canary", "weight": 2499.5}]}"#
        XCTAssertEqual(message(ModelSettings.Split.self, json),
                       "split: an integer field holds a number that is not a whole number within range: variants[0].weight = 7500.5, variants[1].weight = 2499.5")
    }

    func testIntegerOutOfRangeIsNamed() {
        let json = #"{"salt": "s", "variants": [{"name": "a", "version": 1e30, "weight": 10000}]}"#
        let text = message(ModelSettings.Split.self, json) ?? ""
        XCTAssertTrue(text.contains("variants[0].version = 1e+30"), text)
    }

    func testInvalidJSONSaysSo() {
        let text = message(ModelSettings.Split.self, #"{"salt": "s", "variants": [}"#) ?? ""
        XCTAssertEqual(text, "split: not valid JSON: Invalid value around character 27.")
    }

    func testMissingAndMistypedFieldsUseBracketedPaths() {
        XCTAssertEqual(message(ModelSettings.Split.self, #"{"variants": []}"#), "split: missing field salt")
        let text = message(ModelSettings.Split.self, #"{"salt": "s", "variants": [{"name": "a", "weight": "x"}]}"#) ?? ""
        XCTAssertTrue(text.hasPrefix("split: field variants[0].weight: "), text)
    }

    func testWholeNumbersWrittenWithAFractionDecode() throws {
        let split = try ConfigJSON.decode(ModelSettings.Split.self, from: Data(#"{"salt": "s", "variants": [{"name": "a", "version": 2, "weight": 10000.0}]}"#.utf8), what: "split")
        XCTAssertEqual(split.variants.first?.weight, 10_000)
    }
}
