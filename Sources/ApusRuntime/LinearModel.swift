/// ai.onnx.ml LinearClassifier and LinearRegressor: scores = X * coefficientsᵀ + intercepts,
/// then the post transform; the classifier adds onnxruntime's binary rule (one score column
/// expanded to two). Immutable.
struct LinearModel: Kernel {
    let name: String
    let coefficients: [Float]   // [outputs, features], row-major
    let intercepts: [Float]
    /// `intercepts`, or zeros when there are none: one per output.
    let bias: [Float]
    let outputs: Int
    let post: PostTransform
    let classLabels: [Int64]?

    init(name: String, coefficients: [Float], intercepts: [Float], outputs: Int, post: String, classLabels: [Int64]?) throws {
        guard outputs > 0, coefficients.count % outputs == 0, !coefficients.isEmpty else {
            throw RuntimeError("node \(name): \(coefficients.count) coefficients do not split into \(outputs) outputs")
        }
        guard intercepts.isEmpty || intercepts.count == outputs else {
            throw RuntimeError("node \(name): \(intercepts.count) intercepts for \(outputs) outputs")
        }
        guard let post = PostTransform(rawValue: post) else { throw RuntimeError("node \(name): unsupported post_transform \(post)") }
        self.name = name
        self.coefficients = coefficients
        self.intercepts = intercepts
        self.bias = intercepts.isEmpty ? [Float](repeating: 0, count: outputs) : intercepts
        self.outputs = outputs
        self.post = post
        self.classLabels = classLabels
    }

    var features: Int { coefficients.count / outputs }

    /// Two dot products of one row, `a·b0` and `a·b1`, in 8-wide SIMD lanes (float reductions are
    /// not auto-vectorised); each row chunk is loaded once for both. Every output of a model goes
    /// through here (an odd last one paired with itself), so an output's value does not depend on
    /// how many outputs the model has or where its row sits in the batch.
    @inline(__always)
    static func dotPair(_ a: UnsafePointer<Float>, _ b0: UnsafePointer<Float>, _ b1: UnsafePointer<Float>, _ n: Int) -> (Float, Float) {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a), r0 = UnsafeRawPointer(b0), r1 = UnsafeRawPointer(b1)
        while i + 8 <= n {
            let x = ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            s0 += x * r0.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            s1 += x * r1.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        // Halving reductions: `SIMD8.sum()` adds the lanes one by one.
        var h0 = s0.lowHalf + s0.highHalf, h1 = s1.lowHalf + s1.highHalf
        while i + 4 <= n {
            let x = ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD4<Float>.self)
            h0 += x * r0.loadUnaligned(fromByteOffset: i * 4, as: SIMD4<Float>.self)
            h1 += x * r1.loadUnaligned(fromByteOffset: i * 4, as: SIMD4<Float>.self)
            i += 4
        }
        let q0 = h0.lowHalf + h0.highHalf, q1 = h1.lowHalf + h1.highHalf
        var sum0 = q0[0] + q0[1], sum1 = q1[0] + q1[1]
        while i < n {
            sum0 += a[i] * b0[i]
            sum1 += a[i] * b1[i]
            i += 1
        }
        return (sum0, sum1)
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, name)
        let rows = x.shape.count == 1 ? 1 : x.rows
        let width = x.shape.count == 1 ? x.count : x.rowWidth
        guard width == features else { throw RuntimeError("node \(name): input has \(width) features, the model has \(features)") }
        let values = try x.floats()
        var scores = [Float](repeating: 0, count: rows * outputs)
        // Index of each row's top score (the first one on ties), found while the scores are made.
        var best = [Int32](repeating: 0, count: rows)
        values.withUnsafeBufferPointer { xBuffer in
            coefficients.withUnsafeBufferPointer { cBuffer in
                bias.withUnsafeBufferPointer { bBuffer in
                    scores.withUnsafeMutableBufferPointer { out in
                        best.withUnsafeMutableBufferPointer { bestOut in
                            guard let xs = xBuffer.baseAddress, let cs = cBuffer.baseAddress, let bs = bBuffer.baseAddress,
                                  let out = out.baseAddress, let bestOut = bestOut.baseAddress else { return }
                            if outputs == 2 {
                                // Binary models: the winner is a compare turned into 0/1, not a
                                // branch (mispredicted on every other row of real traffic).
                                for r in 0..<rows {
                                    let (d0, d1) = Self.dotPair(xs + r * width, cs, cs + width, width)
                                    let s0 = bs[0] + d0
                                    let s1 = bs[1] + d1
                                    out[2 * r] = s0
                                    out[2 * r + 1] = s1
                                    bestOut[r] = Int32(unsafeBitCast(s1 > s0, to: UInt8.self))
                                }
                                return
                            }
                            for r in 0..<rows {
                                let row = xs + r * width
                                let rowOut = out + r * outputs
                                for o in stride(from: 0, to: outputs, by: 2) {
                                    let next = min(o + 1, outputs - 1)
                                    let (d0, d1) = Self.dotPair(row, cs + o * width, cs + next * width, width)
                                    rowOut[o] = bs[o] + d0
                                    if next != o { rowOut[next] = bs[next] + d1 }
                                }
                                var top: Int32 = 0
                                for o in 1..<outputs where rowOut[o] > rowOut[Int(top)] { top = Int32(o) }
                                bestOut[r] = top
                            }
                        }
                    }
                }
            }
        }
        guard let labels = classLabels else {
            post.applyRows(&scores, width: outputs)
            return [Tensor(unchecked: [rows, outputs], .float32(scores))]
        }
        // Classifier.
        let classes = labels.count
        var resultLabels = [Int64](repeating: 0, count: rows)
        if outputs == 1 && classes == 2 {
            // One score column for two classes (onnxruntime): label by sign, probabilities
            // [1-p, p] after LOGISTIC, [-s, s] otherwise.
            // The positive class's probability for every row, the logistic in one vector pass.
            var positive = scores
            switch post {
            case .logistic: positive.withUnsafeMutableBufferPointer { VectorMath.logistic($0) }
            case .probit: for r in 0..<rows { positive[r] = PostTransform.probit(scores[r]) }
            default: break
            }
            let complement = post == .logistic || post == .probit
            var probabilities = [Float](repeating: 0, count: rows * 2)
            for r in 0..<rows {
                let s = scores[r]
                resultLabels[r] = s > 0 ? labels[1] : labels[0]
                probabilities[r * 2] = complement ? 1 - positive[r] : -s
                probabilities[r * 2 + 1] = positive[r]
            }
            return [Tensor(unchecked: [rows], .int64(resultLabels)), Tensor(unchecked: [rows, 2], .float32(probabilities))]
        }
        guard outputs == classes else { throw RuntimeError("node \(name): \(outputs) score columns for \(classes) classes") }
        for r in 0..<rows { resultLabels[r] = labels[Int(best[r])] }
        post.applyRows(&scores, width: outputs)
        return [Tensor(unchecked: [rows], .int64(resultLabels)), Tensor(unchecked: [rows, outputs], .float32(scores))]
    }
}
