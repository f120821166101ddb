import Foundation

/// One compiled graph node. Built once at load (attributes parsed, validated, laid out for the hot
/// path), run many times, concurrently: implementations are immutable after init.
protocol Kernel: Sendable {
    /// `inputs` in the node's input order (nil for an omitted optional input).
    func run(_ inputs: [Tensor?]) throws -> [Tensor]
}

extension Kernel {
    func required(_ inputs: [Tensor?], _ index: Int, _ op: String) throws -> Tensor {
        guard index < inputs.count, let tensor = inputs[index] else {
            throw RuntimeError("\(op): input \(index) is missing")
        }
        return tensor
    }
}

/// Post transforms shared by the ai.onnx.ml ops, with onnxruntime's formulas.
enum PostTransform: String, Sendable {
    case none = "NONE", logistic = "LOGISTIC", softmax = "SOFTMAX", softmaxZero = "SOFTMAX_ZERO", probit = "PROBIT"

    static func logistic(_ x: Float) -> Float { VectorMath.logistic(x) }

    static func probit(_ x: Float) -> Float {
        Float(2.0.squareRoot()) * erfInverse(2 * x - 1)
    }

    /// Inverse error function (Giles' single-precision approximation, as onnxruntime uses).
    static func erfInverse(_ x: Float) -> Float {
        let w = -logf((1 - x) * (1 + x))
        var p: Float
        if w < 5 {
            let w = w - 2.5
            p = 2.81022636e-08
            p = 3.43273939e-07 + p * w
            p = -3.5233877e-06 + p * w
            p = -4.39150654e-06 + p * w
            p = 0.00021858087 + p * w
            p = -0.00125372503 + p * w
            p = -0.00417768164 + p * w
            p = 0.246640727 + p * w
            p = 1.50140941 + p * w
        } else {
            let w = w.squareRoot() - 3
            p = -0.000200214257
            p = 0.000100950558 + p * w
            p = 0.00134934322 + p * w
            p = -0.00367342844 + p * w
            p = 0.00573950773 + p * w
            p = -0.0076224613 + p * w
            p = 0.00943887047 + p * w
            p = 1.00167406 + p * w
            p = 2.83297682 + p * w
        }
        return p * x
    }

    static func softmax(_ v: UnsafeMutableBufferPointer<Float>) { VectorMath.softmaxRows(v, width: v.count) }

    static func softmaxZero(_ v: UnsafeMutableBufferPointer<Float>) {
        guard let m = v.max() else { return }
        var sum: Float = 0
        for i in v.indices where v[i] != 0 {
            v[i] = expf(v[i] - m)
            sum += v[i]
        }
        if sum > 0 { for i in v.indices { v[i] /= sum } }
    }

    /// Applies the transform in place to every score of one row (the multi-score case).
    func apply(_ row: UnsafeMutableBufferPointer<Float>) {
        switch self {
        case .none: break
        case .logistic: for i in row.indices { row[i] = Self.logistic(row[i]) }
        case .probit: for i in row.indices { row[i] = Self.probit(row[i]) }
        case .softmax: Self.softmax(row)
        case .softmaxZero: Self.softmaxZero(row)
        }
    }

    /// Applies the transform to each `width`-wide row of `values` in place.
    func applyRows(_ values: inout [Float], width: Int) {
        guard self != .none, width > 0 else { return }
        values.withUnsafeMutableBufferPointer { all in
            guard let base = all.baseAddress else { return }
            if self == .logistic {
                VectorMath.logistic(all)
                return
            }
            if self == .softmax, width == 2 {
                // Two classes: one exponential per row instead of two. With d the score gap
                // taken against the larger score, e = exp(-|d|) <= 1: small = e / (1 + e),
                // large = 1 / (1 + e), both without overflow or cancellation.
                for r in 0..<(all.count / 2) {
                    let a = base[2 * r], b = base[2 * r + 1]
                    let e = expf(-abs(a - b))
                    let large = 1 / (1 + e)
                    let small = e * large
                    if a >= b {
                        base[2 * r] = large
                        base[2 * r + 1] = small
                    } else {
                        base[2 * r] = small
                        base[2 * r + 1] = large
                    }
                }
                return
            }
            if self == .softmax {
                VectorMath.softmaxRows(all, width: width)
                return
            }
            for r in 0..<(all.count / width) { apply(UnsafeMutableBufferPointer(start: base + r * width, count: width)) }
        }
    }
}
