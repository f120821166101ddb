@testable import ApusMetrics
import ApusInference
import ApusRuntime
import XCTest

final class DriftTests: XCTestCase {
    func testKSStatisticMatchesScipyOnASmallSample() throws {
        // scipy.stats.ks_2samp([1,2,3,4], [3,4,5,6,7]).statistic == 0.6
        let result = try XCTUnwrap(KolmogorovSmirnov.test([1, 2, 3, 4], [3, 4, 5, 6, 7]))
        XCTAssertEqual(result.statistic, 0.6, accuracy: 1e-12)
    }

    func testKolmogorovTailMatchesTheClassicCriticalValues() {
        // Q_KS(1.358) = 0.05 and Q_KS(1.628) = 0.01 (Smirnov's table).
        XCTAssertEqual(KolmogorovSmirnov.probability(1.358), 0.05, accuracy: 5e-4)
        XCTAssertEqual(KolmogorovSmirnov.probability(1.628), 0.01, accuracy: 2e-4)
        XCTAssertEqual(KolmogorovSmirnov.probability(0), 1)
    }

    func testIdenticalSamplesShowNoDriftAndShiftedOnesDo() throws {
        let base = (0..<1000).map { Float($0) / 1000 }
        let same = try XCTUnwrap(KolmogorovSmirnov.test(base, base))
        XCTAssertEqual(same.statistic, 0)
        XCTAssertEqual(same.pValue, 1, accuracy: 1e-9)
        let shifted = try XCTUnwrap(KolmogorovSmirnov.test(base.map { $0 + 0.5 }, base))
        XCTAssertEqual(shifted.statistic, 0.5, accuracy: 2e-3)
        XCTAssertLessThan(shifted.pValue, 1e-6)
    }

    func testNaNsAreIgnoredAndEmptySamplesGiveNoResult() {
        XCTAssertNil(KolmogorovSmirnov.test([.nan, .nan], [1, 2]))
        XCTAssertEqual(KolmogorovSmirnov.test([1, .nan, 2], [1, 2])?.statistic, 0)
    }

    func testReservoirSamplesEveryPartOfTheTrafficEvenlyWhateverTheBatchSizes() throws {
        let monitor = DriftMonitor(capacity: 1000)
        // 100,000 rows numbered in order (two features: n and -n), in batches of 1 to 199 rows.
        var n = 0
        var size = 1
        while n < 100_000 {
            let count = min(size, 100_000 - n)
            let values = (n..<(n + count)).flatMap { [Float($0), -Float($0)] }
            monitor.observe(model: "m", version: 1, feeds: [try Tensor(shape: [count, 2], data: .float32(values))])
            n += count
            size = size % 199 + 1
        }
        let columns = try XCTUnwrap(monitor.sample(model: "m", version: 1))
        XCTAssertEqual(columns.count, 2)
        XCTAssertEqual(columns[0].count, 1000)
        // A row is kept whole: each sampled n sits beside its -n.
        XCTAssertEqual(columns[1], columns[0].map { -$0 })
        XCTAssertEqual(Set(columns[0]).count, 1000, "a row kept twice")
        // Uniform over all rows: about 100 per tenth of the traffic (binomial sd ~9.5), first
        // and last tenths included, and a mean near the middle.
        for tenth in 0..<10 {
            let kept = columns[0].filter { Int($0) / 10_000 == tenth }.count
            XCTAssertTrue((60...140).contains(kept), "tenth \(tenth): \(kept) rows")
        }
        let mean = columns[0].reduce(0) { $0 + Double($1) } / 1000
        XCTAssertEqual(mean, 50_000, accuracy: 3_000)
    }

    func testReservoirStaysBoundedWhateverTheTraffic() throws {
        let monitor = DriftMonitor(capacity: 100)
        let batch = try Tensor(shape: [50, 3], data: .float32(Array(repeating: 1, count: 150)))
        for _ in 0..<100 { monitor.observe(model: "m", version: 1, feeds: [batch]) }
        // Nothing is exported without a snapshot version holding a reference sample, and the
        // reservoir for a version that is not served is dropped at the next recompute.
        monitor.recompute(snapshot: RepositorySnapshot())
        XCTAssertTrue(monitor.current.isEmpty)
    }
}
