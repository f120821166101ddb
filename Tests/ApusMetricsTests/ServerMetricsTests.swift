import ApusMetrics
import XCTest

/// Label sets stay bounded: a version's series leave /metrics when the version leaves the repository.
final class ServerMetricsTests: XCTestCase {
    func exposition(_ metrics: ServerMetrics) -> String {
        String(decoding: metrics.render(repository: nil, transport: nil, splitter: nil), as: UTF8.self)
    }

    func testARetiredVersionsSeriesLeaveTheExpositionAndOtherVersionsStay() {
        let metrics = ServerMetrics()
        for version in [1, 2] {
            metrics.requestFinished(model: "churn", version: version, variant: "stable", status: 200, durationNanos: 1_000)
            metrics.batchRan(model: "churn", version: version, rows: 1, queueWaitNanos: [10], computeNanos: 100)
            metrics.requestDropped(model: "churn", version: version, reason: .deadline)
        }
        XCTAssertTrue(exposition(metrics).contains("version=\"1\""))
        metrics.versionRetired(model: "churn", version: 1)
        let after = exposition(metrics)
        XCTAssertFalse(after.contains("version=\"1\""), after)
        XCTAssertTrue(after.contains("apus_requests_total{model=\"churn\",version=\"2\""), after)
        XCTAssertTrue(after.contains("apus_compute_duration_seconds_count{model=\"churn\",version=\"2\"}"), after)
    }

    func testHundredsOfSwapsLeaveOnlyTheLiveVersionsSeries() {
        let metrics = ServerMetrics()
        for version in 1...300 {
            metrics.requestFinished(model: "churn", version: version, variant: "stable", status: 200, durationNanos: 1_000)
            metrics.batchRan(model: "churn", version: version, rows: 1, queueWaitNanos: [10], computeNanos: 100)
            if version > 2 { metrics.versionRetired(model: "churn", version: version - 2) }
        }
        let text = exposition(metrics)
        let versions = Set(text.split(separator: "\n").compactMap { line -> Substring? in
            guard let range = line.range(of: "version=\"") else { return nil }
            return line[range.upperBound...].prefix { $0 != "\"" }
        })
        XCTAssertEqual(versions, ["299", "300"])
    }

    func testAVersionServedAgainAfterRetiringCountsFromZeroInTheExposition() {
        let metrics = ServerMetrics()
        for _ in 0..<3 {
            metrics.requestFinished(model: "churn", version: 1, variant: "", status: 200, durationNanos: 1_000)
            metrics.batchRan(model: "churn", version: 1, rows: 1, queueWaitNanos: [10], computeNanos: 100)
        }
        metrics.versionRetired(model: "churn", version: 1)
        // The same key right after retirement: it must reach fresh, registered collectors.
        metrics.requestFinished(model: "churn", version: 1, variant: "", status: 200, durationNanos: 1_000)
        metrics.batchRan(model: "churn", version: 1, rows: 1, queueWaitNanos: [10], computeNanos: 100)
        let text = exposition(metrics)
        XCTAssertTrue(text.contains("apus_requests_total{model=\"churn\",version=\"1\",variant=\"\",code=\"2xx\"} 1"), text)
        XCTAssertTrue(text.contains("apus_compute_duration_seconds_count{model=\"churn\",version=\"1\"} 1"), text)
        XCTAssertTrue(text.contains("apus_queue_duration_seconds_count{model=\"churn\",version=\"1\"} 1"), text)
    }

    func testALatencyOnABucketBoundCountsInThatBucketAndEachFamilyIsDeclaredOnce() {
        let metrics = ServerMetrics()
        // 100 us is exactly the 0.0001 bound (`le` is inclusive); 100.001 us is past it.
        metrics.requestFinished(model: "a", version: 1, variant: "", status: 200, durationNanos: 100_000)
        metrics.requestFinished(model: "a", version: 1, variant: "", status: 200, durationNanos: 100_001)
        metrics.requestFinished(model: "b", version: 2, variant: "", status: 500, durationNanos: 1)
        metrics.batchRan(model: "a", version: 1, rows: 1, queueWaitNanos: [100_000], computeNanos: 1)
        metrics.batchRan(model: "b", version: 2, rows: 1, queueWaitNanos: [1], computeNanos: 1)
        let text = exposition(metrics)
        XCTAssertTrue(text.contains("apus_request_duration_seconds_bucket{model=\"a\",le=\"0.0001\"} 1"), text)
        XCTAssertTrue(text.contains("apus_request_duration_seconds_bucket{model=\"a\",le=\"0.00025\"} 2"), text)
        XCTAssertTrue(text.contains("apus_request_duration_seconds_count{model=\"a\"} 2"), text)
        XCTAssertTrue(text.contains("apus_request_duration_seconds_bucket{model=\"b\",le=\"5e-05\"} 1"), text)
        XCTAssertTrue(text.contains("apus_queue_duration_seconds_bucket{model=\"a\",version=\"1\",le=\"0.0001\"} 1"), text)
        XCTAssertTrue(text.contains("apus_queue_duration_seconds_count{model=\"b\",version=\"2\"} 1"), text)
        for family in ["apus_request_duration_seconds", "apus_queue_duration_seconds"] {
            XCTAssertEqual(text.components(separatedBy: "# TYPE \(family) histogram\n").count, 2, text)
        }
    }

    func testLatenciesLandInTheirSecondsBucketsCumulativelyWithTheirSum() {
        let metrics = ServerMetrics()
        // 80 us, 80 us, 3 ms and 4 s (past the last bound: only +Inf).
        for nanos: UInt64 in [80_000, 80_000, 3_000_000, 4_000_000_000] {
            metrics.requestFinished(model: "churn", version: 1, variant: "", status: 200, durationNanos: nanos)
        }
        metrics.batchRan(model: "churn", version: 1, rows: 2, queueWaitNanos: [40_000, 600_000], computeNanos: 20_000)
        let text = exposition(metrics)
        let request = "apus_request_duration_seconds_bucket{model=\"churn\","
        XCTAssertTrue(text.contains(request + "le=\"5e-05\"} 0"), text)
        XCTAssertTrue(text.contains(request + "le=\"0.0001\"} 2"), text)
        XCTAssertTrue(text.contains(request + "le=\"0.005\"} 3"), text)
        XCTAssertTrue(text.contains(request + "le=\"2.5\"} 3"), text)
        XCTAssertTrue(text.contains(request + "le=\"+Inf\"} 4"), text)
        XCTAssertTrue(text.contains("apus_request_duration_seconds_sum{model=\"churn\"} 4.00316"), text)
        let queue = "apus_queue_duration_seconds_bucket{model=\"churn\",version=\"1\","
        XCTAssertTrue(text.contains(queue + "le=\"5e-05\"} 1"), text)
        XCTAssertTrue(text.contains(queue + "le=\"0.001\"} 2"), text)
        let queueSum = text.split(separator: "\n").first { $0.hasPrefix("apus_queue_duration_seconds_sum{model=\"churn\",version=\"1\"} ") }
        XCTAssertEqual(queueSum.flatMap { Double($0.split(separator: " ")[1]) } ?? 0, 0.00064, accuracy: 1e-12, text)
        XCTAssertTrue(text.contains("apus_queue_duration_seconds_count{model=\"churn\",version=\"1\"} 2"), text)
        XCTAssertTrue(text.contains("apus_compute_duration_seconds_bucket{model=\"churn\",version=\"1\",le=\"5e-05\"} 1"), text)
    }
}
