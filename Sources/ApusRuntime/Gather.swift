/// ai.onnx Gather: picks slices of `data` along `axis` by `indices` (int32/int64, negative ones
/// count from the end). skl2onnx uses it with axis 1 to take the columns a OneHotEncoder or a
/// ColumnTransformer works on. Output shape: data[..<axis] + indices.shape + data[(axis+1)...].
/// Immutable.
struct Gather: Kernel {
    let name: String
    let axis: Int

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let data = try required(inputs, 0, name)
        let indexTensor = try required(inputs, 1, name)
        guard indexTensor.data.elementType == .int64 || indexTensor.data.elementType == .int32 else {
            throw RuntimeError("node \(name): indices must be INT64 or INT32, got \(indexTensor.data.elementType.rawValue)")
        }
        let rank = data.shape.count
        guard rank > 0 else { throw RuntimeError("node \(name): data must have at least one dimension") }
        let axis = self.axis < 0 ? self.axis + rank : self.axis
        guard (0..<rank).contains(axis) else { throw RuntimeError("node \(name): axis \(self.axis) is out of range for rank \(rank)") }
        let extent = data.shape[axis]
        let indices = try indexTensor.int64s().map { raw -> Int in
            let i = raw < 0 ? Int(raw) + extent : Int(raw)
            guard (0..<extent).contains(i) else { throw RuntimeError("node \(name): index \(raw) is out of range for dimension \(extent)") }
            return i
        }
        let outer = data.shape[..<axis].reduce(1, *)
        let inner = data.shape[(axis + 1)...].reduce(1, *)
        let shape = Array(data.shape[..<axis]) + indexTensor.shape + Array(data.shape[(axis + 1)...])
        func pick<T>(_ v: [T]) -> [T] {
            var out: [T] = []
            out.reserveCapacity(outer * indices.count * inner)
            for o in 0..<outer {
                for i in indices {
                    let start = (o * extent + i) * inner
                    out.append(contentsOf: v[start..<(start + inner)])
                }
            }
            return out
        }
        let picked: Tensor.Data
        switch data.data {
        case .float32(let v): picked = .float32(pick(v))
        case .float64(let v): picked = .float64(pick(v))
        case .int64(let v): picked = .int64(pick(v))
        case .int32(let v): picked = .int32(pick(v))
        case .bool(let v): picked = .bool(pick(v))
        case .string(let v): picked = .string(pick(v))
        }
        return [Tensor(unchecked: shape, picked)]
    }
}
