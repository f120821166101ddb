/// Exponential and logistic on eight floats at once (libm's `expf` was a third of a logistic
/// regression's time). Every lane is computed by the same lane-wise IEEE operations, so a value's
/// result does not depend on its neighbours or on where it sits in a batch: the scalar helpers
/// below run the same code on a vector. Pure functions, safe from any thread.
enum VectorMath {
    /// e^x for x <= 0 (what logistic and softmax need): Cephes' expf reduction and polynomial,
    /// within 2 ulp of `expf`. Below -87.3 (where `expf` turns subnormal) the result is 0; NaN
    /// stays NaN.
    @inline(__always)
    static func expNonPositive(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let lowest: Float = -87.33654
        let clamped = x.replacing(with: lowest, where: .!(x .>= lowest)).replacing(with: 0, where: x .> 0)
        // x = n ln2 + r, |r| <= ln2 / 2; ln2 split in two so n ln2 is exact enough.
        let n = (clamped * 1.44269504088896341 + 0.5).rounded(.down)
        var r = clamped - n * 0.693359375
        r = r - n * -2.12194440e-4
        let r2 = r * r
        var p = SIMD8<Float>(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3333518073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        p = p * r2 + r + 1
        // 2^n from its exponent bits: n + 127 lands in the low mantissa bits of 1.5 * 2^23 + n + 127.
        let magic: Float = 12582912
        let biased = unsafeBitCast(n + (magic + 127), to: SIMD8<UInt32>.self) &- unsafeBitCast(SIMD8<Float>(repeating: magic), to: SIMD8<UInt32>.self)
        let scale = unsafeBitCast(biased &<< 23, to: SIMD8<Float>.self)
        var result = p * scale
        result.replace(with: 0, where: x .< lowest)
        result.replace(with: .nan, where: x .!= x)
        return result
    }

    /// onnxruntime's logistic, 1 / (1 + e^-|x|), mirrored for x < 0 (never e^ of a large number).
    @inline(__always)
    static func logistic(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let magnitude = x.replacing(with: -x, where: x .< 0)
        let v = 1 / (1 + expNonPositive(-magnitude))
        return v.replacing(with: 1 - v, where: x .< 0)
    }

    /// `logistic` of every value in place.
    static func logistic(_ values: UnsafeMutableBufferPointer<Float>) { forEachVector(values, logistic) }

    /// e^x of every value in place, for values <= 0 (see `expNonPositive`).
    static func expNonPositive(_ values: UnsafeMutableBufferPointer<Float>) { forEachVector(values, expNonPositive) }

    /// Applies `f` to the values eight at a time; the tail goes through `f` in one zero-padded vector.
    @inline(__always)
    static func forEachVector(_ values: UnsafeMutableBufferPointer<Float>, _ f: (SIMD8<Float>) -> SIMD8<Float>) {
        guard let base = values.baseAddress else { return }
        let raw = UnsafeMutableRawPointer(base)
        var i = 0
        while i + 8 <= values.count {
            raw.storeBytes(of: f(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)), toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        if i < values.count {
            var tail = SIMD8<Float>()
            for j in i..<values.count { tail[j - i] = base[j] }
            tail = f(tail)
            for j in i..<values.count { base[j] = tail[j - i] }
        }
    }

    /// Softmax of each `width`-wide row in place: e^(x - max) / sum. The exponentials of all rows
    /// are taken in one vector pass (rows of a classifier are only a few values wide). NaN
    /// anywhere in a row makes the whole row NaN, as in onnxruntime.
    static func softmaxRows(_ values: UnsafeMutableBufferPointer<Float>, width: Int) {
        guard let base = values.baseAddress, width > 0 else { return }
        let rows = values.count / width
        for r in 0..<rows {
            let row = base + r * width
            // The first NaN stays the maximum (as `Sequence.max()` does), so the row turns NaN.
            var top = row[0]
            for c in 1..<width { top = row[c] > top ? row[c] : top }
            for c in 0..<width { row[c] -= top }
        }
        expNonPositive(UnsafeMutableBufferPointer(start: base, count: rows * width))
        for r in 0..<rows {
            let row = base + r * width
            var sum: Float = 0
            for c in 0..<width { sum += row[c] }
            for c in 0..<width { row[c] /= sum }
        }
    }

    /// Scalar forms: lane 0 of the vector code, so they agree bit for bit with the batched paths.
    static func logistic(_ x: Float) -> Float { logistic(SIMD8<Float>(repeating: x))[0] }
    static func expNonPositive(_ x: Float) -> Float { expNonPositive(SIMD8<Float>(repeating: x))[0] }
}
