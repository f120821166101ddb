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

    /// The hot layout: 16 bytes per node. Branch: feature >= 0, children absolute. Leaf:
    /// feature == -1, `threshold` holds the weight when `singleWeight` (every leaf adds exactly one
    /// weight to the same output), else `trueChild`/`falseChild` hold start/count of its weights.
    struct PackedNode {
        var threshold: Float
        var feature: Int32
        var trueChild: Int32
        var falseChild: Int32
    }
    let packed: [PackedNode]
    /// The one mode every branch uses, if so (the walk is then specialised); nil when mixed.
    let uniformMode: Mode?
    /// Output index every leaf adds to when `singleWeight`.
    let singleTarget: Int?
    /// Same nodes, but a leaf points to itself on both sides (and keeps its weight in
    /// `threshold`), so a walk may take more steps than the path is long: used by the blocked,
    /// branch-free walk that moves several rows through a tree in lockstep for `depth[tree]` steps.
    let selfLooping: [PackedNode]
    /// Longest root-to-leaf path of each tree, in steps.
    let depths: [Int32]

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

        guard let index = TreeNodeIndex(treeIDs: a.nodeTreeIDs, nodeIDs: a.nodeIDs) else {
            throw RuntimeError("node \(name): duplicate (tree, node) ids")
        }

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
                let slot = index.slotOfNode[i]
                guard let t = index.position(slot: slot, tree: a.nodeTreeIDs[i], node: a.trueIDs[i]),
                      let f = index.position(slot: slot, tree: a.nodeTreeIDs[i], node: a.falseIDs[i]) else {
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

        // Leaf weights grouped by node (counting sort: one pass to count, one to place).
        var weightNode = [Int32](repeating: 0, count: m)
        var leafCount = [Int32](repeating: 0, count: n)
        var minTarget = Int64.max, maxTarget = Int64.min
        var allPositive = true
        var lastTree: Int64?
        var lastSlot: Int?
        for j in 0..<m {
            if a.leafTreeIDs[j] != lastTree {
                lastTree = a.leafTreeIDs[j]
                lastSlot = index.slot(ofTree: a.leafTreeIDs[j])
            }
            guard let slot = lastSlot, let node = index.position(slot: slot, tree: a.leafTreeIDs[j], node: a.leafNodeIDs[j]) else {
                throw RuntimeError("node \(name): weight for missing node \(a.leafNodeIDs[j]) of tree \(a.leafTreeIDs[j])")
            }
            guard a.leafTargets[j] >= 0, a.leafTargets[j] < 1 << 20 else {
                throw RuntimeError("node \(name): class/target id \(a.leafTargets[j]) out of range")
            }
            weightNode[j] = node
            leafCount[Int(node)] += 1
            minTarget = min(minTarget, a.leafTargets[j])
            maxTarget = max(maxTarget, a.leafTargets[j])
            if a.leafWeights[j] < 0 { allPositive = false }
        }
        var leafStart = [Int32](repeating: 0, count: n)
        var running: Int32 = 0
        for i in 0..<n {
            leafStart[i] = running
            running += leafCount[i]
        }
        var weightTarget = [Int32](repeating: 0, count: m)
        var weightValue = [Float](repeating: 0, count: m)
        var filled = [Int32](repeating: 0, count: n)
        for j in 0..<m {
            let node = Int(weightNode[j])
            let slot = Int(leafStart[node] + filled[node])
            filled[node] += 1
            weightTarget[slot] = Int32(a.leafTargets[j])
            weightValue[slot] = a.leafWeights[j]
        }
        // The distinct class/target ids: what matters is whether there are none, one or several.
        let singleTargetID: Int64? = m > 0 && minTarget == maxTarget ? minTarget : nil

        let outputCount: Int
        if let labels = a.classLabels {
            outputCount = labels.count
            guard outputCount > 0 else { throw RuntimeError("node \(name): no class labels") }
        } else {
            outputCount = a.targetCount
        }
        guard outputCount > 0, m == 0 || maxTarget < Int64(outputCount) else {
            throw RuntimeError("node \(name): a leaf names class/target \(maxTarget) but there are \(outputCount)")
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

        let branchModes = Set((0..<n).map { mode[$0] }.filter { $0 != Mode.leaf.rawValue })
        self.uniformMode = branchModes.count == 1 ? branchModes.first.flatMap(Mode.init(rawValue:)) : nil
        let single = aggregate != .min && aggregate != .max && singleTargetID != nil
            && (0..<n).allSatisfy { mode[$0] != Mode.leaf.rawValue || leafCount[$0] == 1 }
        self.singleTarget = single ? singleTargetID.map(Int.init) : nil
        var depths: [Int32] = []
        for root in roots {
            var deepest: Int32 = 0
            var stack: [(Int32, Int32)] = [(root, 0)]
            while let (node, d) = stack.popLast() {
                if mode[Int(node)] == Mode.leaf.rawValue {
                    deepest = max(deepest, d)
                } else {
                    stack.append((trueChild[Int(node)], d + 1))
                    stack.append((falseChild[Int(node)], d + 1))
                }
            }
            depths.append(deepest)
        }
        self.depths = depths
        self.selfLooping = (0..<n).map { i in
            mode[i] == Mode.leaf.rawValue
                ? PackedNode(threshold: single ? weightValue[Int(leafStart[i])] : 0, feature: 0, trueChild: Int32(i), falseChild: Int32(i))
                : PackedNode(threshold: threshold[i], feature: feature[i] | (missingTrue[i] ? Self.nanGoesTrue : 0), trueChild: trueChild[i], falseChild: falseChild[i])
        }
        self.packed = (0..<n).map { i in
            if mode[i] == Mode.leaf.rawValue {
                return single
                    ? PackedNode(threshold: weightValue[Int(leafStart[i])], feature: -1, trueChild: leafStart[i], falseChild: leafCount[i])
                    : PackedNode(threshold: 0, feature: -1, trueChild: leafStart[i], falseChild: leafCount[i])
            }
            return PackedNode(threshold: threshold[i], feature: feature[i], trueChild: trueChild[i], falseChild: falseChild[i])
        }
        self.baseValues = a.baseValues
        self.classLabels = a.classLabels
        self.binaryCase = a.classLabels?.count == 2 && singleTargetID != nil
        self.weightsAllPositive = allPositive
    }

    /// Comparison of one branch mode, specialised into the walk so the hot loop has no switch.
    protocol Comparison { static func goTrue(_ x: Float, _ t: Float) -> Bool }
    enum LEQ: Comparison { @inline(__always) static func goTrue(_ x: Float, _ t: Float) -> Bool { x <= t } }
    enum LT: Comparison { @inline(__always) static func goTrue(_ x: Float, _ t: Float) -> Bool { x < t } }
    enum GTE: Comparison { @inline(__always) static func goTrue(_ x: Float, _ t: Float) -> Bool { x >= t } }
    enum GT: Comparison { @inline(__always) static func goTrue(_ x: Float, _ t: Float) -> Bool { x > t } }

    /// The leaf reached by a row without NaN, all branches of mode `C`.
    @inline(__always)
    static func walk<C: Comparison>(_: C.Type, _ nodes: UnsafePointer<PackedNode>, _ root: Int32, _ row: UnsafePointer<Float>) -> Int {
        var node = nodes[Int(root)]
        var i = Int(root)
        while node.feature >= 0 {
            i = Int(C.goTrue(row[Int(node.feature)], node.threshold) ? node.trueChild : node.falseChild)
            node = nodes[i]
        }
        return i
    }

    /// The general walk: any mix of modes and NaN with missing-value tracking.
    @inline(__always)
    func walkGeneral(_ nodes: UnsafePointer<PackedNode>, _ root: Int32, _ row: UnsafePointer<Float>) -> Int {
        var i = Int(root)
        while true {
            let node = nodes[i]
            if node.feature < 0 { return i }
            let x = row[Int(node.feature)]
            let t = node.threshold
            let goTrue: Bool
            if x.isNaN {
                goTrue = mode[i] == Mode.neq.rawValue || missingTrue[i]
            } else {
                switch mode[i] {
                case 0: goTrue = x <= t
                case 1: goTrue = x < t
                case 2: goTrue = x >= t
                case 3: goTrue = x > t
                case 4: goTrue = x == t
                default: goTrue = x != t
                }
            }
            i = Int(goTrue ? node.trueChild : node.falseChild)
        }
    }

    static let block = 8
    /// In `selfLooping`, bit 30 of `feature` says a NaN feature value takes the true branch.
    static let nanGoesTrue: Int32 = 1 << 30
    static let featureMask: Int32 = (1 << 30) - 1

    /// Sums the single leaf weight of every tree for every row, tree by tree so one tree's
    /// nodes stay in cache while all rows pass through it. Rows without NaN go eight at a time
    /// through the self-looping layout with branch-free steps: independent loads overlap and
    /// there is no branch to mispredict. Rows with NaN take the general walk.
    /// Whether all trees fit in L2 together: then each block of rows runs through every tree
    /// before the next block (rows and sums stay in registers); otherwise tree by tree, so one
    /// tree stays in cache while all rows pass.
    var treesFitInCache: Bool { selfLooping.count * MemoryLayout<PackedNode>.stride <= 256 * 1024 }

    func accumulateSingleRowsOuter<C: Comparison>(_ c: C.Type, _ data: UnsafePointer<Float>, rows: Int, width: Int, into acc: UnsafeMutablePointer<Float>) {
        selfLooping.withUnsafeBufferPointer { loopBuffer in
            guard let looping = loopBuffer.baseAddress else { return }
            roots.withUnsafeBufferPointer { rootBuffer in
                depths.withUnsafeBufferPointer { depthBuffer in
                    var start = 0
                    while start + 8 <= rows {
                        let block = EightRows(data + start * width, stride: width)
                        var sums = SIMD8<Float>()
                        for t in 0..<rootBuffer.count {
                            var walks = EightWalks(all: Int(rootBuffer[t]))
                            for _ in 0..<Int(depthBuffer[t]) { walks.step(C.self, looping, block) }
                            sums += walks.leafWeights(looping)
                        }
                        for k in 0..<8 { acc[start + k] += sums[k] }
                        start += 8
                    }
                    while start < rows {
                        acc[start] += Self.sumOverTrees(C.self, looping, rootBuffer, depthBuffer, data + start * width)
                        start += 1
                    }
                }
            }
        }
    }

    func accumulateSingle<C: Comparison>(_ c: C.Type, _ data: UnsafePointer<Float>, rows: Int, width: Int, into acc: UnsafeMutablePointer<Float>) {
        selfLooping.withUnsafeBufferPointer { loopBuffer in
            guard let looping = loopBuffer.baseAddress else { return }
            for (tree, root) in roots.enumerated() {
                let depth = Int(depths[tree])
                let r = Int(root)
                var start = 0
                // Eight independent walks in registers: their loads overlap, nothing to mispredict.
                while start + 8 <= rows {
                    let block = EightRows(data + start * width, stride: width)
                    var walks = EightWalks(all: r)
                    for _ in 0..<depth { walks.step(C.self, looping, block) }
                    let weights = walks.leafWeights(looping)
                    for k in 0..<8 { acc[start + k] += weights[k] }
                    start += 8
                }
            }
            // The rows left over (all of them at batch 1) walk eight trees at once instead.
            roots.withUnsafeBufferPointer { rootBuffer in
                depths.withUnsafeBufferPointer { depthBuffer in
                    for r in (rows - rows % 8)..<rows {
                        acc[r] += Self.sumOverTrees(C.self, looping, rootBuffer, depthBuffer, data + r * width)
                    }
                }
            }
        }
    }

    /// One row through every tree, eight trees in lockstep so their loads overlap (a single walk
    /// would wait on each load in turn). Adds the leaf weights in tree order, like a plain loop.
    @inline(__always)
    static func sumOverTrees<C: Comparison>(_ c: C.Type, _ looping: UnsafePointer<PackedNode>, _ roots: UnsafeBufferPointer<Int32>, _ depths: UnsafeBufferPointer<Int32>, _ p: UnsafePointer<Float>) -> Float {
        var sum: Float = 0
        var t = 0
        while t + 8 <= roots.count {
            var walks = EightWalks(roots[t], roots[t + 1], roots[t + 2], roots[t + 3], roots[t + 4], roots[t + 5], roots[t + 6], roots[t + 7])
            // A walk that reached its leaf stays there, so the deepest of the eight sets the steps.
            var depth: Int32 = 0
            for d in t..<(t + 8) { depth = Swift.max(depth, depths[d]) }
            let row = EightRows(p, stride: 0)
            for _ in 0..<Int(depth) { walks.step(C.self, looping, row) }
            let weights = walks.leafWeights(looping)
            for k in 0..<8 { sum += weights[k] }
            t += 8
        }
        while t < roots.count {
            var i = Int(roots[t])
            for _ in 0..<Int(depths[t]) { step(C.self, looping, &i, p) }
            sum += looping[i].threshold
            t += 1
        }
        return sum
    }

    /// Eight rows of a batch, `stride` floats apart (0: the same row eight times).
    struct EightRows {
        let p0, p1, p2, p3, p4, p5, p6, p7: UnsafePointer<Float>

        @inline(__always)
        init(_ first: UnsafePointer<Float>, stride: Int) {
            p0 = first; p1 = first + stride; p2 = first + 2 * stride; p3 = first + 3 * stride
            p4 = first + 4 * stride; p5 = first + 5 * stride; p6 = first + 6 * stride; p7 = first + 7 * stride
        }
    }

    /// Eight independent walks moved one step at a time in lockstep: their loads overlap and
    /// there is nothing to mispredict. Lives in registers.
    struct EightWalks {
        var i0, i1, i2, i3, i4, i5, i6, i7: Int

        @inline(__always)
        init(all root: Int) {
            (i0, i1, i2, i3, i4, i5, i6, i7) = (root, root, root, root, root, root, root, root)
        }

        @inline(__always)
        init(_ r0: Int32, _ r1: Int32, _ r2: Int32, _ r3: Int32, _ r4: Int32, _ r5: Int32, _ r6: Int32, _ r7: Int32) {
            (i0, i1, i2, i3, i4, i5, i6, i7) = (Int(r0), Int(r1), Int(r2), Int(r3), Int(r4), Int(r5), Int(r6), Int(r7))
        }

        @inline(__always)
        mutating func step<C: Comparison>(_ c: C.Type, _ looping: UnsafePointer<PackedNode>, _ rows: EightRows) {
            TreeEnsemble.step(C.self, looping, &i0, rows.p0)
            TreeEnsemble.step(C.self, looping, &i1, rows.p1)
            TreeEnsemble.step(C.self, looping, &i2, rows.p2)
            TreeEnsemble.step(C.self, looping, &i3, rows.p3)
            TreeEnsemble.step(C.self, looping, &i4, rows.p4)
            TreeEnsemble.step(C.self, looping, &i5, rows.p5)
            TreeEnsemble.step(C.self, looping, &i6, rows.p6)
            TreeEnsemble.step(C.self, looping, &i7, rows.p7)
        }

        /// The weight each walk's leaf holds (self-looping layout, single-weight leaves).
        @inline(__always)
        func leafWeights(_ looping: UnsafePointer<PackedNode>) -> SIMD8<Float> {
            SIMD8(looping[i0].threshold, looping[i1].threshold, looping[i2].threshold, looping[i3].threshold,
                  looping[i4].threshold, looping[i5].threshold, looping[i6].threshold, looping[i7].threshold)
        }
    }

    /// One branch-free step of a walk in the self-looping layout. NaN fails every comparison,
    /// then takes the side its node tracks.
    @inline(__always)
    static func step<C: Comparison>(_: C.Type, _ looping: UnsafePointer<PackedNode>, _ i: inout Int, _ row: UnsafePointer<Float>) {
        let node = looping[i]
        let x = row[Int(node.feature & featureMask)]
        // Bits, not `||` or `?:`: the compiler turns those into branches, and a branch is
        // mispredicted on about every other step on real rows. The next index is loaded from the
        // child pair at the offset the comparison picks, so the eight walks of a block only wait
        // on their loads, which overlap.
        let below = UInt32(unsafeBitCast(C.goTrue(x, node.threshold), to: UInt8.self))
        let nan = UInt32(unsafeBitCast(x.isNaN, to: UInt8.self)) & (UInt32(bitPattern: node.feature) >> 30)
        let side = Int((below | nan) ^ 1)
        i = Int(UnsafeRawPointer(looping + i).load(fromByteOffset: Self.trueChildOffset &+ side &* 4, as: Int32.self))
    }

    /// Byte offset of `trueChild` in `PackedNode`; `falseChild` follows it. A literal, so the hot
    /// loop has no lazy-initialisation check; `TreeEnsembleLayoutTests` pins it to the layout.
    static let trueChildOffset = 8

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, name)
        let rows = x.shape.count == 1 ? 1 : x.rows
        let width = x.shape.count == 1 ? x.count : x.rowWidth
        guard width >= featureCount else {
            throw RuntimeError("node \(name): input has \(width) features, the trees use \(featureCount)")
        }
        let values = try x.floats()
        let k = outputCount
        var scores = [Float](repeating: 0, count: rows * max(k, 2))
        var labels = [Int64](repeating: 0, count: rows)
        var outWidth = k
        var acc = [Float](repeating: 0, count: rows * k)
        var has = [Bool](repeating: false, count: rows * k)
        values.withUnsafeBufferPointer { data in
            guard let base = data.baseAddress else { return }
            packed.withUnsafeBufferPointer { nodeBuffer in
                guard let nodes = nodeBuffer.baseAddress else { return }
                if let target = singleTarget {
                    // Fast path: one weight per leaf, one output; accumulate per row.
                    var column = [Float](repeating: 0, count: rows)
                    column.withUnsafeMutableBufferPointer { out in
                        guard let out = out.baseAddress else { return }
                        switch uniformMode {
                        case .leq? where treesFitInCache: accumulateSingleRowsOuter(LEQ.self, base, rows: rows, width: width, into: out)
                        case .lt? where treesFitInCache: accumulateSingleRowsOuter(LT.self, base, rows: rows, width: width, into: out)
                        case .gte? where treesFitInCache: accumulateSingleRowsOuter(GTE.self, base, rows: rows, width: width, into: out)
                        case .gt? where treesFitInCache: accumulateSingleRowsOuter(GT.self, base, rows: rows, width: width, into: out)
                        case .leq?: accumulateSingle(LEQ.self, base, rows: rows, width: width, into: out)
                        case .lt?: accumulateSingle(LT.self, base, rows: rows, width: width, into: out)
                        case .gte?: accumulateSingle(GTE.self, base, rows: rows, width: width, into: out)
                        case .gt?: accumulateSingle(GT.self, base, rows: rows, width: width, into: out)
                        default:
                            for root in roots {
                                for r in 0..<rows { out[r] += nodes[walkGeneral(nodes, root, base + r * width)].threshold }
                            }
                        }
                    }
                    for r in 0..<rows {
                        acc[r * k + target] = column[r]
                        has[r * k + target] = !roots.isEmpty
                    }
                } else {
                    for r in 0..<rows {
                        let row = base + r * width
                        for root in roots {
                            let node = walkGeneral(nodes, root, row)
                            let start = Int(leafStart[node])
                            for j in start..<(start + Int(leafCount[node])) {
                                let slot = r * k + Int(weightTarget[j])
                                let w = weightValue[j]
                                switch aggregate {
                                case .sum, .average: acc[slot] += w
                                case .min: acc[slot] = has[slot] ? Swift.min(acc[slot], w) : w
                                case .max: acc[slot] = has[slot] ? Swift.max(acc[slot], w) : w
                                }
                                has[slot] = true
                            }
                        }
                    }
                }
            }
        }
        var rowScores = [Float](repeating: 0, count: k)
        var rowHas = [Bool](repeating: false, count: k)
        for r in 0..<rows {
            for t in 0..<k {
                rowScores[t] = acc[r * k + t]
                rowHas[t] = has[r * k + t]
            }
            if classLabels != nil {
                labels[r] = finalizeClassifier(&rowScores, &rowHas, into: &scores, row: r, width: &outWidth)
            } else {
                finalizeRegressor(&rowScores, into: &scores, row: r)
            }
        }
        if classLabels != nil {
            return [Tensor(unchecked: [rows], .int64(labels)), Tensor(unchecked: [rows, outWidth], .float32(Array(scores.prefix(rows * outWidth))))]
        }
        return [Tensor(unchecked: [rows, k], .float32(Array(scores.prefix(rows * k))))]
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
        if k == 1 {
            if post == .probit { acc[0] = PostTransform.probit(acc[0]) }
        } else {
            acc.withUnsafeMutableBufferPointer { post.apply(UnsafeMutableBufferPointer(rebasing: $0[0..<k])) }
        }
        for t in 0..<k { scores[r * k + t] = acc[t] }
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
            acc.withUnsafeMutableBufferPointer { post.apply(UnsafeMutableBufferPointer(rebasing: $0[0..<k])) }
            for j in 0..<k { scores[r * k + j] = acc[j] }
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
            acc.withUnsafeMutableBufferPointer { post.apply(UnsafeMutableBufferPointer(rebasing: $0[0..<2])) }
            scores[r * 2] = acc[0]
            scores[r * 2 + 1] = acc[1]
        }
        width = 2
        return label
    }
}
