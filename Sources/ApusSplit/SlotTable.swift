/// Ring slots by a hash key, for `OutcomeTracker`'s ring of the last `capacity` predictions:
/// open addressing with linear probing in a power-of-two table of at least two positions per
/// slot, deletion by backward shift (no tombstones).
///
/// Entries are filed by the *sequence number* of the log that wrote the slot, not by the slot:
/// the ring writes slot `sequence % capacity`, so an entry is stale exactly when `capacity` or
/// more logs came after it, which is arithmetic on the entry alone. Logging therefore touches
/// one random position of the table (the new key's home): the overwritten prediction's entry is
/// not looked up and removed (that was a second cache miss per request, and the ring entry's
/// key a third); stale entries are reused by inserts that probe past them and removed by a sweep
/// that checks `sweepPerInsert` consecutive positions per insert (a stale entry lasts at most
/// `size / 8` inserts), so the table stays under 5/8 full.
///
/// Invariants: an entry packs the low 31 bits of its sequence (bits 33...63), an occupied bit
/// (bit 32) and the low 32 bits of its key; it sits between its key's home position and the
/// first empty position after it. Keys need not be unique: lookups confirm candidates with the
/// caller's predicate. Value type; not thread-safe (the tracker holds its lock).
struct SlotTable {
    private var entries: [UInt64]
    private let mask: Int
    /// Slots in the ring: an entry is live while fewer than this many logs followed it.
    let capacity: Int
    /// The sequence of the latest insert; ages are counted from it.
    private var current: UInt64 = 0
    private var sweepCursor = 0
    static let sweepPerInsert = 8

    init(capacity: Int) {
        assert(capacity > 0 && capacity < 1 << 30, "capacity out of range: ages are 31-bit")
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        self.entries = Array(repeating: 0, count: size)
        self.mask = size - 1
        self.capacity = capacity
    }

    private static let occupied: UInt64 = 1 << 32

    /// Positions in the table, and how many hold an entry (live or stale): for tests.
    var positions: Int { entries.count }
    var occupiedPositions: Int { entries.reduce(0) { $0 + ($1 == 0 ? 0 : 1) } }

    private func home(ofKeyBits bits: UInt64) -> Int { Int(truncatingIfNeeded: bits & 0xFFFF_FFFF) & mask }

    /// Logs since the entry's insert (0: the latest).
    private func age(_ entry: UInt64) -> UInt64 {
        (UInt64(truncatingIfNeeded: current) &- (entry >> 33)) & 0x7FFF_FFFF
    }

    private func isLive(_ entry: UInt64) -> Bool { entry != 0 && age(entry) < UInt64(capacity) }

    /// The ring slot a live entry names.
    private func slot(of entry: UInt64) -> Int { Int((current - age(entry)) % UInt64(capacity)) }

    /// Files the log numbered `sequence` (each insert's is the previous one's + 1; its ring slot is
    /// `sequence % capacity`) under `key`.
    mutating func insert(sequence: UInt64, key: Int) {
        current = sequence
        let keyBits = UInt64(UInt32(truncatingIfNeeded: key))
        let entry = (sequence & 0x7FFF_FFFF) << 33 | Self.occupied | keyBits
        var i = home(ofKeyBits: keyBits)
        // A stale entry on the way is as good as an empty position, and is cleaned up for free.
        while isLive(entries[i]) { i = (i + 1) & mask }
        entries[i] = entry
        sweep()
    }

    /// The most recent live slot filed under `key` that `matches` accepts.
    func latest(key: Int, where matches: (Int) -> Bool) -> Int? {
        let keyBits = UInt64(UInt32(truncatingIfNeeded: key))
        var i = home(ofKeyBits: keyBits)
        var best: (age: UInt64, slot: Int)?
        while entries[i] != 0 {
            let entry = entries[i]
            if entry & 0xFFFF_FFFF == keyBits, isLive(entry), age(entry) < best?.age ?? .max {
                let slot = slot(of: entry)
                if matches(slot) { best = (age(entry), slot) }
            }
            i = (i + 1) & mask
        }
        return best?.slot
    }

    /// Removes every live slot filed under `key` that `matches` accepts.
    mutating func removeAll(key: Int, where matches: (Int) -> Bool) {
        let keyBits = UInt64(UInt32(truncatingIfNeeded: key))
        var i = home(ofKeyBits: keyBits)
        while entries[i] != 0 {
            let entry = entries[i]
            if entry & 0xFFFF_FFFF == keyBits, isLive(entry), matches(slot(of: entry)) {
                // The shift may move a later entry of the run into `i`: look at `i` again.
                delete(at: i)
            } else {
                i = (i + 1) & mask
            }
        }
    }

    /// Removes stale entries among the next `sweepPerInsert` positions.
    private mutating func sweep() {
        for _ in 0..<Self.sweepPerInsert {
            let entry = entries[sweepCursor]
            if entry != 0, !isLive(entry) { delete(at: sweepCursor) }
            sweepCursor = (sweepCursor + 1) & mask
        }
    }

    /// Backward shift: later entries of the run whose probe path passes the hole move into it.
    private mutating func delete(at position: Int) {
        var i = position
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
