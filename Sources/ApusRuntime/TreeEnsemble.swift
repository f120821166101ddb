/// ai.onnx.ml TreeEnsembleClassifier / TreeEnsembleRegressor, compiled into flat arrays.
///
/// Layout (built once at load): every node of every tree in one struct-of-arrays; a branch node
/// stores its feature, threshold, mode, missing-value direction and the absolute indices of its two
/// children; a leaf stores a range into the leaf-weight arrays. The hot loop walks these arrays
/// with no allocation per row. Semantics follow onnxruntime (the conformance reference),
/// including its binary-classification rules. Immutable, so safe to run concurrently.
struct TreeEnsemble: Kernel {
    enum Mode: UInt8 { case leq, lt, gte, gt, eq, neq, leaf }
    enum Aggregate: String { case sum = "SUM", average = "AVERAGE", min = "MIN", max = "MAX" }

    struct Attributes {
        var nodeTreeIDs: [Int64] = []
        var nodeIDs: [Int64] = []
        var featureIDs: [Int64] = []
        var values: [Float] = []
        var modes: [String] = []
        var trueIDs: [Int64] = []
        var falseIDs: [Int64] = []
        var missingTracksTrue: [Int64] = []
        /// class_* (classifier) or target_* (regressor).
        var leafTreeIDs: [Int64] = []
        var leafNodeIDs: [Int64] = []
        var leafTargets: [Int64] = []
        var leafWeights: [Float] = []
        var baseValues: [Float] = []
        var postTransform = "NONE"
        var aggregate = "SUM"
        /// Classifier only.
        var classLabels: [Int64]?
        /// Regressor only.
        var targetCount: Int = 1
    }

    let name: String
    // Nodes (all trees), struct of arrays.
    let feature: [Int32]
    let threshold: [Float]
    let mode: [UInt8]
    let trueChild: [Int32]
    let falseChild: [Int32]
    let missingTrue: [Bool]
    let leafStart: [Int32]
    let leafCount: [Int32]
    // Leaf weights.
    let weightTarget: [Int32]
    let weightValue: [Float]
    let roots: [Int32]
    let featureCount: Int

    let outputCount: Int
    let baseValues: [Float]
    let post: PostTransform
    let aggregate: Aggregate
    let classLabels: [Int64]?
    let binaryCase: Bool
    let weightsAllPositive: Bool

    init(name: String, _ a: Attributes) throws {
        self.name = name
        let n = a.nodeIDs.count
        guard n > 0, [a.nodeTreeIDs.count, a.featureIDs.count, a.values.count, a.modes.count, a.trueIDs.count, a.falseIDs.count].allSatisfy({ $0 == n }) else {
            throw RuntimeError("node \(name): nodes_* attributes must all have the same, non-zero length")
        }
        guard !(a.missingTracksTrue.count != 0 && a.missingTracksTrue.count != n) else {
            throw RuntimeError("node \(name): nodes_missing_value_tracks_true has \(a.missingTracksTrue.count) entries for \(n) nodes")
        }
        let m = a.leafNodeIDs.count
        guard a.leafTreeIDs.count == m, a.leafTargets.count == m, a.leafWeights.count == m else {
            throw RuntimeError("node \(name): leaf weight attributes must all have the same length")
        }
        guard let post = PostTransform(rawValue: a.postTransform) else {
            throw RuntimeError("node \(name): unsupported post_transform \(a.postTransform)")
        }
        guard let aggregate = Aggregate(rawValue: a.aggregate) else {
            throw RuntimeError("node \(name): unsupported aggregate_function \(a.aggregate)")
        }
        self.post = post
        self.aggregate = aggregate

        // Index nodes by (tree, node id).
        struct Key: Hashable { var tree: Int64; var node: Int64 }
        var index: [Key: Int32] = [:]
        index.reserveCapacity(n)
        for i in 0..<n { index[Key(tree: a.nodeTreeIDs[i], node: a.nodeIDs[i])] = Int32(i) }
        guard index.count == n else { throw RuntimeError("node \(name): duplicate (tree, node) ids") }

        var feature = [Int32](repeating: 0, count: n)
        var threshold = [Float](repeating: 0, count: n)
        var mode = [UInt8](repeating: 0, count: n)
        var trueChild = [Int32](repeating: -1, count: n)
        var falseChild = [Int32](repeating: -1, count: n)
        var missingTrue = [Bool](repeating: false, count: n)
        var maxFeature: Int64 = -1
        for i in 0..<n {
            let parsed: Mode
            switch a.modes[i] {
            case "BRANCH_LEQ": parsed = .leq
            case "BRANCH_LT": parsed = .lt
            case "BRANCH_GTE": parsed = .gte
            case "BRANCH_GT": parsed = .gt
            case "BRANCH_EQ": parsed = .eq
            case "BRANCH_NEQ": parsed = .neq
            case "LEAF": parsed = .leaf
            default: throw RuntimeError("node \(name): unsupported node mode \(a.modes[i])")
            }
            mode[i] = parsed.rawValue
            threshold[i] = a.values[i]
            missingTrue[i] = a.missingTracksTrue.isEmpty ? false : a.missingTracksTrue[i] != 0
            if parsed != .leaf {
                guard a.featureIDs[i] >= 0, a.featureIDs[i] < Int64(Int32.max) else {
                    throw RuntimeError("node \(name): negative feature id at node \(a.nodeIDs[i])")
                }
                feature[i] = Int32(a.featureIDs[i])
                maxFeature = max(maxFeature, a.featureIDs[i])
                guard let t = index[Key(tree: a.nodeTreeIDs[i], node: a.trueIDs[i])],
                      let f = index[Key(tree: a.nodeTreeIDs[i], node: a.falseIDs[i])] else {
                    throw RuntimeError("node \(name): tree \(a.nodeTreeIDs[i]) node \(a.nodeIDs[i]) points to a missing child")
                }
                trueChild[i] = t
                falseChild[i] = f
            }
        }
        // Roots: the first node of each tree in order of appearance that no branch points to.
        var isChild = [Bool](repeating: false, count: n)
        for i in 0..<n where mode[i] != Mode.leaf.rawValue {
            isChild[Int(trueChild[i])] = true
            isChild[Int(falseChild[i])] = true
        }
        var roots: [Int32] = []
        var seenTrees = Set<Int64>()
        for i in 0..<n where !isChild[i] {
            guard seenTrees.insert(a.nodeTreeIDs[i]).inserted else {
                throw RuntimeError("node \(name): tree \(a.nodeTreeIDs[i]) has more than one root")
            }
            roots.append(Int32(i))
        }
        // Cycles would hang the walk: every path must end in a leaf within n steps.
        for root in roots {
            var stack = [(root, 0)]
            while let (node, depth) = stack.popLast() {
                guard depth <= n else { throw RuntimeError("node \(name): tree has a cycle") }
                if mode[Int(node)] != Mode.leaf.rawValue {
                    stack.append((trueChild[Int(node)], depth + 1))
                    stack.append((falseChild[Int(node)], depth + 1))
                }
            }
        }

        // Leaf weights grouped by node.
        var perNode = [[(Int32, Float)]](repeating: [], count: n)
        var targets = Set<Int64>()
        var allPositive = true
        for j in 0..<m {
            guard let node = index[Key(tree: a.leafTreeIDs[j], node: a.leafNodeIDs[j])] else {
                throw RuntimeError("node \(name): weight for missing node \(a.leafNodeIDs[j]) of tree \(a.leafTreeIDs[j])")
            }
            guard a.leafTargets[j] >= 0, a.leafTargets[j] < 1 << 20 else {
                throw RuntimeError("node \(name): class/target id \(a.leafTargets[j]) out of range")
            }
            perNode[Int(node)].append((Int32(a.leafTargets[j]), a.leafWeights[j]))
            targets.insert(a.leafTargets[j])
            if a.leafWeights[j] < 0 { allPositive = false }
        }
        var leafStart = [Int32](repeating: 0, count: n)
        var leafCount = [Int32](repeating: 0, count: n)
        var weightTarget: [Int32] = []
        var weightValue: [Float] = []
        for i in 0..<n {
            leafStart[i] = Int32(weightTarget.count)
            leafCount[i] = Int32(perNode[i].count)
            for (t, w) in perNode[i] {
                weightTarget.append(t)
                weightValue.append(w)
            }
        }

        let outputCount: Int
        if let labels = a.classLabels {
            outputCount = labels.count
            guard outputCount > 0 else { throw RuntimeError("node \(name): no class labels") }
        } else {
            outputCount = a.targetCount
        }
        guard outputCount > 0, targets.allSatisfy({ $0 < Int64(outputCount) }) else {
            throw RuntimeError("node \(name): a leaf names class/target \(targets.max() ?? 0) but there are \(outputCount)")
        }
        self.outputCount = outputCount
        self.feature = feature
        self.threshold = threshold
        self.mode = mode
        self.trueChild = trueChild
        self.falseChild = falseChild
        self.missingTrue = missingTrue
        self.leafStart = leafStart
        self.leafCount = leafCount
        self.weightTarget = weightTarget
        self.weightValue = weightValue
        self.roots = roots
        self.featureCount = Int(maxFeature + 1)
        self.baseValues = a.baseValues
        self.classLabels = a.classLabels
        self.binaryCase = a.classLabels?.count == 2 && targets.count == 1
        self.weightsAllPositive = allPositive
    }

    /// The leaf reached by `row` in the tree starting at `root`.
    @inline(__always)
    func leaf(_ root: Int32, _ row: UnsafePointer<Float>) -> Int {
        var i = Int(root)
        while true {
            let m = mode[i]
            if m == Mode.leaf.rawValue { return i }
            let x = row[Int(feature[i])]
            let t = threshold[i]
            let goTrue: Bool
            switch m {
            case 0: goTrue = x <= t
            case 1: goTrue = x < t
            case 2: goTrue = x >= t
            case 3: goTrue = x > t
            case 4: goTrue = x == t
            default: goTrue = x != t
            }
            i = Int((goTrue || (x.isNaN && missingTrue[i])) ? trueChild[i] : falseChild[i])
        }
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, name)
        let rows = x.shape.count == 1 ? 1 : x.rows
        let width = x.shape.count == 1 ? x.count : x.rowWidth
        guard width >= featureCount else {
            throw RuntimeError("node \(name): input has \(width) features, the trees use \(featureCount)")
        }
        let values = try x.floats()
        let k = outputCount
        var scores = [Float](repeating: 0, count: rows * k)
        var has = [Bool](repeating: false, count: k)
        var labels = [Int64](repeating: 0, count: rows)
        var outWidth = k
        values.withUnsafeBufferPointer { data in
            guard let base = data.baseAddress else { return }
            for r in 0..<rows {
                let row = base + r * width
                var acc = [Float](repeating: 0, count: k)
                for t in 0..<k { has[t] = false }
                for root in roots {
                    let node = leaf(root, row)
                    let start = Int(leafStart[node])
                    for j in start..<(start + Int(leafCount[node])) {
                        let target = Int(weightTarget[j])
                        let w = weightValue[j]
                        switch aggregate {
                        case .sum, .average: acc[target] += w
                        case .min: acc[target] = has[target] ? Swift.min(acc[target], w) : w
                        case .max: acc[target] = has[target] ? Swift.max(acc[target], w) : w
                        }
                        has[target] = true
                    }
                }
                if classLabels != nil {
                    labels[r] = finalizeClassifier(&acc, &has, into: &scores, row: r, width: &outWidth)
                } else {
                    finalizeRegressor(&acc, into: &scores, row: r)
                }
            }
        }
        if let _ = classLabels {
            return [Tensor(unchecked: [rows], .int64(labels)), Tensor(unchecked: [rows, outWidth], .float32(outWidth == k ? scores : Array(scores.prefix(rows * outWidth))))]
        }
        return [Tensor(unchecked: [rows, k], .float32(scores))]
    }

    private func finalizeRegressor(_ acc: inout [Float], into scores: inout [Float], row r: Int) {
        let k = outputCount
        let n = Float(roots.count)
        for t in 0..<k {
            var v = acc[t]
            if aggregate == .average { v /= n }
            if baseValues.count == k { v += baseValues[t] } else if k == 1, baseValues.count == 1 { v += baseValues[0] }
            acc[t] = v
        }
        var slice = acc[0..<k]
        if k == 1 {
            if post == .probit { slice[0] = PostTransform.probit(slice[0]) }
        } else {
            post.apply(&slice)
        }
        for t in 0..<k { scores[r * k + t] = slice[t] }
    }

    /// onnxruntime's TreeAggregatorClassifier::FinalizeScores, including its binary rules.
    private func finalizeClassifier(_ acc: inout [Float], _ has: inout [Bool], into scores: inout [Float], row r: Int, width: inout Int) -> Int64 {
        let k = outputCount
        guard let labels = classLabels else { return 0 }
        if k > 2 {
            for j in 0..<min(baseValues.count, k) {
                acc[j] = has[j] ? acc[j] + baseValues[j] : baseValues[j]
                has[j] = true
            }
            var best = -1
            var bestScore: Float = 0
            for j in 0..<k where has[j] && (best == -1 || acc[j] > bestScore) {
                best = j
                bestScore = acc[j]
            }
            var slice = acc[0..<k]
            post.apply(&slice)
            for j in 0..<k { scores[r * k + j] = slice[j] }
            return labels[max(best, 0)]
        }
        // Binary.
        var single = false
        var writeAdditional = -1
        if baseValues.count == 2 {
            if has[1] {
                acc[1] = baseValues[1] + acc[0]
                acc[0] = -acc[1]
            } else {
                acc[1] += baseValues[1]
                acc[0] += baseValues[0]
            }
        } else if baseValues.count == 1 {
            acc[0] += baseValues[0]
            if !has[1] { single = true }
        } else if baseValues.isEmpty {
            writeAdditional = 3
            if !has[1] { single = true }
        }
        let positive = (!single && has[1]) ? acc[1] : (has[0] ? acc[0] : 0)
        let label: Int64
        if binaryCase {
            if weightsAllPositive {
                if positive > 0.5 { writeAdditional = 0; label = labels[1] } else { writeAdditional = 1; label = labels[0] }
            } else {
                if positive > 0 { writeAdditional = 2; label = labels[1] } else { writeAdditional = 3; label = labels[0] }
            }
        } else {
            label = positive > 0 ? 1 : 0
        }
        if single {
            let s = acc[0]
            let out: (Float, Float)?
            if post == .probit {
                out = nil
                scores[r * 2] = PostTransform.probit(s)
                scores[r * 2 + 1] = 0
            } else {
                switch writeAdditional {
                case 0, 1: out = (1 - s, s)
                case 2: out = post == .logistic ? (PostTransform.logistic(-s), PostTransform.logistic(s)) : (-s, s)
                case 3: out = post == .logistic ? (PostTransform.logistic(-s), PostTransform.logistic(s)) : (s, -s)
                default: out = (s, 0)
                }
            }
            if let out {
                scores[r * 2] = out.0
                scores[r * 2 + 1] = out.1
            }
        } else {
            var slice = acc[0..<2]
            post.apply(&slice)
            scores[r * 2] = slice[0]
            scores[r * 2 + 1] = slice[1]
        }
        width = 2
        return label
    }
}
