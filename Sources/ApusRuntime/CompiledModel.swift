/// A validated, compiled model: every node turned into a kernel at load, value names turned into
/// slot indices, so `run` does no lookups by name per node.
///
/// Invariants: every node input is produced earlier (or is a graph input / initializer); every op
/// is supported with the attributes given (otherwise `init` throws naming node and op).
/// Immutable and `Sendable`: one instance serves all threads concurrently.
public final class CompiledModel: Sendable {
    /// A class, so `run`'s loop holds one reference per step instead of copying (and retaining)
    /// its four fields.
    final class Step: Sendable {
        let kernel: any Kernel
        let inputs: [Int]   // slot per input, -1 for an omitted optional input
        let outputs: [Int]
        let label: String

        init(kernel: any Kernel, inputs: [Int], outputs: [Int], label: String) {
            self.kernel = kernel
            self.inputs = inputs
            self.outputs = outputs
            self.label = label
        }
    }

    public let inputs: [GraphSpec.ValueSpec]
    public let outputs: [GraphSpec.ValueSpec]
    /// Class labels of the classifier op, when the model has one (ZipMap / label outputs).
    public let classLabels: [Int64]?
    let steps: [Step]
    let slotCount: Int
    let constants: [(slot: Int, tensor: Tensor)]
    let inputSlots: [Int]
    let outputSlots: [Int]

    public init(_ graph: GraphSpec) throws {
        var slots: [String: Int] = [:]
        func slot(_ name: String) -> Int {
            if let s = slots[name] { return s }
            let s = slots.count
            slots[name] = s
            return s
        }
        var available = Set<String>()
        var constants: [(Int, Tensor)] = []
        for (name, tensor) in graph.initializers.sorted(by: { $0.key < $1.key }) {
            constants.append((slot(name), tensor))
            available.insert(name)
        }
        var inputs: [GraphSpec.ValueSpec] = []
        for input in graph.inputs where graph.initializers[input.name] == nil {
            inputs.append(input)
            available.insert(input.name)
        }
        guard !inputs.isEmpty else { throw RuntimeError("the graph has no inputs") }
        let inputSlots = inputs.map { slot($0.name) }
        var steps: [Step] = []
        var labels: [Int64]?
        let uses = DenseLayer.uses(in: graph)
        var absorbed = Set<Int>()
        for (position, node) in graph.nodes.enumerated() where !absorbed.contains(position) {
            let label = node.name.isEmpty ? "#\(position) (\(node.opType))" : "\(node.name) (\(node.opType))"
            for input in node.inputs where !input.isEmpty && !available.contains(input) {
                throw RuntimeError("node \(label): input \(input) is not produced by an earlier node")
            }
            // Dense layers (MatMul/Gemm + bias + Relu) run as one fused kernel.
            let fusion: DenseLayer.Fusion?
            do {
                fusion = try DenseLayer.fuse(graph, at: position, uses: uses, label: label)
            } catch let error as RuntimeError {
                throw RuntimeError("node \(label): \(error.message)")
            }
            if let fusion {
                absorbed.formUnion(fusion.absorbed)
                steps.append(Step(kernel: fusion.kernel, inputs: [slot(fusion.input)], outputs: [slot(fusion.output)], label: label))
                available.insert(fusion.output)
                continue
            }
            let kernel: any Kernel
            do {
                kernel = try OpRegistry.make(node, initializers: graph.initializers)
            } catch let error as RuntimeError {
                throw RuntimeError("node \(label): \(error.message)")
            }
            if case .ints(let l)? = node.attributes["classlabels_int64s"] ?? node.attributes["classlabels_ints"], labels == nil { labels = l }
            steps.append(Step(kernel: kernel, inputs: node.inputs.map { $0.isEmpty ? -1 : slot($0) }, outputs: node.outputs.map { slot($0) }, label: label))
            for output in node.outputs { available.insert(output) }
        }
        for output in graph.outputs where !available.contains(output.name) {
            throw RuntimeError("graph output \(output.name) is not produced by any node")
        }
        self.inputs = inputs
        self.outputs = graph.outputs
        self.classLabels = labels
        self.steps = steps
        self.slotCount = slots.count
        // Only initializers some step reads (or the graph returns) are placed in a run's slots:
        // fused dense layers keep their weights inside the kernel, and copying every weight
        // tensor into the slot table cost retains and releases on each run.
        let outputSlots = graph.outputs.map { slot($0.name) }
        let read = Set(steps.flatMap(\.inputs)).union(outputSlots)
        self.constants = constants.filter { read.contains($0.0) }
        self.inputSlots = inputSlots
        self.outputSlots = outputSlots
    }

    /// Runs the graph. `feeds` are in `inputs` order; results in `outputs` order. Thread-safe.
    public func run(_ feeds: [Tensor]) throws -> [Tensor] {
        guard feeds.count == inputs.count else {
            throw RuntimeError("model takes \(inputs.count) inputs, \(feeds.count) given")
        }
        var values = [Tensor?](repeating: nil, count: slotCount)
        for (slot, tensor) in constants { values[slot] = tensor }
        for (i, feed) in feeds.enumerated() {
            let spec = inputs[i]
            if let shape = spec.shape {
                guard shape.count == feed.shape.count, zip(shape, feed.shape).allSatisfy({ $0 == nil || $0 == $1 }) else {
                    throw RuntimeError("input \(spec.name): expected shape \(shape.map { $0.map(String.init) ?? "?" }), got \(feed.shape)")
                }
            }
            values[inputSlots[i]] = feed
        }
        for step in steps {
            let results = try step.kernel.run(step.inputs.map { $0 < 0 ? nil : values[$0] })
            guard results.count >= step.outputs.count else {
                throw RuntimeError("node \(step.label) produced \(results.count) outputs, \(step.outputs.count) expected")
            }
            for (slot, result) in zip(step.outputs, results) { values[slot] = result }
        }
        return try outputSlots.enumerated().map { i, slot in
            guard let value = values[slot] else { throw RuntimeError("output \(outputs[i].name) was not computed") }
            return value
        }
    }
}
