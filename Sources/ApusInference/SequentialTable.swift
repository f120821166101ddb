/// Values keyed by ids handed out in increasing order (0, 1, 2, ...) that mostly leave in order:
/// a window of slots from the oldest id still held to the newest, instead of a dictionary (two
/// hashed operations per request on the batcher's hot path).
///
/// Invariants: `slots[start + (id - base)]` holds the value of `id`; `slots[start]` is the oldest
/// value still held (or the window is empty); freed slots ahead of it are reclaimed as the front
/// advances. Memory is bounded by the span between the oldest and newest ids held. Value type;
/// not thread-safe (the batcher holds its lock).
struct SequentialTable<Value> {
    private var slots: [Value?] = []
    private var start = 0
    /// The id of `slots[start]`.
    private var base: UInt64 = 0
    private(set) var count = 0

    /// The id the next `append` takes.
    var nextID: UInt64 { base + UInt64(slots.count - start) }

    /// Stores `value` under `nextID`.
    mutating func append(_ value: Value) {
        slots.append(value)
        count += 1
    }

    /// Takes out the value of `id` (nil if it was never added or already taken).
    mutating func remove(_ id: UInt64) -> Value? {
        guard id >= base, id < nextID else { return nil }
        let index = start + Int(id - base)
        guard let value = slots[index] else { return nil }
        slots[index] = nil
        count -= 1
        while start < slots.count, slots[start] == nil {
            start += 1
            base += 1
        }
        // Reclaim the freed front once it is most of the array (amortized O(1) per value).
        if start == slots.count {
            slots.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 64, start * 2 > slots.count {
            slots.removeFirst(start)
            start = 0
        }
        return value
    }
}
