/// Maps (tree id, node id) to a node's position in the `nodes_*` attribute arrays, built once at
/// load. Exporters number each tree's nodes 0, 1, 2, ... so the index is one dense table per tree
/// (an array lookup, no hashing: hashing 67k keys three times was a third of loading a
/// 100-tree forest); a tree with sparse ids falls back to a dictionary. Immutable once built.
struct TreeNodeIndex {
    private struct Key: Hashable { var tree: Int64; var node: Int64 }
    /// Tree id -> slot in `tables`.
    private var treeSlots: [Int64: Int] = [:]
    /// Per tree: node id -> position, -1 where no node has that id.
    private var tables: [[Int32]] = []
    /// Trees whose ids are too sparse for a table.
    private var sparse: [Key: Int32] = [:]
    /// Slot of each node's tree, by node position.
    private(set) var slotOfNode: [Int] = []

    /// Fails (returns nil) on a duplicate (tree, node) pair.
    init?(treeIDs: [Int64], nodeIDs: [Int64]) {
        let n = nodeIDs.count
        var counts: [Int] = []
        var minID: [Int64] = []
        var maxID: [Int64] = []
        var slots: [Int] = []
        slots.reserveCapacity(n)
        var lastTree: Int64?
        var lastSlot = 0
        for i in 0..<n {
            let tree = treeIDs[i]
            if tree != lastTree {
                if let s = treeSlots[tree] {
                    lastSlot = s
                } else {
                    lastSlot = counts.count
                    treeSlots[tree] = lastSlot
                    counts.append(0)
                    minID.append(.max)
                    maxID.append(.min)
                }
                lastTree = tree
            }
            counts[lastSlot] += 1
            minID[lastSlot] = Swift.min(minID[lastSlot], nodeIDs[i])
            maxID[lastSlot] = Swift.max(maxID[lastSlot], nodeIDs[i])
            slots.append(lastSlot)
        }
        tables = (0..<counts.count).map { s in
            // Dense enough for a table: ids not negative and not much larger than the node count.
            let dense = minID[s] >= 0 && maxID[s] < Int64(4 * counts[s] + 64)
            return dense ? [Int32](repeating: -1, count: Int(maxID[s] + 1)) : []
        }
        for i in 0..<n {
            let s = slots[i]
            let id = nodeIDs[i]
            if !tables[s].isEmpty {
                guard tables[s][Int(id)] == -1 else { return nil }
                tables[s][Int(id)] = Int32(i)
            } else {
                guard sparse.updateValue(Int32(i), forKey: Key(tree: treeIDs[i], node: id)) == nil else { return nil }
            }
        }
        slotOfNode = slots
    }

    /// The slot of tree `tree`, nil if no node belongs to it.
    func slot(ofTree tree: Int64) -> Int? { treeSlots[tree] }

    /// The position of node `node` of the tree in slot `slot` (whose id is `tree`), nil if none.
    func position(slot: Int, tree: Int64, node: Int64) -> Int32? {
        guard !tables[slot].isEmpty else { return sparse[Key(tree: tree, node: node)] }
        guard node >= 0, node < Int64(tables[slot].count) else { return nil }
        let p = tables[slot][Int(node)]
        return p >= 0 ? p : nil
    }
}
