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
    }
}
