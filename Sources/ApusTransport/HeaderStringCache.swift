#if canImport(Glibc)
import Glibc
#endif

/// Strings for header values that repeat from message to message (user-agent, content-type,
/// accept...): the last few long values seen on a connection are kept and handed out again when
/// the same bytes arrive, so a repeated value costs a compare instead of an allocation (Swift
/// stores strings of up to 15 bytes inline; longer ones allocate). Bounded: `capacity` entries
/// of at most the header-list limit each. Value type, owned by one connection.
struct HeaderStringCache {
    private var entries: [String] = []
    private var next = 0
    let capacity: Int

    init(capacity: Int = 16) {
        self.capacity = capacity
    }

    mutating func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        guard bytes.count > 15, let base = bytes.baseAddress else { return String(decoding: bytes, as: UTF8.self) }
        // Lengths first (stored in the string, no copy), bytes only for an equal length.
        for i in entries.indices where entries[i].utf8.count == bytes.count {
            let same = entries[i].utf8.withContiguousStorageIfAvailable { stored in
                guard let storedBase = stored.baseAddress else { return false }
                return memcmp(storedBase, base, bytes.count) == 0
            }
            if same == true { return entries[i] }
        }
        let made = String(decoding: bytes, as: UTF8.self)
        if entries.count < capacity {
            entries.append(made)
        } else {
            entries[next] = made
            next = (next + 1) % capacity
        }
        return made
    }
}
