/// Ring slots by a hash key, for `OutcomeTracker`: open addressing with linear probing in a
/// power-of-two table kept at most half full, and deletion by backward shift (no tombstones, so
/// probes stay short however long the server runs). A `Dictionary<Int, Int>` did the same job
/// with two hashed updates per logged prediction.
///
/// Invariants: each entry packs a slot (high 32 bits, stored + 1 so 0 means empty) and the low
/// 32 bits of its key; an entry sits between its key's home position and the first empty
/// position after it. Keys need not be unique: lookups confirm candidates with the caller's
/// predicate. Value type; not thread-safe (the tracker holds its lock).
struct SlotTable {
    private var entries: [UInt64]
    private let mask: Int
    /// Slots the table can hold (at most half of its positions).
    let capacity: Int

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        self.entries = Array(repeating: 0, count: size)
        self.mask = size - 1
        self.capacity = capacity
    }

    private static func pack(slot: Int, key: Int) -> UInt64 {
        UInt64(UInt32(truncatingIfNeeded: slot + 1)) << 32 | UInt64(UInt32(truncatingIfNeeded: key))
    }

    private func home(ofKeyBits bits: UInt64) -> Int { Int(truncatingIfNeeded: bits & 0xFFFF_FFFF) & mask }

    /// Adds `slot` under `key`. The caller keeps at most `capacity` slots in the table.
    mutating func insert(slot: Int, key: Int) {
        assert(slot >= 0 && slot < capacity, "slot out of range")
        let entry = Self.pack(slot: slot, key: key)
        var i = home(ofKeyBits: entry)
        while entries[i] != 0 { i = (i + 1) & mask }
        entries[i] = entry
    }

    /// The first slot filed under `key` that `matches` accepts.
    func first(key: Int, where matches: (Int) -> Bool) -> Int? {
        let keyBits = UInt64(UInt32(truncatingIfNeeded: key))
        var i = home(ofKeyBits: keyBits)
        while entries[i] != 0 {
            let entry = entries[i]
            if entry & 0xFFFF_FFFF == keyBits, matches(Int(entry >> 32) - 1) { return Int(entry >> 32) - 1 }
            i = (i + 1) & mask
        }
        return nil
    }

    /// Removes `slot`, filed under `key`; nothing if it is not there.
    mutating func remove(slot: Int, key: Int) {
        let entry = Self.pack(slot: slot, key: key)
        var i = home(ofKeyBits: entry)
        while entries[i] != entry {
            guard entries[i] != 0 else { return }
            i = (i + 1) & mask
        }
        // Backward shift: later entries of the run whose probe path passes the hole move into it.
        var j = i
        while true {
            j = (j + 1) & mask
            let next = entries[j]
            if next == 0 { break }
            if (j - home(ofKeyBits: next)) & mask >= (j - i) & mask {
                entries[i] = next
                i = j
            }
        }
        entries[i] = 0
    }
}
