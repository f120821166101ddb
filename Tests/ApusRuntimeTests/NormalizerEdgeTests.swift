import ApusRuntime
import XCTest

/// Normalizer on the rows where implementations differ (NaN, infinities, overflowing squares,
/// negative and all-zero rows). Expected values are onnxruntime 1.32's answers for these rows.
final class NormalizerEdgeTests: XCTestCase {
    static let rows: [[Float]] = [
        [.nan, 1, 2], [1, .nan, 2], [2, 1, .nan], [.nan, .nan, .nan], [-1, -2, -3], [0, 0, 0],
        [2, .nan, -5], [3e19, 1, 1], [1e-30, 2e-30, 0], [.infinity, 1, 2], [-.infinity, 1, 2],
    ]

    func run(_ norm: String) throws -> [[Float]] {
        let graph = GraphSpec(
            inputs: [.init(name: "x", elementType: .float32, shape: [nil, 3])],
            outputs: [.init(name: "y", elementType: .float32, shape: [nil, 3])],
            initializers: [:],
            nodes: [.init(name: "n", opType: "Normalizer", domain: "ai.onnx.ml", inputs: ["x"], outputs: ["y"], attributes: ["norm": .string(norm)])])
        let model = try CompiledModel(graph)
        let out = try model.run([Tensor(shape: [Self.rows.count, 3], data: .float32(Self.rows.flatMap { $0 }))])[0].floats()
        return stride(from: 0, to: out.count, by: 3).map { Array(out[$0..<($0 + 3)]) }
    }

    func assertMatches(_ got: [[Float]], _ want: [[Float]], file: StaticString = #filePath, line: UInt = #line) {
        for (r, (g, w)) in zip(got, want).enumerated() {
            for (a, b) in zip(g, w) where !(a.isNaN && b.isNaN) && !(a == b || abs(a - b) <= max(1e-6, 1e-5 * abs(b))) {
                XCTFail("row \(r) \(Self.rows[r]): got \(g), onnxruntime \(w)", file: file, line: line)
                break
            }
        }
    }

    func testMaxIgnoresNaNWhenTakingTheMaximumLikeOnnxruntime() throws {
        assertMatches(try run("MAX"), [
            [.nan, 0.5, 1], [0.5, .nan, 1], [1, 0.5, .nan], [.nan, .nan, .nan], [1, 2, 3], [0, 0, 0],
            [1, .nan, -2.5], [1, 3.3333333e-20, 3.3333333e-20], [0.5, 1, 0], [.nan, 0, 0], [-.infinity, 0.5, 1],
        ])
    }

    func testL1MatchesOnnxruntimeOnEdgeRows() throws {
        assertMatches(try run("L1"), [
            [.nan, .nan, .nan], [.nan, .nan, .nan], [.nan, .nan, .nan], [.nan, .nan, .nan],
            [-1.0 / 6, -2.0 / 6, -0.5], [0, 0, 0], [.nan, .nan, .nan], [1, 3.3333333e-20, 3.3333333e-20],
            [1.0 / 3, 2.0 / 3, 0], [.nan, 0, 0], [.nan, 0, 0],
        ])
    }

    func testL2OverflowingSquaresGiveNaNAndUnderflowingRowsStayLikeOnnxruntime() throws {
        assertMatches(try run("L2"), [
            [.nan, .nan, .nan], [.nan, .nan, .nan], [.nan, .nan, .nan], [.nan, .nan, .nan],
            [-0.26726124, -0.53452247, -0.80178374], [0, 0, 0], [.nan, .nan, .nan], [.nan, 0, 0],
            [1e-30, 2e-30, 0], [.nan, 0, 0], [.nan, 0, 0],
        ])
    }
}
