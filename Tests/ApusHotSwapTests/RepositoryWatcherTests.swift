import ApusHotSwap
import ApusInference
import Foundation
import Logging
import XCTest

/// The watcher driven by its injected trigger (`reload`), never by the poll timer: no sleeps.
final class RepositoryWatcherTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "apus-watch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    func writeBundle(version: Int) throws {
        let directory = "\(root)/m/\(version)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let onnx = try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ApusInferenceTests/Fixtures/logreg_binary.onnx"))
        try onnx.write(to: URL(fileURLWithPath: directory + "/model.onnx"))
        try """
        {"name": "m", "version": \(version), "model_file": "model.onnx",
         "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 20]}], "sha256": {"model.onnx": "\(SHA256.hex([UInt8](onnx)))"}}
        """.write(toFile: directory + "/manifest.json", atomically: true, encoding: .utf8)
    }

    func testATriggerLoadsNewVersionsAndEachTriggerPublishesAGeneration() async throws {
        let repository = ModelRepository(root: root, workers: 1, logger: Logger(label: "test"))
        let watcher = RepositoryWatcher(repository: repository, logger: Logger(label: "test"))
        let first = await watcher.reload(.start)
        XCTAssertNil(repository.snapshot.models["m"])
        try writeBundle(version: 1)
        let second = await watcher.reload(.admin)
        XCTAssertGreaterThan(second, first)
        XCTAssertEqual(repository.snapshot.models["m"]?.defaultVersion?.version, 1)
        try writeBundle(version: 2)
        await watcher.reload(.signal)
        XCTAssertEqual(repository.snapshot.models["m"]?.defaultVersion?.version, 2)
    }

    func testTriggersArrivingTogetherCoalesceIntoFewerScans() async throws {
        let repository = ModelRepository(root: root, workers: 1, logger: Logger(label: "test"))
        let watcher = RepositoryWatcher(repository: repository, logger: Logger(label: "test"))
        try writeBundle(version: 1)
        let before = repository.counters.reloads
        for _ in 0..<50 { watcher.trigger(.poll) }
        await watcher.reload(.admin)
        let scans = repository.counters.reloads - before
        XCTAssertGreaterThanOrEqual(scans, 1)
        XCTAssertLessThan(scans, 50, "a burst of triggers must not cost one scan each")
        XCTAssertEqual(repository.snapshot.models["m"]?.defaultVersion?.version, 1)
    }
}
