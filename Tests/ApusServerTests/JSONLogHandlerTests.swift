import ApusCore
import Foundation
import Logging
import XCTest

@testable import ApusServer

final class JSONLogHandlerTests: XCTestCase {
    private func logger(_ lines: CapturedWrites, level: Logger.Level = .info) -> Logger {
        var handler = JSONLogHandler(label: "apus.test", now: { 1_764_645_600_123_000_000 }, output: lines.output)
        handler.logLevel = level
        return Logger(label: "apus.test", factory: { _ in handler })
    }

    private func object(_ line: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    func testAMessageIsOneJSONLineWithTimeLevelLabelMessageSourceAndItsMetadataAsFields() throws {
        let lines = CapturedWrites()
        logger(lines).info("serving", metadata: ["versions": "churn/1 churn/2", "usable-cores": "2"])
        XCTAssertEqual(lines.all, [#"{"time":"2025-12-02T03:20:00.123Z","level":"info","label":"apus.test","message":"serving","source":"ApusServerTests","#
                                   + #""usable-cores":"2","versions":"churn/1 churn/2"}"# + "\n"])
    }

    func testNestedMetadataBecomesJSONArraysAndObjectsAndFixedKeysAreNotShadowed() throws {
        let lines = CapturedWrites()
        logger(lines).warning("odd \"input\"\nhere", metadata: ["message": "shadow", "list": ["a", "b"], "map": ["k": "v", "n": ["x"]]])
        let line = try XCTUnwrap(lines.all.first)
        XCTAssertEqual(line.filter { $0 == "\n" }.count, 1, "a newline in the message is escaped")
        let fields = try object(line)
        XCTAssertEqual(fields["message"] as? String, "odd \"input\"\nhere")
        XCTAssertEqual(fields["metadata.message"] as? String, "shadow")
        XCTAssertEqual(fields["list"] as? [String], ["a", "b"])
        let map = try XCTUnwrap(fields["map"] as? [String: Any])
        XCTAssertEqual(map["k"] as? String, "v")
        XCTAssertEqual(map["n"] as? [String], ["x"])
        XCTAssertEqual(fields["level"] as? String, "warning")
    }

    func testMessagesBelowTheLevelAreNotWrittenAndLoggerMetadataIsIncluded() throws {
        let lines = CapturedWrites()
        var log = logger(lines, level: .notice)
        log[metadataKey: "peer"] = "127.0.0.1:5000"
        log.info("dropped")
        log.notice("kept", metadata: ["peer": "overridden"])
        XCTAssertEqual(lines.all.count, 1)
        XCTAssertEqual(try object(lines.all[0])["peer"] as? String, "overridden", "the message's metadata wins over the logger's")
    }
}
