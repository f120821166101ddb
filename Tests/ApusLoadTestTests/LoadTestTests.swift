import ApusLoadTest
import XCTest

final class LoadTestTests: XCTestCase {
    func testThresholdsParseUnitsAndOperators() throws {
        let list = try Threshold.parseList("p99>2ms, error_rate>0, p99.9>=500us, throughput<1000, max>1s, errors>5")
        XCTAssertEqual(list.count, 6)
        XCTAssertEqual(list[0].metric, .percentile(99))
        XCTAssertEqual(list[0].value, 2_000_000)
        XCTAssertEqual(list[2].comparison, .greaterOrEqual)
        XCTAssertEqual(list[2].value, 500_000)
        XCTAssertEqual(list[4].value, 1e9)
        XCTAssertThrowsError(try Threshold.parse("p99>2"))   // latency without a unit
        XCTAssertThrowsError(try Threshold.parse("p120>2ms"))
        XCTAssertThrowsError(try Threshold.parse("latency"))
    }

    func report(latenciesMicros: [UInt64], failures: Int = 0, seconds: Double = 1) -> LoadReport {
        var recorder = LoadRecorder()
        for micros in latenciesMicros { recorder.record(latencyNanos: micros * 1000, status: 200, variant: nil, version: "1") }
        for _ in 0..<failures { recorder.record(latencyNanos: 1000, status: 503, variant: nil, version: nil) }
        return LoadReport(recorder: recorder, durationSeconds: seconds, offeredRate: nil)
    }

    func testThresholdsFailAndPassOnAReport() throws {
        let fast = report(latenciesMicros: Array(repeating: 100, count: 1000))
        XCTAssertFalse(try Threshold.parse("p99>2ms").isViolated(by: fast))
        XCTAssertFalse(try Threshold.parse("error_rate>0").isViolated(by: fast))
        let slow = report(latenciesMicros: Array(repeating: 100, count: 980) + Array(repeating: 5000, count: 20), failures: 1)
        XCTAssertTrue(try Threshold.parse("p99>2ms").isViolated(by: slow))
        XCTAssertTrue(try Threshold.parse("error_rate>0").isViolated(by: slow))
        XCTAssertTrue(try Threshold.parse("throughput<2000").isViolated(by: slow))
    }

    func testConstantScheduleSpacesSendsEvenlyAndPoissonAveragesTheRate() {
        var constant = ArrivalSchedule(kind: .constant, rate: 1000, seed: 1)
        XCTAssertEqual(constant.nextOffsetNanos(), 0)
        XCTAssertEqual(constant.nextOffsetNanos(), 1_000_000)
        XCTAssertEqual(constant.nextOffsetNanos(), 2_000_000)
        // Four connections sharing 4000/s: phases 0, 1/4000 s, ... interleave their sends.
        var merged: [UInt64] = []
        for c in 0..<4 {
            var share = ArrivalSchedule(kind: .constant, rate: 1000, seed: 1, phase: Double(c) / 4000)
            for _ in 0..<3 { merged.append(share.nextOffsetNanos()) }
        }
        XCTAssertEqual(merged.sorted(), (0..<12).map { UInt64($0) * 250_000 })
        var poisson = ArrivalSchedule(kind: .poisson, rate: 1000, seed: 7)
        var last: UInt64 = 0
        for _ in 0..<100_000 { last = poisson.nextOffsetNanos() }
        // 100,000 arrivals at 1000/s take about 100 s (within 2%).
        XCTAssertEqual(Double(last) / 1e9, 100, accuracy: 2)
    }

    func testZipfUsersAreSkewedAndUniformUsersAreNot() {
        var zipf = KeyChooser(users: 1000, zipfExponent: 1.1, seed: 3)
        var uniform = KeyChooser(users: 1000, zipfExponent: nil, seed: 3)
        var zipfTop = 0, uniformTop = 0
        for _ in 0..<100_000 {
            if zipf.nextIndex() < 10 { zipfTop += 1 }
            if uniform.nextIndex() < 10 { uniformTop += 1 }
        }
        XCTAssertGreaterThan(zipfTop, 40_000)      // the top 1% of users send most requests
        XCTAssertLessThan(uniformTop, 1_500)       // about 1%
    }

    func testReportShowsObservedAgainstConfiguredSplit() {
        var recorder = LoadRecorder()
        for i in 0..<1000 { recorder.record(latencyNanos: 1000, status: 200, variant: i % 10 == 0 ? "canary" : "stable", version: nil) }
        let report = LoadReport(recorder: recorder, durationSeconds: 1, offeredRate: nil, configuredSplit: ["stable": 0.9, "canary": 0.1])
        XCTAssertTrue(report.table.contains("canary  10.00%  10.00%"), report.table)
        XCTAssertEqual((report.json["variants"] as? [String: Int])?["canary"], 100)
    }

    func testRecordersCountStatusesVersionsAndVariantsAcrossRunsAndMerges() {
        var a = LoadRecorder(), b = LoadRecorder()
        for version in ["1", "1", "2", "1", "2", "2", "2"] { a.record(latencyNanos: 10, status: 200, variant: nil, version: version) }
        for status in [200, 429, 503, 429, 999] { b.record(latencyNanos: 10, status: status, variant: "canary", version: "2") }
        b.record(latencyNanos: 10, status: nil, variant: nil, version: nil, error: "reset")
        XCTAssertEqual(a.versions, ["1": 3, "2": 4])
        a.merge(b)
        XCTAssertEqual(a.versions, ["1": 3, "2": 9])
        XCTAssertEqual(a.variants, ["canary": 5])
        XCTAssertEqual(a.statuses, [200: 8, 429: 2, 503: 1, 999: 1])
        XCTAssertEqual(a.succeeded, 8)
        XCTAssertEqual(a.failed, 5)
        a.record(latencyNanos: 10, status: 200, variant: "stable", version: "1")
        XCTAssertEqual(a.versions, ["1": 4, "2": 9])
        XCTAssertEqual(a.variants, ["canary": 5, "stable": 1])
    }

    func testScenarioPhasesMustBeBounded() throws {
        let path = NSTemporaryDirectory() + "scenario-\(UUID().uuidString).json"
        try #"{"phases": [{"name": "forever", "rate": 10}]}"#.write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Scenario.load(path: path))
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("loadtest/scenarios")
        for name in ["steady", "spike", "canary-rollout"] {
            XCTAssertNoThrow(try Scenario.load(path: shipped.appendingPathComponent("\(name).json").path), name)
        }
    }
}
