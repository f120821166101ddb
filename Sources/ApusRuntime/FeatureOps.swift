/// ai.onnx.ml Scaler: (x - offset) * scale, per column (or one value for all). Immutable.
struct Scaler: Kernel {
    let name: String
    let offset: [Float]
    let scale: [Float]

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, name)
        var v = try x.floats()
        let width = max(1, x.shape.last ?? 1)
        for c in [offset.count, scale.count] where c != 1 && c != width {
            throw RuntimeError("node \(name): \(c) offsets/scales for \(width) columns")
        }
        // Per-column vectors, then a plain row-by-column loop the compiler vectorises (a `%` per
        // element made this op cost five times the linear model after it).
        let offsets = offset.count == 1 ? [Float](repeating: offset[0], count: width) : offset
        let scales = scale.count == 1 ? [Float](repeating: scale[0], count: width) : scale
        v.withUnsafeMutableBufferPointer { values in
            offsets.withUnsafeBufferPointer { o in
                scales.withUnsafeBufferPointer { s in
                    guard let base = values.baseAddress, let o = o.baseAddress, let s = s.baseAddress else { return }
                    for r in 0..<(values.count / width) {
                        let row = base + r * width
                        for c in 0..<width { row[c] = (row[c] - o[c]) * s[c] }
                    }
                }
            }
        }
        return [Tensor(unchecked: x.shape, .float32(v))]
    }
}

/// ai.onnx.ml Normalizer: each row scaled by its MAX, L1 or L2 norm. Immutable.
struct Normalizer: Kernel {
    let name: String
    let norm: String

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, name)
        var v = try x.floats()
        let width = max(1, x.shape.last ?? 1)
        // onnxruntime's arithmetic, edge cases included: MAX skips NaN when taking the maximum;
        // L2 is sign(x) * sqrt(x^2 / sum of squares) (an overflowing square gives NaN, not 0); a
        // zero norm leaves the row as it is.
        for r in 0..<(v.count / width) {
            let range = (r * width)..<((r + 1) * width)
            switch norm {
            case "MAX":
                var n = -Float.greatestFiniteMagnitude
                for i in range where v[i] > n { n = v[i] }
                if n != 0 { for i in range { v[i] /= n } }
            case "L1":
                let n = v[range].reduce(0) { $0 + abs($1) }
                if n != 0 { for i in range { v[i] /= n } }
            case "L2":
                let sum = v[range].reduce(0) { $0 + $1 * $1 }
                if sum != 0 {
                    for i in range {
                        let magnitude = (v[i] * v[i] / sum).squareRoot()
                        v[i] = v[i] < 0 ? -magnitude : magnitude
                    }
                }
            default: throw RuntimeError("node \(name): unsupported norm \(norm)")
            }
        }
        return [Tensor(unchecked: x.shape, .float32(v))]
    }
}

/// ai.onnx.ml Binarizer: 1 where x > threshold, else 0. Immutable.
struct Binarizer: Kernel {
    let name: String
    let threshold: Float

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, name)
        return [Tensor(unchecked: x.shape, .float32(try x.floats().map { $0 > threshold ? 1 : 0 }))]
    }
}

/// ai.onnx.ml Imputer: replaces `replacedValue` (NaN by default) with per-column values. Immutable.
struct Imputer: Kernel {
    let name: String
    let values: [Float]
    let replaced: Float

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, name)
        var v = try x.floats()
        let width = max(1, x.shape.last ?? 1)
        guard values.count == 1 || values.count == width else {
            throw RuntimeError("node \(name): \(values.count) imputed values for \(width) columns")
        }
        for i in v.indices where v[i] == replaced || (replaced.isNaN && v[i].isNaN) {
            v[i] = values[values.count == 1 ? 0 : i % width]
        }
        return [Tensor(unchecked: x.shape, .float32(v))]
    }
}

/// ai.onnx.ml ArrayFeatureExtractor: picks columns (last axis) by index. Immutable.
struct ArrayFeatureExtractor: Kernel {
    let name: String

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, name)
        let indices = try required(inputs, 1, name).int64s()
        let width = max(1, x.shape.last ?? 1)
        let rows = x.count / width
        guard indices.allSatisfy({ $0 >= 0 && $0 < width }) else {
            throw RuntimeError("node \(name): index out of range 0..<\(width)")
        }
        var shape = x.shape
        if shape.isEmpty { shape = [indices.count] } else { shape[shape.count - 1] = indices.count }
        func pick<T>(_ v: [T]) -> [T] {
            var out: [T] = []
            out.reserveCapacity(rows * indices.count)
            for r in 0..<rows { for i in indices { out.append(v[r * width + Int(i)]) } }
            return out
        }
        let data: Tensor.Data
        switch x.data {
        case .float32(let v): data = .float32(pick(v))
        case .float64(let v): data = .float64(pick(v))
        case .int64(let v): data = .int64(pick(v))
        case .int32(let v): data = .int32(pick(v))
        case .bool(let v): data = .bool(pick(v))
        case .string(let v): data = .string(pick(v))
        }
        if x.shape.count == 1 { shape = [1, indices.count] }
        return [Tensor(unchecked: shape, data)]
    }
}

/// ai.onnx.ml ZipMap. Apus answers with the probability tensor itself (plus the class labels in
/// the model metadata) rather than a sequence of maps: same numbers, a tensor clients can decode.
struct ZipMap: Kernel {
    let name: String
    let classCount: Int

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, name)
        guard (x.shape.last ?? 0) == classCount else {
            throw RuntimeError("node \(name): \(x.shape.last ?? 0) columns for \(classCount) class labels")
        }
        return [Tensor(unchecked: x.shape, .float32(try x.floats()))]
    }
}

/// ai.onnx.ml OneHotEncoder over int64 categories. Immutable.
struct OneHotEncoder: Kernel {
    let name: String
    let categories: [Int64]
    let zeros: Bool

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, name)
        let values = try x.int64s()
        var position: [Int64: Int] = [:]
        for (i, c) in categories.enumerated() { position[c] = i }
        var out = [Float](repeating: 0, count: values.count * categories.count)
        for (i, v) in values.enumerated() {
            if let p = position[v] {
                out[i * categories.count + p] = 1
            } else if !zeros {
                throw RuntimeError("node \(name): unknown category \(v)")
            }
        }
        return [Tensor(unchecked: x.shape + [categories.count], .float32(out))]
    }
}
