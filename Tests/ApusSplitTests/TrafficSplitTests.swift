import ApusInference
import ApusSplit
import Foundation
import XCTest

/// The A/B algorithm against vectors computed independently with Python's mmh3
/// (proto-spec/vectors/ab/), plus the rebalancing guarantees.
final class TrafficSplitTests: XCTestCase {
    static let vectors = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("proto-spec/vectors/ab")

    func testKnownMurmurHash3Values() {
        // Published reference values of MurmurHash3_x86_32.
        XCTAssertEqual(MurmurHash3.x86_32("", seed: 0), 0)
        XCTAssertEqual(MurmurHash3.x86_32("", seed: 1), 0x514E_28B7)
        XCTAssertEqual(MurmurHash3.x86_32("hello", seed: 0), 613_153_351)
        XCTAssertEqual(MurmurHash3.x86_32("The quick brown fox jumps over the lazy dog", seed: 0), 0x2E4F_F723)
    }

    func testMurmurVectorsMatchPythonMmh3() throws {
        let url = Self.vectors.appendingPathComponent("murmur3.json")
        guard FileManager.default.fileExists(atPath: url.path) else { throw XCTSkip("murmur3.json not generated") }
        let vectors = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [[String: Any]] ?? []
        XCTAssertGreaterThanOrEqual(vectors.count, 20)
        for vector in vectors {
            let input = try XCTUnwrap(vector["input"] as? String)
            let seed = UInt32(try XCTUnwrap(vector["seed"] as? Int))
            let hash = UInt32(try XCTUnwrap(vector["hash"] as? Int))
            XCTAssertEqual(MurmurHash3.x86_32(input, seed: seed), hash, "input \(input)")
        }
    }

    func testOneMillionKeysMatchThePythonReferenceAndTheWeights() throws {
        let url = Self.vectors.appendingPathComponent("million.json")
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let salt = try XCTUnwrap(doc["salt"] as? String)
        let variants = try XCTUnwrap(doc["variants"] as? [[String: Any]])
        let names = variants.compactMap { $0["name"] as? String }
        let weights = variants.compactMap { $0["weight"] as? Int }
        let table = try BucketTable(names: names, weights: weights)
        let keys = try XCTUnwrap(doc["keys"] as? Int)
        var indices = [UInt8](repeating: 0, count: keys)
        var counts = [Int](repeating: 0, count: names.count)
        for i in 0..<keys {
            let owner = table.owners[TrafficSplitter.bucket(salt: salt, routingKey: "user-\(i)")]
            indices[i] = UInt8(owner)
            counts[Int(owner)] += 1
        }
        XCTAssertEqual(SHA256.hex(indices), doc["sha256_of_variant_indices"] as? String, "some key's variant differs from the Python reference")
        for (i, name) in names.enumerated() {
            XCTAssertEqual(counts[i], (doc["counts"] as? [String: Int])?[name])
            let observed = Double(counts[i]) / Double(keys)
            let expected = Double(weights[i]) / 10_000
            XCTAssertEqual(observed, expected, accuracy: 0.005, "variant \(name)")
        }
    }

    func testInitialLayoutIsContiguousInListedOrder() throws {
        let table = try BucketTable(names: ["a", "b", "c"], weights: [5000, 3000, 2000])
        XCTAssertEqual(table.ranges, ["a": [[0, 5000]], "b": [[5000, 8000]], "c": [[8000, 10000]]])
        XCTAssertEqual(table.variant(bucket: 4999), "a")
        XCTAssertEqual(table.variant(bucket: 5000), "b")
    }

    func testRebalancingKeepsTheBucketsOfVariantsWhoseWeightDidNotChange() throws {
        let before = try BucketTable(names: ["stable", "canary", "holdout"], weights: [9000, 500, 500])
        let after = try before.rebalanced(names: ["stable", "canary", "holdout"], weights: [7500, 2000, 500])
        for b in 0..<BucketTable.bucketCount where before.variant(bucket: b) == "holdout" {
            XCTAssertEqual(after.variant(bucket: b), "holdout")
        }
        // The canary keeps its old buckets and gains the stable's highest 1,500.
        for b in 0..<BucketTable.bucketCount where before.variant(bucket: b) == "canary" {
            XCTAssertEqual(after.variant(bucket: b), "canary")
        }
        XCTAssertEqual(after.weights, [7500, 2000, 500])
        XCTAssertEqual(after.ranges["canary"], [[7500, 9500]])
        // Persisted ranges reload to the same table.
        XCTAssertEqual(try BucketTable(names: after.names, ranges: after.ranges), after)
    }

    func testBadSplitsAreRefusedWithTheFieldNamed() {
        XCTAssertThrowsError(try BucketTable(names: ["a", "b"], weights: [5000, 4000])) { error in
            XCTAssertTrue("\(error)".contains("sum to 10000"))
        }
        XCTAssertThrowsError(try BucketTable(names: ["a", "a"], weights: [5000, 5000]))
        XCTAssertThrowsError(try TrafficSplitter.compile(.init(salt: "s", variants: [.init(name: "a", weight: 10000)]))) { error in
            XCTAssertTrue("\(error)".contains("label or version"))
        }
    }

    func testReplacementPersistsStableRangesOnlyWhenNeeded() throws {
        let old = ModelSettings.Split(salt: "s", variants: [.init(name: "a", label: "stable", weight: 9000), .init(name: "b", label: "canary", weight: 1000)])
        var new = old
        new.variants[0].weight = 5000
        new.variants[1].weight = 5000
        // a shrinks from the top, b grows into a's old top: still contiguous, initial layout.
        XCTAssertNil(try TrafficSplitter.replacement(old: old, new: new).buckets)
        var three = ModelSettings.Split(salt: "s", variants: [.init(name: "a", label: "stable", weight: 9000), .init(name: "b", label: "canary", weight: 500),
                                                                .init(name: "c", version: 3, weight: 500)])
        var grown = three
        grown.variants[0].weight = 8000
        grown.variants[2].weight = 1500
        let replaced = try TrafficSplitter.replacement(old: three, new: grown)
        XCTAssertEqual(replaced.buckets?["b"], [[9000, 9500]])
        three.buckets = nil
    }

    func testSameKeySameVariantEveryTimeAndKeylessRequestsAreMarkedRandom() throws {
        let split = ModelSettings.Split(salt: "churn-2026", variants: [.init(name: "stable", label: "stable", weight: 9000), .init(name: "canary", label: "canary", weight: 1000)])
        let model = RepositorySnapshot.Model(name: "churn", versions: [:], labels: ["stable": 1], settings: ModelSettings(split: split))
        let snapshot = RepositorySnapshot(models: ["churn": model])
        let splitter = TrafficSplitter()
        let first = try XCTUnwrap(splitter.choose(model: "churn", routingKey: "user-42", snapshot: snapshot))
        for _ in 0..<100 { XCTAssertEqual(splitter.choose(model: "churn", routingKey: "user-42", snapshot: snapshot), first) }
        XCTAssertTrue(first.byHash)
        let keyless = try XCTUnwrap(splitter.choose(model: "churn", routingKey: nil, snapshot: snapshot))
        XCTAssertFalse(keyless.byHash)
        XCTAssertNil(splitter.choose(model: "other", routingKey: "user-42", snapshot: snapshot))
    }
}

/// Assignments and rebalancing against the independent Python reference (reference.py).
final class AssignmentVectorTests: XCTestCase {
    struct Variant: Decodable { var name: String; var weight: Int }
    struct Initial: Decodable { var salt: String; var routing_key: String; var bucket: Int; var variants: [Variant]; var variant: String }
    struct Rebalance: Decodable { var before: [Variant]; var after: [Variant]; var bucket: Int; var variant_before: String; var variant_after: String }
    struct File: Decodable { var initial: [Initial]; var rebalancing: [Rebalance] }

    func testInitialAssignmentsAndRebalancingMatchThePythonReference() throws {
        let url = TrafficSplitTests.vectors.appendingPathComponent("assignments.json")
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
        XCTAssertGreaterThanOrEqual(file.initial.count, 20)
        for v in file.initial {
            XCTAssertEqual(TrafficSplitter.bucket(salt: v.salt, routingKey: v.routing_key), v.bucket, "\(v.salt):\(v.routing_key)")
            let table = try BucketTable(names: v.variants.map(\.name), weights: v.variants.map(\.weight))
            XCTAssertEqual(table.variant(bucket: v.bucket), v.variant)
        }
        XCTAssertFalse(file.rebalancing.isEmpty)
        for v in file.rebalancing {
            let before = try BucketTable(names: v.before.map(\.name), weights: v.before.map(\.weight))
            let after = try before.rebalanced(names: v.after.map(\.name), weights: v.after.map(\.weight))
            XCTAssertEqual(before.variant(bucket: v.bucket), v.variant_before)
            XCTAssertEqual(after.variant(bucket: v.bucket), v.variant_after, "bucket \(v.bucket)")
        }
    }
}
