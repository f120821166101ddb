/// ai.onnx.ml LinearClassifier and LinearRegressor: scores = X * coefficientsᵀ + intercepts,
/// then the post transform; the classifier adds onnxruntime's binary rule (one score column
/// expanded to two). Immutable.
struct LinearModel: Kernel {
    let name: String
    let coefficients: [Float]   // [outputs, features], row-major
    let intercepts: [Float]
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
        var sum = sum8.sum()
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
        values.withUnsafeBufferPointer { xBuffer in
            coefficients.withUnsafeBufferPointer { cBuffer in
                scores.withUnsafeMutableBufferPointer { out in
                    guard let xs = xBuffer.baseAddress, let cs = cBuffer.baseAddress, let out = out.baseAddress else { return }
                    for r in 0..<rows {
                        let row = xs + r * width
                        for o in 0..<outputs {
                            out[r * outputs + o] = (intercepts.isEmpty ? 0 : intercepts[o]) + Self.dot(row, cs + o * width, width)
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
        for r in 0..<rows {
            var best = 0
            for i in 1..<max(outputs, 1) where scores[r * outputs + i] > scores[r * outputs + best] { best = i }
            resultLabels[r] = labels[best]
        }
        post.applyRows(&scores, width: outputs)
        return [Tensor(unchecked: [rows], .int64(resultLabels)), Tensor(unchecked: [rows, outputs], .float32(scores))]
    }
}
