/// y = act(x · W + b) with constant W [k, n] and bias b [n]: what `MatMul` (+ `Add`) (+ `Relu`) and
/// `Gemm` with constant weights compute in an MLP or a linear layer, fused at load
/// (`CompiledModel` rewrites the pattern) so the batch makes one pass over memory instead of three.
///
/// W is repacked at load into panels of 16 columns (k x 16 each, zero-padded), so the inner loop
/// reads B contiguously; a tile of 4 rows x 16 columns keeps 8 independent SIMD8 accumulators,
/// enough to hide FMA latency on two FMA ports. Immutable and `Sendable`.
struct DenseLayer: Kernel {
    static let panelWidth = 16

    let name: String
    let k: Int
    let n: Int
    /// ceil(n / 16) panels, each k rows of 16 floats (alpha folded in).
    let panels: [Float]
    /// n rounded up to 16, zero-padded (beta folded in).
    let bias: [Float]
    let relu: Bool

    /// `weights`: row-major [k, n] (already transposed for Gemm's transB), `bias`: n values or empty.
    init(name: String, weights: [Float], k: Int, n: Int, alpha: Float = 1, bias: [Float], beta: Float = 1, relu: Bool) {
        let width = Self.panelWidth
        let panelCount = (n + width - 1) / width
        var panels = [Float](repeating: 0, count: max(1, panelCount * k * width))
        for panel in 0..<panelCount {
            for p in 0..<k {
                for c in 0..<width where panel * width + c < n {
                    panels[(panel * k + p) * width + c] = alpha * weights[p * n + panel * width + c]
                }
            }
        }
        var padded = [Float](repeating: 0, count: max(1, panelCount * width))
        for j in 0..<min(n, bias.count) { padded[j] = beta * bias[j] }
        self.name = name
        self.k = k
        self.n = n
        self.panels = panels
        self.bias = padded
        self.relu = relu
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, name)
        let m: Int
        switch x.shape.count {
        case 1 where x.shape[0] == k: m = 1
        case 2 where x.shape[1] == k: m = x.shape[0]
        default: throw RuntimeError("node \(name): input of shape \(x.shape) does not have \(k) columns")
        }
        let xv = try x.floats()
        let n = self.n
        let out = [Float](unsafeUninitializedCapacity: m * n) { buffer, initialized in
            xv.withUnsafeBufferPointer { xBuffer in
                panels.withUnsafeBufferPointer { pBuffer in
                    bias.withUnsafeBufferPointer { bBuffer in
                        guard let xp = xBuffer.baseAddress, let pp = pBuffer.baseAddress, let bp = bBuffer.baseAddress,
                              let op = buffer.baseAddress else { return }
                        compute(m: m, x: xp, panels: pp, bias: bp, out: op)
                    }
                }
            }
            initialized = m * n
        }
        return [Tensor(unchecked: x.shape.count == 1 ? [n] : [m, n], .float32(out))]
    }

    private func compute(m: Int, x: UnsafePointer<Float>, panels: UnsafePointer<Float>, bias: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let k = self.k, n = self.n, width = Self.panelWidth
        let panelCount = (n + width - 1) / width
        let rowsTiled = m - m % 4
        let zero = SIMD8<Float>()
        for panel in 0..<panelCount {
            let j0 = panel * width
            let columns = min(width, n - j0)
            let b = UnsafeRawPointer(panels + panel * k * width)
            let biasLo = UnsafeRawPointer(bias + j0).loadUnaligned(as: SIMD8<Float>.self)
            let biasHi = UnsafeRawPointer(bias + j0 + 8).loadUnaligned(as: SIMD8<Float>.self)
            var i = 0
            while i < rowsTiled {
                let a0 = x + i * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k
                var c00 = biasLo, c01 = biasHi, c10 = biasLo, c11 = biasHi
                var c20 = biasLo, c21 = biasHi, c30 = biasLo, c31 = biasHi
                var offset = 0
                for p in 0..<k {
                    let lo = b.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                    let hi = b.loadUnaligned(fromByteOffset: offset &+ 32, as: SIMD8<Float>.self)
                    offset &+= 64
                    let v0 = SIMD8<Float>(repeating: a0[p]), v1 = SIMD8<Float>(repeating: a1[p])
                    let v2 = SIMD8<Float>(repeating: a2[p]), v3 = SIMD8<Float>(repeating: a3[p])
                    c00.addProduct(v0, lo); c01.addProduct(v0, hi)
                    c10.addProduct(v1, lo); c11.addProduct(v1, hi)
                    c20.addProduct(v2, lo); c21.addProduct(v2, hi)
                    c30.addProduct(v3, lo); c31.addProduct(v3, hi)
                }
                if relu {
                    c00 = c00.replacing(with: zero, where: c00 .< zero); c01 = c01.replacing(with: zero, where: c01 .< zero)
                    c10 = c10.replacing(with: zero, where: c10 .< zero); c11 = c11.replacing(with: zero, where: c11 .< zero)
                    c20 = c20.replacing(with: zero, where: c20 .< zero); c21 = c21.replacing(with: zero, where: c21 .< zero)
                    c30 = c30.replacing(with: zero, where: c30 .< zero); c31 = c31.replacing(with: zero, where: c31 .< zero)
                }
                Self.store(c00, c01, to: out + i * n + j0, columns: columns)
                Self.store(c10, c11, to: out + (i + 1) * n + j0, columns: columns)
                Self.store(c20, c21, to: out + (i + 2) * n + j0, columns: columns)
                Self.store(c30, c31, to: out + (i + 3) * n + j0, columns: columns)
                i += 4
            }
            while i < m {
                let a0 = x + i * k
                var c0 = biasLo, c1 = biasHi
                var offset = 0
                for p in 0..<k {
                    let v = SIMD8<Float>(repeating: a0[p])
                    c0.addProduct(v, b.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self))
                    c1.addProduct(v, b.loadUnaligned(fromByteOffset: offset &+ 32, as: SIMD8<Float>.self))
                    offset &+= 64
                }
                if relu {
                    c0 = c0.replacing(with: zero, where: c0 .< zero)
                    c1 = c1.replacing(with: zero, where: c1 .< zero)
                }
                Self.store(c0, c1, to: out + i * n + j0, columns: columns)
                i += 1
            }
        }
    }

    /// Writes the first `columns` (1...16) lanes of lo ++ hi.
    @inline(__always)
    private static func store(_ lo: SIMD8<Float>, _ hi: SIMD8<Float>, to row: UnsafeMutablePointer<Float>, columns: Int) {
        if columns == 16 {
            UnsafeMutableRawPointer(row).storeBytes(of: lo, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(row + 8).storeBytes(of: hi, as: SIMD8<Float>.self)
            return
        }
        for c in 0..<min(columns, 8) { row[c] = lo[c] }
        if columns > 8 { for c in 8..<columns { row[c] = hi[c - 8] } }
    }
}
