/// The load-time rewrite that turns MatMul/Gemm with constant weights, the bias Add after it and
/// a Relu after that into one `DenseLayer`. Only exact patterns fuse: every intermediate value is
/// used once and is not a graph output, the weights and bias are float32 initializers of matching
/// shapes, Gemm has transA = 0. Anything else compiles node by node as before.
extension DenseLayer {
    struct Fusion {
        let kernel: DenseLayer
        let input: String
        let output: String
        /// Positions of the later nodes folded in (they are skipped when compiling).
        let absorbed: [Int]
    }

    /// How many times each value is read (node inputs and graph outputs).
    static func uses(in graph: GraphSpec) -> [String: Int] {
        var uses: [String: Int] = [:]
        for node in graph.nodes { for input in node.inputs where !input.isEmpty { uses[input, default: 0] += 1 } }
        for output in graph.outputs { uses[output.name, default: 0] += 1 }
        return uses
    }

    static func fuse(_ graph: GraphSpec, at position: Int, uses: [String: Int], label: String) throws -> Fusion? {
        let node = graph.nodes[position]
        guard node.domain.isEmpty || node.domain == "ai.onnx", node.outputs.count == 1 else { return nil }
        let isGemm = node.opType == "Gemm"
        guard node.opType == "MatMul" || isGemm, node.inputs.count >= 2,
              graph.initializers[node.inputs[0]] == nil,
              let w = graph.initializers[node.inputs[1]], case .float32(let wv) = w.data, w.shape.count == 2 else { return nil }
        let attributes = AttributeReader(node: node)
        var alpha: Float = 1, beta: Float = 1
        var transB = false
        if isGemm {
            guard try attributes.int("transA", default: 0) == 0 else { return nil }
            transB = try attributes.int("transB", default: 0) != 0
            alpha = try attributes.float("alpha", default: 1)
            beta = try attributes.float("beta", default: 1)
        }
        let (k, n) = transB ? (w.shape[1], w.shape[0]) : (w.shape[0], w.shape[1])
        guard k > 0, n > 0 else { return nil }
        var weights = wv
        if transB {
            weights = [Float](repeating: 0, count: k * n)
            for j in 0..<n { for p in 0..<k { weights[p * n + j] = wv[j * k + p] } }
        }
        var bias: [Float] = []
        var output = node.outputs[0]
        var absorbed: [Int] = []
        if isGemm, node.inputs.count > 2, !node.inputs[2].isEmpty {
            guard let c = graph.initializers[node.inputs[2]], let values = Self.biasValues(c, n: n) else { return nil }
            bias = values
        } else {
            beta = 1
        }
        // MatMul -> Add(constant bias).
        if !isGemm, let (next, add) = Self.soleConsumer(of: output, in: graph, after: position, uses: uses), add.opType == "Add",
           add.domain.isEmpty || add.domain == "ai.onnx", add.inputs.count == 2, add.outputs.count == 1 {
            let other = add.inputs[0] == output ? add.inputs[1] : add.inputs[0]
            if let c = graph.initializers[other], let values = Self.biasValues(c, n: n) {
                bias = values
                output = add.outputs[0]
                absorbed.append(next)
            }
        }
        // -> Relu.
        var relu = false
        if let (next, activation) = Self.soleConsumer(of: output, in: graph, after: absorbed.last ?? position, uses: uses),
           activation.opType == "Relu", activation.domain.isEmpty || activation.domain == "ai.onnx",
           activation.inputs.count == 1, activation.outputs.count == 1 {
            relu = true
            output = activation.outputs[0]
            absorbed.append(next)
        }
        let kernel = DenseLayer(name: label, weights: weights, k: k, n: n, alpha: alpha, bias: bias, beta: beta, relu: relu)
        return Fusion(kernel: kernel, input: node.inputs[0], output: output, absorbed: absorbed)
    }

    /// A float32 bias of n values, as [n] or [1, n].
    private static func biasValues(_ tensor: Tensor, n: Int) -> [Float]? {
        guard case .float32(let values) = tensor.data, values.count == n,
              tensor.shape == [n] || tensor.shape == [1, n] else { return nil }
        return values
    }

    /// The only node reading `value`, when it is read once and is not a graph output.
    private static func soleConsumer(of value: String, in graph: GraphSpec, after position: Int, uses: [String: Int]) -> (Int, GraphSpec.Node)? {
        guard uses[value] == 1, !graph.outputs.contains(where: { $0.name == value }) else { return nil }
        for index in (position + 1)..<graph.nodes.count where graph.nodes[index].inputs.contains(value) {
            return (index, graph.nodes[index])
        }
        return nil
    }
}
