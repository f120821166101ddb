/// The two-sample Kolmogorov-Smirnov test: statistic D = sup |F1(x) - F2(x)| and its asymptotic
/// p-value (Kolmogorov distribution with the Stephens effective-n correction, as in Numerical
/// Recipes' `kstwo`/`probks`). NaNs are ignored (missing values are not a distribution shift).
/// Stateless.
public enum KolmogorovSmirnov {
    public struct Result: Sendable, Equatable {
        public var statistic: Double
        public var pValue: Double
    }

    public static func test(_ a: [Float], _ b: [Float]) -> Result? {
        let x = a.filter { !$0.isNaN }.sorted()
        let y = b.filter { !$0.isNaN }.sorted()
        guard !x.isEmpty, !y.isEmpty else { return nil }
        var i = 0, j = 0
        var d = 0.0
        let n1 = Double(x.count), n2 = Double(y.count)
        while i < x.count, j < y.count {
            let value = min(x[i], y[j])
            // Step past every tie at `value` in both samples before comparing the CDFs.
            while i < x.count, x[i] == value { i += 1 }
            while j < y.count, y[j] == value { j += 1 }
            d = max(d, abs(Double(i) / n1 - Double(j) / n2))
        }
        let en = (n1 * n2 / (n1 + n2)).squareRoot()
        return Result(statistic: d, pValue: probability((en + 0.12 + 0.11 / en) * d))
    }

    /// Q_KS(lambda) = 2 sum_{j>=1} (-1)^{j-1} exp(-2 j^2 lambda^2).
    static func probability(_ lambda: Double) -> Double {
        if lambda < 1e-3 { return 1 }
        var sum = 0.0, sign = 1.0, previous = 0.0
        for j in 1...100 {
            let term = sign * 2 * exp(-2 * Double(j * j) * lambda * lambda)
            sum += term
            if abs(term) <= 1e-3 * previous || abs(term) <= 1e-8 * sum { return min(max(sum, 0), 1) }
            sign = -sign
            previous = abs(term)
        }
        return 1
    }
}

import Foundation
