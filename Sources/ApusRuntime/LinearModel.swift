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

    /// Dot product in 8-wide SIMD lanes (float reductions are not auto-vectorised).
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var sum8 = SIMD8<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a)
        let rb = UnsafeRawPointer(b)
        while i + 8 <= n {
            sum8 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        // Halving reductions: `SIMD8.sum()` adds the lanes one by one.
        var sum4 = sum8.lowHalf + sum8.highHalf
        while i + 4 <= n {
            sum4 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD4<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD4<Float>.self)
            i += 4
        }
        let sum2 = sum4.lowHalf + sum4.highHalf
        var sum = sum2[0] + sum2[1]
        while i < n {
            sum += a[i] * b[i]
            i += 1
        }
        return sum
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
                                    let row = xs + r * width
                                    let s0 = bs[0] + Self.dot(row, cs, width)
                                    let s1 = bs[1] + Self.dot(row, cs + width, width)
                                    out[2 * r] = s0
                                    out[2 * r + 1] = s1
                                    bestOut[r] = Int32(unsafeBitCast(s1 > s0, to: UInt8.self))
                                }
                                return
                            }
                            for r in 0..<rows {
                                let row = xs + r * width
                                let rowOut = out + r * outputs
                                var top: Int32 = 0
                                var topScore = bs[0] + Self.dot(row, cs, width)
                                rowOut[0] = topScore
                                for o in 1..<outputs {
                                    let score = bs[o] + Self.dot(row, cs + o * width, width)
                                    rowOut[o] = score
                                    if score > topScore {
                                        top = Int32(o)
                                        topScore = score
                                    }
                                }
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
            var probabilities = [Float](repeating: 0, count: rows * 2)
            for r in 0..<rows {
                let s = scores[r]
                resultLabels[r] = s > 0 ? labels[1] : labels[0]
                switch post {
                case .logistic:
                    let p = PostTransform.logistic(s)
                    probabilities[r * 2] = 1 - p
                    probabilities[r * 2 + 1] = p
                case .probit:
                    let p = PostTransform.probit(s)
                    probabilities[r * 2] = 1 - p
                    probabilities[r * 2 + 1] = p
                default:
                    probabilities[r * 2] = -s
                    probabilities[r * 2 + 1] = s
                }
            }
            return [Tensor(unchecked: [rows], .int64(resultLabels)), Tensor(unchecked: [rows, 2], .float32(probabilities))]
        }
        guard outputs == classes else { throw RuntimeError("node \(name): \(outputs) score columns for \(classes) classes") }
        for r in 0..<rows { resultLabels[r] = labels[Int(best[r])] }
        post.applyRows(&scores, width: outputs)
        return [Tensor(unchecked: [rows], .int64(resultLabels)), Tensor(unchecked: [rows, outputs], .float32(scores))]
    }
}
