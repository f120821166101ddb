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

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, name)
        let rows = x.shape.count == 1 ? 1 : x.rows
        let width = x.shape.count == 1 ? x.count : x.rowWidth
        guard width == features else { throw RuntimeError("node \(name): input has \(width) features, the model has \(features)") }
        let values = try x.floats()
        var scores = [Float](repeating: 0, count: rows * outputs)
        for r in 0..<rows {
            for o in 0..<outputs {
                var s: Float = intercepts.isEmpty ? 0 : intercepts[o]
                let cBase = o * width
                let xBase = r * width
                for f in 0..<width { s += values[xBase + f] * coefficients[cBase + f] }
                scores[r * outputs + o] = s
            }
        }
        guard let labels = classLabels else {
            for r in 0..<rows {
                var slice = scores[(r * outputs)..<((r + 1) * outputs)]
                post.apply(&slice)
                scores.replaceSubrange((r * outputs)..<((r + 1) * outputs), with: slice)
            }
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
            var slice = scores[(r * outputs)..<((r + 1) * outputs)]
            var best = slice.startIndex
            for i in slice.indices where slice[i] > slice[best] { best = i }
            resultLabels[r] = labels[best - r * outputs]
            post.apply(&slice)
            scores.replaceSubrange((r * outputs)..<((r + 1) * outputs), with: slice)
        }
        return [Tensor(unchecked: [rows], .int64(resultLabels)), Tensor(unchecked: [rows, outputs], .float32(scores))]
    }
}
