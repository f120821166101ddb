import ApusCore
import ApusInference
@testable import ApusServer
import ApusSplit
import Foundation
import Logging
import XCTest

/// What the routes report to request observers (metrics, canary windows): a request that fails
/// after its version and variant were chosen is reported under them, so a canary's failures
/// count against the canary.
final class InferenceRoutesObservationTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "apus-routes-\(UUID().uuidString)"
        let directory = "\(root)/churn/1"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard let url = Bundle.module.url(forResource: "Fixtures/logreg_binary", withExtension: "onnx") else {
            throw XCTSkip("fixture missing")
        }
        let onnx = try Data(contentsOf: url)
        try onnx.write(to: URL(fileURLWithPath: directory + "/model.onnx"))
        try """
        {"name": "churn", "version": 1, "model_file": "model.onnx",
         "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 20]}],
         "sha256": {"model.onnx": "\(SHA256.hex([UInt8](onnx)))"}}
        """.write(toFile: directory + "/manifest.json", atomically: true, encoding: .utf8)
        try """
        {"split": {"salt": "test", "variants": [{"name": "canary", "version": 1, "weight": 10000}]}}
        """.write(toFile: "\(root)/churn/model.json", atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    func testFailureAfterTheVariantIsChosenIsReportedUnderThatVariant() throws {
        let (routes, observer) = makeRoutes()
        // Expires before it can run: a 504 from the batch queue, after the split chose "canary".
        let answer = send(routes, headers: [("apus-timeout-ms", "0.000001")])
        XCTAssertEqual(answer.status, 504)
        XCTAssertEqual(observer.finished, [.init(model: "churn", version: 1, variant: "canary", status: 504)])
    }

    func testTimeoutHeaderAndBodyTimeoutExpireTheRequestWith504() throws {
        let (routes, _) = makeRoutes()
        // One microsecond from arrival is over before the decoded request reaches the queue.
        XCTAssertEqual(send(routes, headers: [("timeout", "1")]).status, 504)
        let row = (0..<20).map { _ in "0.5" }.joined(separator: ",")
        let body = "{\"parameters\": {\"timeout\": 1}, \"inputs\": [{\"name\": \"input\", \"shape\": [1, 20], \"datatype\": \"FP32\", \"data\": [\(row)]}]}"
        let answer = send(routes, body: Array(body.utf8))
        XCTAssertEqual(answer.status, 504, String(decoding: answer.body, as: UTF8.self))
        // A generous budget is no obstacle.
        XCTAssertEqual(send(routes, headers: [("timeout", "10000000")]).status, 200)
    }

    func testDeadlinesAndDurationsCountFromTheTransportsArrivalStamp() throws {
        let (routes, observer) = makeRoutes()
        // Read 50 ms before the route runs (behind other requests of its socket read, say).
        let arrival = MonotonicClock.nanoseconds() - 50_000_000
        // A 20 ms budget was spent before the route saw the request.
        XCTAssertEqual(send(routes, headers: [("timeout", "20000")], arrival: arrival).status, 504)
        let answer = send(routes, arrival: arrival)
        XCTAssertEqual(answer.status, 200, String(decoding: answer.body, as: UTF8.self))
        XCTAssertEqual(observer.durations.count, 2)
        for duration in observer.durations { XCTAssertGreaterThanOrEqual(duration, 50_000_000) }
        XCTAssertEqual(answer.headers["apus-model-version"], "1")
    }

    func testSuccessIsReportedWithVersionAndVariant() throws {
        let (routes, observer) = makeRoutes()
        let answer = send(routes)
        XCTAssertEqual(answer.status, 200, String(decoding: answer.body, as: UTF8.self))
        XCTAssertEqual(answer.headers["apus-variant"], "canary")
        XCTAssertEqual(observer.finished, [.init(model: "churn", version: 1, variant: "canary", status: 200)])
    }

    func testBodyRejectedBeforeAVersionIsChosenHasNoVersion() throws {
        let (routes, observer) = makeRoutes()
        let answer = send(routes, body: Array("{\"inputs\": 3}".utf8))
        XCTAssertEqual(answer.status, 400)
        XCTAssertEqual(observer.finished, [.init(model: "churn", version: nil, variant: nil, status: 400)])
    }

    func testUnknownModelIsReportedUnderTheEmptyModelName() throws {
        let (routes, observer) = makeRoutes()
        let answer = send(routes, path: "/v2/models/nope/infer")
        XCTAssertEqual(answer.status, 404)
        XCTAssertEqual(observer.finished, [.init(model: "", version: nil, variant: nil, status: 404)])
    }

    // MARK: - Helpers

    private func makeRoutes() -> (InferenceRoutes, RecordingObserver) {
        let repository = ModelRepository(root: root, workers: 1, logger: Logger(label: "test"))
        repository.reload()
        let observer = RecordingObserver()
        let routes = InferenceRoutes(service: InferenceService(repository: repository), splitter: TrafficSplitter(),
                                     observer: observer, outcomes: OutcomeTracker(), maxBodyBytes: 1 << 20)
        return (routes, observer)
    }

    private func send(_ routes: InferenceRoutes, path: String = "/v2/models/churn/infer", headers: [(String, String)] = [],
                      body: [UInt8]? = nil, arrival: UInt64 = MonotonicClock.nanoseconds()) -> Response {
        let row = (0..<20).map { _ in "0.5" }.joined(separator: ",")
        let json = body ?? Array("{\"inputs\": [{\"name\": \"input\", \"shape\": [1, 20], \"datatype\": \"FP32\", \"data\": [\(row)]}]}".utf8)
        var fields = HTTPFields()
        fields.add(name: "content-type", value: "application/json")
        for (name, value) in headers { fields.add(name: name, value: value) }
        let sink = WaitingSink()
        routes.models(Request(method: "POST", target: path, headers: fields, body: json, version: .http2),
                      RequestContext(remoteAddress: "test", arrivalNanos: arrival), ResponseWriter(sink: sink, token: 0))
        return sink.wait()
    }
}

private final class RecordingObserver: RequestObserver {
    struct Finished: Equatable {
        var model: String
        var version: Int?
        var variant: String?
        var status: Int
    }

    private let recorded = Locked<[Finished]>([])
    private let recordedDurations = Locked<[UInt64]>([])
    var finished: [Finished] { recorded.withLock { $0 } }
    var durations: [UInt64] { recordedDurations.withLock { $0 } }

    func requestFinished(model: String, version: Int?, variant: String?, status: Int, durationNanos: UInt64) {
        recorded.withLock { $0.append(Finished(model: model, version: version, variant: variant, status: status)) }
        recordedDurations.withLock { $0.append(durationNanos) }
    }
}

/// Blocks the test until the route answers (answers may come from a worker thread).
private final class WaitingSink: ResponseSink {
    private let answered = DispatchSemaphore(value: 0)
    private let response = Locked<Response?>(nil)

    func complete(_ response: Response, token: Int64) {
        self.response.withLock { $0 = response }
        answered.signal()
    }

    func wait() -> Response {
        _ = answered.wait(timeout: .now() + 10)
        return response.withLock { $0 } ?? Response(status: 0)
    }
}
