import Foundation

/// ai.onnx Add, Sub, Mul, Div with numpy broadcasting, on float tensors. Immutable.
struct Elementwise: Kernel {
    enum Op: String { case add = "Add", sub = "Sub", mul = "Mul", div = "Div" }
    let name: String
    let op: Op

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try required(inputs, 0, name)
        let b = try required(inputs, 1, name)
        let shape = try Self.broadcast(a.shape, b.shape, name)
        let av = try a.floats()
        let bv = try b.floats()
        switch op {
        case .add: return [try Self.compute(Add.self, a, av, b, bv, shape)]
        case .sub: return [try Self.compute(Sub.self, a, av, b, bv, shape)]
        case .mul: return [try Self.compute(Mul.self, a, av, b, bv, shape)]
        case .div: return [try Self.compute(Div.self, a, av, b, bv, shape)]
        }
    }

    protocol Arithmetic {
        static func apply(_ x: Float, _ y: Float) -> Float
        static func apply(_ x: SIMD8<Float>, _ y: SIMD8<Float>) -> SIMD8<Float>
    }
    enum Add: Arithmetic {
        @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x + y }
        @inline(__always) static func apply(_ x: SIMD8<Float>, _ y: SIMD8<Float>) -> SIMD8<Float> { x + y }
    }
    enum Sub: Arithmetic {
        @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x - y }
        @inline(__always) static func apply(_ x: SIMD8<Float>, _ y: SIMD8<Float>) -> SIMD8<Float> { x - y }
    }
    enum Mul: Arithmetic {
        @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x * y }
        @inline(__always) static func apply(_ x: SIMD8<Float>, _ y: SIMD8<Float>) -> SIMD8<Float> { x * y }
    }
    enum Div: Arithmetic {
        @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x / y }
        @inline(__always) static func apply(_ x: SIMD8<Float>, _ y: SIMD8<Float>) -> SIMD8<Float> { x / y }
    }

    /// Specialised per operator so the loops inline and vectorise.
    static func compute<O: Arithmetic>(_: O.Type, _ a: Tensor, _ av: [Float], _ b: Tensor, _ bv: [Float], _ shape: [Int]) throws -> Tensor {
        let count = shape.reduce(1, *)
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { oBuffer in
            av.withUnsafeBufferPointer { aBuffer in
                bv.withUnsafeBufferPointer { bBuffer in
                    guard let o = oBuffer.baseAddress, let x = aBuffer.baseAddress, let y = bBuffer.baseAddress else { return }
                    if a.shape == shape && b.shape == shape {
                        for i in 0..<count { o[i] = O.apply(x[i], y[i]) }
                    } else if a.shape == shape, let last = shape.last, bv.count == last, (b.shape.last ?? 1) == last {
                        // The bias case: [N, K] op [K] (or [1, K]).
                        let vectorEnd = last - last % 8
                        let rx = UnsafeRawPointer(x), ry = UnsafeRawPointer(y), ro = UnsafeMutableRawPointer(o)
                        for r in 0..<(count / max(last, 1)) {
                            let base = r &* last
                            var j = 0
                            while j < vectorEnd {
                                let v = O.apply(
                                    rx.loadUnaligned(fromByteOffset: (base &+ j) &* 4, as: SIMD8<Float>.self),
                                    ry.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self)
                                )
                                ro.storeBytes(of: v, toByteOffset: (base &+ j) &* 4, as: SIMD8<Float>.self)
                                j &+= 8
                            }
                            while j < last {
                                o[base &+ j] = O.apply(x[base &+ j], y[j])
                                j &+= 1
                            }
                        }
                    } else {
                        let ai = strides(for: a.shape, in: shape)
                        let bi = strides(for: b.shape, in: shape)
                        var index = [Int](repeating: 0, count: shape.count)
                        for i in 0..<count {
                            var ao = 0, bo = 0
                            for d in 0..<shape.count {
                                ao += index[d] * ai[d]
                                bo += index[d] * bi[d]
                            }
                            o[i] = O.apply(x[ao], y[bo])
                            var d = shape.count - 1
                            while d >= 0 {
                                index[d] += 1
                                if index[d] < shape[d] { break }
                                index[d] = 0
                                d -= 1
                            }
                        }
                    }
                }
            }
        }
        return Tensor(unchecked: shape, .float32(out))
    }

    static func broadcast(_ a: [Int], _ b: [Int], _ name: String) throws -> [Int] {
        let n = max(a.count, b.count)
        var out = [Int](repeating: 1, count: n)
        for i in 0..<n {
            let x = i < n - a.count ? 1 : a[i - (n - a.count)]
            let y = i < n - b.count ? 1 : b[i - (n - b.count)]
            guard x == y || x == 1 || y == 1 else { throw RuntimeError("node \(name): shapes \(a) and \(b) do not broadcast") }
            out[i] = max(x, y)
        }
        return out
    }

    /// Strides of `shape` aligned to `target`, 0 along broadcast dimensions.
    static func strides(for shape: [Int], in target: [Int]) -> [Int] {
        var strides = [Int](repeating: 0, count: target.count)
        var step = 1
        for i in (0..<shape.count).reversed() {
            let t = i + (target.count - shape.count)
            strides[t] = shape[i] == 1 ? 0 : step
            step *= shape[i]
        }
        return strides
    }
}

/// ai.onnx MatMul (2-D by 2-D, or 1-D vectors) and Gemm (alpha, beta, transA, transB, C). Immutable.
struct MatMul: Kernel {
    let name: String
    var alpha: Float = 1
    var beta: Float = 1
    var transA = false
    var transB = false

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try required(inputs, 0, name)
        let b = try required(inputs, 1, name)
        let aShape = a.shape.count == 1 ? [1, a.shape[0]] : a.shape
        let bShape = b.shape.count == 1 ? [b.shape[0], 1] : b.shape
        guard aShape.count == 2, bShape.count == 2 else { throw RuntimeError("node \(name): only 2-D matrices are supported, got \(a.shape) x \(b.shape)") }
        let (m, k) = transA ? (aShape[1], aShape[0]) : (aShape[0], aShape[1])
        let (k2, n) = transB ? (bShape[1], bShape[0]) : (bShape[0], bShape[1])
        guard k == k2 else { throw RuntimeError("node \(name): inner dimensions \(k) and \(k2) differ (\(a.shape) x \(b.shape))") }
        let av = try a.floats()
        let bv = try b.floats()
        var out = [Float](repeating: 0, count: m * n)
        let alpha = self.alpha, transA = self.transA, transB = self.transB
        av.withUnsafeBufferPointer { aBuffer in
            bv.withUnsafeBufferPointer { bBuffer in
                out.withUnsafeMutableBufferPointer { oBuffer in
                    guard let ap = aBuffer.baseAddress, let bp = bBuffer.baseAddress, let op = oBuffer.baseAddress else { return }
                    if transB {
                        // Rows of Bᵀ are contiguous: dot products.
                        for i in 0..<m {
                            for j in 0..<n {
                                var s: Float = 0
                                for p in 0..<k { s += (transA ? ap[p * m + i] : ap[i * k + p]) * bp[j * k + p] }
                                op[i * n + j] = alpha * s
                            }
                        }
                        return
                    }
                    // Register tiles of 4 rows x 8 columns: each loaded row segment of B feeds
                    // four SIMD multiply-adds.
                    var tiledRows = 0
                    if !transA && n >= 8 {
                        tiledRows = m - m % 4
                        let tiledColumns = n - n % 8
                        let rb = UnsafeRawPointer(bp)
                        for i0 in stride(from: 0, to: tiledRows, by: 4) {
                            let a0 = ap + i0 * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k
                            for j0 in stride(from: 0, to: tiledColumns, by: 8) {
                                var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
                                var offset = j0 &* 4
                                let rowBytes = n &* 4
                                for p in 0..<k {
                                    let b = rb.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                                    c0.addProduct(SIMD8(repeating: a0[p]), b)
                                    c1.addProduct(SIMD8(repeating: a1[p]), b)
                                    c2.addProduct(SIMD8(repeating: a2[p]), b)
                                    c3.addProduct(SIMD8(repeating: a3[p]), b)
                                    offset &+= rowBytes
                                }
                                let scale = SIMD8<Float>(repeating: alpha)
                                UnsafeMutableRawPointer(op + i0 * n + j0).storeBytes(of: c0 * scale, as: SIMD8<Float>.self)
                                UnsafeMutableRawPointer(op + (i0 + 1) * n + j0).storeBytes(of: c1 * scale, as: SIMD8<Float>.self)
                                UnsafeMutableRawPointer(op + (i0 + 2) * n + j0).storeBytes(of: c2 * scale, as: SIMD8<Float>.self)
                                UnsafeMutableRawPointer(op + (i0 + 3) * n + j0).storeBytes(of: c3 * scale, as: SIMD8<Float>.self)
                            }
                            for i in i0..<(i0 + 4) {
                                for j in tiledColumns..<n {
                                    var s: Float = 0
                                    for p in 0..<k { s += ap[i * k + p] * bp[p * n + j] }
                                    op[i * n + j] = alpha * s
                                }
                            }
                        }
                    }
                    // The rest, i-k-j: the inner loop is an axpy over a row of B and of the output,
                    // which the compiler vectorises.
                    for i in tiledRows..<m {
                        let outRow = op + i * n
                        for p in 0..<k {
                            let x = alpha * (transA ? ap[p * m + i] : ap[i * k + p])
                            if x == 0 { continue }
                            let bRow = bp + p * n
                            for j in 0..<n { outRow[j] += x * bRow[j] }
                        }
                    }
                }
            }
        }
        if inputs.count > 2, let c = inputs[2] {
            let cv = try c.floats()
            let shape = try Elementwise.broadcast([m, n], c.shape, name)
            guard shape == [m, n] else { throw RuntimeError("node \(name): C of shape \(c.shape) does not broadcast to [\(m), \(n)]") }
            let cs = Elementwise.strides(for: c.shape, in: [m, n])
            for i in 0..<m { for j in 0..<n { out[i * n + j] += beta * cv[i * cs[0] + j * cs[1]] } }
        }
        var shape = [m, n]
        if a.shape.count == 1 && b.shape.count == 1 { shape = [] } else if a.shape.count == 1 { shape = [n] } else if b.shape.count == 1 { shape = [m] }
        return [Tensor(unchecked: shape, .float32(out))]
    }
}

/// ai.onnx Relu, Sigmoid, Tanh, Identity. Immutable.
struct Unary: Kernel {
    enum Op: String { case relu = "Relu", sigmoid = "Sigmoid", tanh = "Tanh", identity = "Identity" }
    let name: String
    let op: Op

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, name)
        switch op {
        case .identity: return [x]
        case .relu:
            var v = try x.floats()
            v.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = max(p[i], 0) } }
            return [Tensor(unchecked: x.shape, .float32(v))]
        case .sigmoid:
            var v = try x.floats()
            v.withUnsafeMutableBufferPointer { VectorMath.logistic($0) }
            return [Tensor(unchecked: x.shape, .float32(v))]
        case .tanh: return [Tensor(unchecked: x.shape, .float32(try x.floats().map { tanhf($0) }))]
        }
    }
}

/// ai.onnx Softmax along the last axis (opset 13+ semantics; older opsets coerce to 2-D, which is
/// the same for the [N, K] tensors classic models produce). Immutable.
struct Softmax: Kernel {
    let name: String
    let axis: Int

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, name)
        let rank = x.shape.count
        guard axis == -1 || axis == rank - 1 else { throw RuntimeError("node \(name): Softmax only along the last axis is supported (axis \(axis))") }
        var v = try x.floats()
        PostTransform.softmax.applyRows(&v, width: max(1, x.shape.last ?? 1))
        return [Tensor(unchecked: x.shape, .float32(v))]
    }
}

/// ai.onnx ArgMax along the last axis (first maximum wins, as numpy). Immutable.
struct ArgMax: Kernel {
    let name: String
    let axis: Int
    let keepDims: Bool

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, name)
        let rank = x.shape.count
        guard rank >= 1, axis == -1 || axis == rank - 1 else { throw RuntimeError("node \(name): ArgMax only along the last axis is supported (axis \(axis))") }
        let v = try x.floats()
        let width = max(1, x.shape[rank - 1])
        var out: [Int64] = []
        out.reserveCapacity(v.count / width)
        v.withUnsafeBufferPointer { values in
            guard let base = values.baseAddress else { return }
            for r in 0..<(values.count / width) {
                let row = base + r * width
                var best = 0
                var top = row[0]
                for j in 1..<width {
                    // Selects, not a branch: which column wins is unpredictable row to row.
                    let wins = row[j] > top
                    best = wins ? j : best
                    top = wins ? row[j] : top
                }
                out.append(Int64(best))
            }
        }
        var shape = Array(x.shape.dropLast())
        if keepDims { shape.append(1) }
        return [Tensor(unchecked: shape, .int64(out))]
    }
}

/// ai.onnx Cast between the supported element types. Immutable.
struct Cast: Kernel {
    let name: String
    let to: Tensor.ElementType

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, name)
        let data: Tensor.Data
        switch to {
        case .float32: data = .float32(try x.floats())
        case .float64:
            if case .float64 = x.data { data = x.data } else { data = .float64(try x.floats().map { Double($0) }) }
        case .int64: data = .int64(try x.int64s())
        case .int32: data = .int32(try x.int64s().map { Int32(truncatingIfNeeded: $0) })
        case .bool: data = .bool(try x.floats().map { $0 != 0 })
        case .string:
            switch x.data {
            case .string: data = x.data
            case .int64(let v): data = .string(v.map { String($0) })
            default: data = .string(try x.floats().map { String($0) })
            }
        }
        return [Tensor(unchecked: x.shape, data)]
    }
}

/// ai.onnx Reshape (0 copies a dimension, -1 is inferred) and Flatten(axis). Immutable.
struct Reshape: Kernel {
    let name: String
    /// Flatten's axis; nil for Reshape (shape from input 1).
    let flattenAxis: Int?

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, name)
        if let axis = flattenAxis {
            let a = axis < 0 ? axis + x.shape.count : axis
            guard a >= 0, a <= x.shape.count else { throw RuntimeError("node \(name): Flatten axis \(axis) out of range for \(x.shape)") }
            let outer = x.shape.prefix(a).reduce(1, *)
            return [Tensor(unchecked: [outer, x.count / max(outer, 1)], x.data)]
        }
        let requested = try required(inputs, 1, name).int64s()
        var shape = requested.enumerated().map { i, d in d == 0 && i < x.shape.count ? x.shape[i] : Int(d) }
        if let inferred = shape.firstIndex(of: -1) {
            let known = Tensor.elementCount(shape.enumerated().lazy.filter { $0.offset != inferred }.map(\.element)) ?? 0
            guard known > 0, x.count % known == 0 else { throw RuntimeError("node \(name): cannot reshape \(x.shape) to \(requested)") }
            shape[inferred] = x.count / known
        }
        guard Tensor.elementCount(shape) == x.count else { throw RuntimeError("node \(name): cannot reshape \(x.shape) to \(requested)") }
        return [Tensor(unchecked: shape, x.data)]
    }
}

/// ai.onnx Concat of float tensors along an axis. Immutable.
struct Concat: Kernel {
    let name: String
    let axis: Int

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let tensors = inputs.compactMap { $0 }
        guard let first = tensors.first else { throw RuntimeError("node \(name): no inputs") }
        let rank = first.shape.count
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0, a < rank else { throw RuntimeError("node \(name): axis \(axis) out of range") }
        for t in tensors where t.shape.count != rank || zip(t.shape, first.shape).enumerated().contains(where: { $0.offset != a && $0.element.0 != $0.element.1 }) {
            throw RuntimeError("node \(name): shapes \(first.shape) and \(t.shape) cannot be concatenated on axis \(axis)")
        }
        let outer = first.shape.prefix(a).reduce(1, *)
        let values = try tensors.map { try $0.floats() }
        let chunks = tensors.map { $0.shape.suffix(from: a).reduce(1, *) }
        var out: [Float] = []
        out.reserveCapacity(values.reduce(0) { $0 + $1.count })
        for o in 0..<outer {
            for (v, c) in zip(values, chunks) { out.append(contentsOf: v[(o * c)..<((o + 1) * c)]) }
        }
        var shape = first.shape
        shape[a] = tensors.reduce(0) { $0 + $1.shape[a] }
        return [Tensor(unchecked: shape, .float32(out))]
    }
}
