import ApusCore
@testable import ApusInference
import Foundation
import XCTest

final class ConfigJSONTests: XCTestCase {
    private func message<T: Codable>(_ type: T.Type, _ json: String, what: String = "split") -> String? {
        do {
            _ = try ConfigJSON.decode(type, from: Data(json.utf8), what: what)
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

    func testMisspeltFieldsAreRefusedInsteadOfLeavingTheDefault() {
        let json = #"{"salt": "s", "variants": [{"name": "a", "label": "stable", "wieght": 10000, "weight": 10000}], "shadoww": {}}"#
        XCTAssertEqual(message(ModelSettings.Split.self, json), "split: unknown fields shadoww, variants[0].wieght (misspelt? see the documentation)")
        let settings = #"{"version_policy": {"latest": 2}, "batching": {"max_batch_sise": 64}}"#
        XCTAssertEqual(message(ModelSettings.self, settings, what: "model.json"), "model.json: unknown field batching.max_batch_sise (misspelt? see the documentation)")
    }

    func testNullMembersAndEveryKnownFieldPass() throws {
        let json = #"{"salt": "s", "shadow": null, "variants": [{"name": "a", "label": null, "version": 2, "weight": 10000}]}"#
        XCTAssertNil(message(ModelSettings.Split.self, json))
        let settings = #"{"version_policy": "all", "labels": {"stable": 1}, "batching": {"max_batch_size": 64, "max_queue_delay_us": 200, "preferred_batch_sizes": [8], "max_queue_rows": 100}}"#
        XCTAssertNil(message(ModelSettings.self, settings, what: "model.json"))
    }
}
