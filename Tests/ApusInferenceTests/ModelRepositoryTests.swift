import ApusCore
@testable import ApusInference
import ApusRuntime
import Foundation
import Logging
import XCTest

/// The repository against real folders in a temporary directory: loads, swaps, failures, labels.
/// Reloads are called directly (the poller only calls `reload()`), so nothing sleeps.
final class ModelRepositoryTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "apus-repo-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    static func fixture(_ name: String) throws -> Data {
        guard let url = Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "onnx") else {
            throw XCTSkip("fixture \(name) missing")
        }
        return try Data(contentsOf: url)
    }

    /// Writes a version folder with a correct manifest; returns its path.
    @discardableResult
    func writeBundle(model: String = "churn", version: Int, fixture: String = "logreg_binary", corruptChecksum: Bool = false,
                     withManifest: Bool = true) throws -> String {
        let directory = "\(root)/\(model)/\(version)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let onnx = try Self.fixture(fixture)
        try onnx.write(to: URL(fileURLWithPath: directory + "/model.onnx"))
        var digest = SHA256.hex([UInt8](onnx))
        if corruptChecksum { digest = String(repeating: "0", count: 64) }
        if withManifest {
            let manifest = """
            {"name": "\(model)", "version": \(version), "model_file": "model.onnx",
             "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 20]}],
             "sha256": {"model.onnx": "\(digest)"}}
            """
            try manifest.write(toFile: directory + "/manifest.json", atomically: true, encoding: .utf8)
        }
        return directory
    }

    func makeRepository() -> ModelRepository {
        ModelRepository(root: root, workers: 1, logger: Logger(label: "test"))
    }

    func testBatchesRunInlineUpTo20MicrosecondsOrUpTo1MillisecondOnASingleCore() {
        XCTAssertEqual(ModelRepository.defaultInlineBudgetMicroseconds(usableCores: 1), 1000)
        XCTAssertEqual(ModelRepository.defaultInlineBudgetMicroseconds(usableCores: 2), 20)
        XCTAssertEqual(ModelRepository.defaultInlineBudgetMicroseconds(usableCores: 64), 20)
    }

    func testScanLoadsEveryModelAndServesTheNewestVersionByDefault() throws {
        try writeBundle(version: 1)
        try writeBundle(version: 2)
        try "{\"version_policy\": \"all\"}".write(toFile: "\(root)/churn/model.json", atomically: true, encoding: .utf8)
        let repository = makeRepository()
        repository.reload()
        let model = try XCTUnwrap(repository.snapshot.models["churn"])
        XCTAssertEqual(Set(model.versions.keys), [1, 2])
        XCTAssertEqual(model.defaultVersion?.version, 2)
    }

    func testEntryLookupsFollowEveryNewSnapshotAndKnowNoOtherModels() throws {
        try writeBundle(version: 1)
        try writeBundle(model: "fraud", version: 1)
        let repository = makeRepository()
        repository.reload()
        XCTAssertEqual(repository.entry(for: "churn")?.defaultVersion?.version, 1)
        // The same model again (remembered), then another, then back.
        XCTAssertEqual(repository.entry(for: "churn")?.defaultVersion?.version, 1)
        XCTAssertEqual(repository.entry(for: "fraud")?.name, "fraud")
        XCTAssertEqual(repository.entry(for: "churn")?.name, "churn")
        XCTAssertNil(repository.entry(for: "nope"))
        // A new version published: the remembered entry is not served any more.
        try writeBundle(version: 2)
        repository.reload()
        XCTAssertEqual(repository.entry(for: "churn")?.defaultVersion?.version, 2)
        XCTAssertEqual(repository.entry(for: "churn")?.defaultVersion?.version, repository.snapshot.models["churn"]?.defaultVersion?.version)
        // The model removed: gone from lookups too.
        try FileManager.default.removeItem(atPath: "\(root)/fraud")
        _ = repository.entry(for: "fraud")
        repository.reload()
        XCTAssertNil(repository.entry(for: "fraud"))
        XCTAssertNil(repository.snapshot.models["fraud"])
    }

    func testDefaultPolicyServesOnlyTheLatestVersion() throws {
        try writeBundle(version: 1)
        try writeBundle(version: 7)
        let repository = makeRepository()
        repository.reload()
        XCTAssertEqual(repository.snapshot.models["churn"]?.versions.keys.sorted(), [7])
    }

    func testChecksumMismatchNeverServesAndTheOldVersionKeepsServing() throws {
        try writeBundle(version: 1)
        let repository = makeRepository()
        repository.reload()
        try writeBundle(version: 2, corruptChecksum: true)
        repository.reload()
        let model = try XCTUnwrap(repository.snapshot.models["churn"])
        XCTAssertEqual(model.defaultVersion?.version, 1)
        let failed = repository.statuses.first { $0.version == 2 }
        XCTAssertEqual(failed?.state.name, "FAILED")
        XCTAssertTrue(failed?.state.reason?.contains("sha256") ?? false, "\(String(describing: failed))")
        XCTAssertEqual(repository.counters.failures, 1)
    }

    func testHalfCopiedBundleWithoutManifestWaitsAndServesOnceComplete() throws {
        try writeBundle(version: 1)
        let repository = makeRepository()
        repository.reload()
        try writeBundle(version: 2, withManifest: false)
        repository.reload()
        XCTAssertEqual(repository.snapshot.models["churn"]?.defaultVersion?.version, 1)
        try writeBundle(version: 2)
        repository.reload()
        XCTAssertEqual(repository.snapshot.models["churn"]?.defaultVersion?.version, 2)
    }

    func testAVersionRenamedAwayWhileItLoadsIsARemovalNotAFailure() throws {
        try writeBundle(version: 1)
        let root = root
        // As a deploy's sync tool unpublishes a version: renamed out of the repository after the
        // scan listed it, before its files were read.
        let repository = ModelRepository(root: root, workers: 1, logger: Logger(label: "test")) { directory, model, version in
            if version == 2 { try FileManager.default.moveItem(atPath: directory, toPath: root + "/trash-2") }
            return try BundleLoader.load(directory: directory, model: model, version: version)
        }
        repository.reload()
        try writeBundle(version: 2)
        repository.reload()
        XCTAssertEqual(repository.counters.failures, 0)
        XCTAssertFalse(repository.statuses.contains { $0.version == 2 }, "\(repository.statuses)")
        XCTAssertEqual(repository.snapshot.models["churn"]?.defaultVersion?.version, 1)
    }

    func testCorruptONNXFailsWithTheFileNamed() throws {
        let directory = try writeBundle(version: 1)
        let garbage = Data("not an onnx file".utf8)
        try garbage.write(to: URL(fileURLWithPath: directory + "/model.onnx"))
        let manifest = """
        {"name": "churn", "version": 1, "model_file": "model.onnx",
         "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 20]}],
         "sha256": {"model.onnx": "\(SHA256.hex([UInt8](garbage)))"}}
        """
        try manifest.write(toFile: directory + "/manifest.json", atomically: true, encoding: .utf8)
        let repository = makeRepository()
        repository.reload()
        XCTAssertNil(repository.snapshot.models["churn"]?.defaultVersion)
        XCTAssertTrue(repository.statuses.first?.state.reason?.contains("model.onnx") ?? false)
    }

    func testRetiredVersionDrainsUntilItsRequestsFinish() throws {
        try writeBundle(version: 1)
        let repository = makeRepository()
        repository.reload()
        let v1 = try XCTUnwrap(repository.snapshot.models["churn"]?.defaultVersion)
        // Hold a request in flight on v1 while v2 arrives.
        let release = DispatchSemaphore(value: 0)
        let done = expectation(description: "answered")
        let input = try Tensor(shape: [1, 20], data: .float32(Array(repeating: 0.5, count: 20)))
        // The worker asks isCancelled just before running: blocking there holds the request in flight.
        InferenceService(repository: repository).infer(InferRequest(model: "churn", inputs: [.init(name: "input", tensor: input)]), on: v1,
                                                        isCancelled: { release.wait(); return false }) { result in
            if case .success(let answer) = result { XCTAssertEqual(answer.version, 1) } else { XCTFail("\(result)") }
            done.fulfill()
        }
        try writeBundle(version: 2)
        repository.reload()
        XCTAssertEqual(repository.snapshot.models["churn"]?.defaultVersion?.version, 2)
        XCTAssertTrue(repository.statuses.contains { $0.version == 1 && $0.state == .draining })
        release.signal()
        wait(for: [done], timeout: 10)
        // The counter drops after the completion ran; poll the sweep briefly.
        for _ in 0..<1000 where repository.statuses.contains(where: { $0.state == .draining }) {
            repository.sweep()
            usleep(1000)
        }
        XCTAssertFalse(repository.statuses.contains { $0.state == .draining })
        XCTAssertEqual(repository.counters.unloads, 1)
    }

    func testLabelMovesArePersistedAndRefusedForVersionsThatAreNotReady() throws {
        try writeBundle(version: 1)
        try writeBundle(version: 2)
        try "{\"version_policy\": \"all\"}".write(toFile: "\(root)/churn/model.json", atomically: true, encoding: .utf8)
        let repository = makeRepository()
        repository.reload()
        try repository.setLabel(model: "churn", label: "stable", version: 1)
        XCTAssertEqual(try InferenceService(repository: repository).resolve(model: "churn", selector: .label("stable")).version, 1)
        XCTAssertThrowsError(try repository.setLabel(model: "churn", label: "stable", version: 9))
        let saved = try ModelSettings.read(path: "\(root)/churn/model.json")
        XCTAssertEqual(saved.labels, ["stable": 1])
        XCTAssertEqual(saved.versionPolicy, .all)
        // A fresh repository (a restart) sees the label.
        let restarted = makeRepository()
        restarted.reload()
        XCTAssertEqual(restarted.snapshot.models["churn"]?.labels["stable"], 1)
    }

    func testLabelNamesThatAreNotShortIdentifiersAreRefusedAndNothingIsWritten() throws {
        try writeBundle(version: 1)
        let repository = makeRepository()
        repository.reload()
        for name in ["", "3", "007", ".hidden", "-x", "a/b", "%2e%2e", "with space", "ü", String(repeating: "a", count: 65)] {
            XCTAssertThrowsError(try repository.setLabel(model: "churn", label: name, version: 1), name) { error in
                XCTAssertEqual((error as? ApusError)?.code, .badRequest)
                XCTAssertTrue((error as? ApusError)?.message.hasPrefix("label name") ?? false)
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(root)/churn/model.json"), "a refused name writes nothing")
        for name in ["stable", "canary-2", "v1.2_rc", "A", String(repeating: "a", count: 64)] {
            XCTAssertNoThrow(try repository.setLabel(model: "churn", label: name, version: 1), name)
        }
    }

    func testUnreadableSettingsAreReportedAndServingContinues() throws {
        try writeBundle(version: 1)
        let repository = makeRepository()
        repository.reload()
        try "{not json".write(toFile: "\(root)/churn/model.json", atomically: true, encoding: .utf8)
        repository.reload()
        XCTAssertNotNil(repository.snapshot.models["churn"]?.defaultVersion)
        XCTAssertNotNil(repository.modelErrors["churn"])
    }

    func testUnloadAndLoadByAdminCall() throws {
        try writeBundle(version: 1)
        let repository = makeRepository()
        repository.reload()
        try repository.unload(model: "churn")
        XCTAssertNil(repository.snapshot.models["churn"])
        repository.reload()
        XCTAssertNil(repository.snapshot.models["churn"], "a scan must not undo an admin unload")
        try repository.load(model: "churn")
        XCTAssertNotNil(repository.snapshot.models["churn"]?.defaultVersion)
    }

    func testBatchedRequestsEachGetTheirOwnRows() throws {
        try writeBundle(version: 1, fixture: "mlp_3class")
        let repository = makeRepository()
        repository.reload()
        let served = try XCTUnwrap(repository.snapshot.models["churn"]?.defaultVersion)
        let service = InferenceService(repository: repository)
        var expected: [[Float]] = []
        let inputs = try (0..<32).map { i -> Tensor in
            let row = (0..<20).map { Float(($0 * 7 + i * 13) % 11) / 5 - 1 }
            let tensor = try Tensor(shape: [1, 20], data: .float32(row))
            expected.append(try served.compiled.run([tensor])[1].floats())
            return tensor
        }
        let group = DispatchGroup()
        let results = ResultBox(count: inputs.count)
        for (i, input) in inputs.enumerated() {
            group.enter()
            DispatchQueue.global().async {
                service.infer(InferRequest(model: "churn", inputs: [.init(name: "input", tensor: input)]), on: served, isCancelled: { false }) { result in
                    results.set(i, result)
                    group.leave()
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 20), .success)
        for i in 0..<inputs.count {
            guard case .success(let answer)? = results.get(i) else { return XCTFail("request \(i): \(String(describing: results.get(i)))") }
            XCTAssertEqual(answer.outputs[1].tensor.shape, [1, 3])
            let got = try answer.outputs[1].tensor.floats()
            for (a, b) in zip(got, expected[i]) { XCTAssertEqual(a, b, accuracy: 1e-5, "request \(i)") }
        }
    }

    func testACancelledQueuedRequestLeavesTheQueueAtOnceAndNeverRuns() throws {
        try writeBundle(version: 1)
        let repository = makeRepository()
        repository.reload()
        let served = try XCTUnwrap(repository.snapshot.models["churn"]?.defaultVersion)
        let service = InferenceService(repository: repository)
        let input = try Tensor(shape: [1, 20], data: .float32(Array(repeating: 0.5, count: 20)))
        let release = DispatchSemaphore(value: 0)
        let first = expectation(description: "first answered")
        // The first request occupies the only worker slot (blocked in its isCancelled check).
        service.infer(InferRequest(model: "churn", inputs: [.init(name: "input", tensor: input)]), on: served,
                      isCancelled: { release.wait(); return false }) { _ in first.fulfill() }
        let context = RequestContext(remoteAddress: "test")
        let ran = ResultBox(count: 1)
        let second = expectation(description: "second answered")
        service.infer(InferRequest(model: "churn", inputs: [.init(name: "input", tensor: input)]), on: served,
                      isCancelled: { context.isCancelled }, cancellation: context) { result in
            ran.set(0, result)
            second.fulfill()
        }
        XCTAssertEqual(served.queuedRows, 1)
        context.cancel()
        wait(for: [second], timeout: 5)
        XCTAssertEqual(served.queuedRows, 0)
        guard case .failure(let error)? = ran.get(0) else { return XCTFail("a cancelled request must not run") }
        XCTAssertEqual(error.code, .requestTimeout)
        release.signal()
        wait(for: [first], timeout: 5)
    }
}

final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result<InferResponse, ApusError>?]
    init(count: Int) { results = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<InferResponse, ApusError>) { lock.lock(); results[i] = r; lock.unlock() }
    func get(_ i: Int) -> Result<InferResponse, ApusError>? { lock.lock(); defer { lock.unlock() }; return results[i] }
}
