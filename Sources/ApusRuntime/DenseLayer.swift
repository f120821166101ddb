/// y = act(x · W + b) with constant W [k, n] and bias b [n]: what `MatMul` (+ `Add`) (+ `Relu`) and
/// `Gemm` with constant weights compute in an MLP or a linear layer, fused at load
/// (`CompiledModel` rewrites the pattern) so the batch makes one pass over memory instead of three.
///
/// W is repacked at load into panels of 16 columns (k x 16 each, zero-padded), so the inner loop
/// reads B contiguously; a tile of 4 rows x 16 columns keeps 8 independent SIMD8 accumulators,
/// enough to hide FMA latency on two FMA ports. A layer of at most 8 outputs (a classifier's
/// last layer) uses one 8-column panel and tiles of 8 rows instead, so it does not compute 16
/// columns to keep 3. Immutable and `Sendable`.
struct DenseLayer: Kernel {
    let name: String
    let k: Int
    let n: Int
    /// Columns per panel: 16, or 8 when n <= 8.
    let panelWidth: Int
    /// ceil(n / panelWidth) panels, each k rows of panelWidth floats (alpha folded in).
    let panels: [Float]
    /// n rounded up to panelWidth, zero-padded (beta folded in).
    let bias: [Float]
    let relu: Bool

    /// `weights`: row-major [k, n] (already transposed for Gemm's transB), `bias`: n values or empty.
    init(name: String, weights: [Float], k: Int, n: Int, alpha: Float = 1, bias: [Float], beta: Float = 1, relu: Bool) {
        let width = n <= 8 ? 8 : 16
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
        self.panelWidth = width
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
                        if panelWidth == 8 {
                            computeNarrow(m: m, x: xp, panel: pp, bias: bp, out: op)
                        } else {
                            compute(m: m, x: xp, panels: pp, bias: bp, out: op)
                        }
                    }
                }
            }
            initialized = m * n
        }
        return [Tensor(unchecked: x.shape.count == 1 ? [n] : [m, n], .float32(out))]
    }

    private func compute(m: Int, x: UnsafePointer<Float>, panels: UnsafePointer<Float>, bias: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let k = self.k, n = self.n, width = 16
        let panelCount = (n + width - 1) / width
        for panel in 0..<panelCount {
            let j0 = panel * width
            let columns = min(width, n - j0)
            let b = UnsafeRawPointer(panels + panel * k * width)
            let biasLo = UnsafeRawPointer(bias + j0).loadUnaligned(as: SIMD8<Float>.self)
            let biasHi = UnsafeRawPointer(bias + j0 + 8).loadUnaligned(as: SIMD8<Float>.self)
            var i = 0
            // Six rows x 16 columns: 12 accumulators, 2 weight vectors and a broadcast fill the 16
            // AVX2 registers; more accumulators than FMA latency x ports (8), so the FMAs never wait.
            while i + 6 <= m {
                let a0 = x + i * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k, a4 = a3 + k, a5 = a4 + k
                var c00 = biasLo, c01 = biasHi, c10 = biasLo, c11 = biasHi, c20 = biasLo, c21 = biasHi
                var c30 = biasLo, c31 = biasHi, c40 = biasLo, c41 = biasHi, c50 = biasLo, c51 = biasHi
                var offset = 0
                for p in 0..<k {
                    let lo = b.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                    let hi = b.loadUnaligned(fromByteOffset: offset &+ 32, as: SIMD8<Float>.self)
                    offset &+= 64
                    let v0 = SIMD8<Float>(repeating: a0[p])
                    c00.addProduct(v0, lo); c01.addProduct(v0, hi)
                    let v1 = SIMD8<Float>(repeating: a1[p])
                    c10.addProduct(v1, lo); c11.addProduct(v1, hi)
                    let v2 = SIMD8<Float>(repeating: a2[p])
                    c20.addProduct(v2, lo); c21.addProduct(v2, hi)
                    let v3 = SIMD8<Float>(repeating: a3[p])
                    c30.addProduct(v3, lo); c31.addProduct(v3, hi)
                    let v4 = SIMD8<Float>(repeating: a4[p])
                    c40.addProduct(v4, lo); c41.addProduct(v4, hi)
                    let v5 = SIMD8<Float>(repeating: a5[p])
                    c50.addProduct(v5, lo); c51.addProduct(v5, hi)
                }
                let row = out + i * n + j0
                finish(c00, c01, row, columns); finish(c10, c11, row + n, columns); finish(c20, c21, row + 2 * n, columns)
                finish(c30, c31, row + 3 * n, columns); finish(c40, c41, row + 4 * n, columns); finish(c50, c51, row + 5 * n, columns)
                i += 6
            }
            while i + 4 <= m {
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
                let row = out + i * n + j0
                finish(c00, c01, row, columns); finish(c10, c11, row + n, columns)
                finish(c20, c21, row + 2 * n, columns); finish(c30, c31, row + 3 * n, columns)
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
                finish(c0, c1, out + i * n + j0, columns)
                i += 1
            }
        }
    }

    /// n <= 8: one panel of 8 columns; tiles of 8 rows keep 8 accumulators, one per row.
    private func computeNarrow(m: Int, x: UnsafePointer<Float>, panel: UnsafePointer<Float>, bias: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let k = self.k, n = self.n
        let b = UnsafeRawPointer(panel)
        let start = UnsafeRawPointer(bias).loadUnaligned(as: SIMD8<Float>.self)
        var i = 0
        while i + 8 <= m {
            let a0 = x + i * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k
            let a4 = a3 + k, a5 = a4 + k, a6 = a5 + k, a7 = a6 + k
            var c0 = start, c1 = start, c2 = start, c3 = start, c4 = start, c5 = start, c6 = start, c7 = start
            var offset = 0
            for p in 0..<k {
                let w = b.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                offset &+= 32
                c0.addProduct(SIMD8(repeating: a0[p]), w); c1.addProduct(SIMD8(repeating: a1[p]), w)
                c2.addProduct(SIMD8(repeating: a2[p]), w); c3.addProduct(SIMD8(repeating: a3[p]), w)
                c4.addProduct(SIMD8(repeating: a4[p]), w); c5.addProduct(SIMD8(repeating: a5[p]), w)
                c6.addProduct(SIMD8(repeating: a6[p]), w); c7.addProduct(SIMD8(repeating: a7[p]), w)
            }
            let row = out + i * n
            finishNarrow(c0, row); finishNarrow(c1, row + n); finishNarrow(c2, row + 2 * n); finishNarrow(c3, row + 3 * n)
            finishNarrow(c4, row + 4 * n); finishNarrow(c5, row + 5 * n); finishNarrow(c6, row + 6 * n); finishNarrow(c7, row + 7 * n)
            i += 8
        }
        while i < m {
            let a0 = x + i * k
            var c = start
            var offset = 0
            for p in 0..<k {
                c.addProduct(SIMD8(repeating: a0[p]), b.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self))
                offset &+= 32
            }
            finishNarrow(c, out + i * n)
            i += 1
        }
    }

    @inline(__always)
    private func finish(_ lo: SIMD8<Float>, _ hi: SIMD8<Float>, _ row: UnsafeMutablePointer<Float>, _ columns: Int) {
        let zero = SIMD8<Float>()
        if relu {
            Self.store(lo.replacing(with: zero, where: lo .< zero), hi.replacing(with: zero, where: hi .< zero), to: row, columns: columns)
        } else {
            Self.store(lo, hi, to: row, columns: columns)
        }
    }

    @inline(__always)
    private func finishNarrow(_ c: SIMD8<Float>, _ row: UnsafeMutablePointer<Float>) {
        let zero = SIMD8<Float>()
        Self.store(relu ? c.replacing(with: zero, where: c .< zero) : c, zero, to: row, columns: n)
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
