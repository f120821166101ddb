#if canImport(Glibc)
import Glibc
#endif

/// Strings for header values that repeat from message to message (user-agent, content-type,
/// accept...): the last few long values seen on a connection are kept and handed out again when
/// the same bytes arrive, so a repeated value costs a compare instead of an allocation (Swift
/// stores strings of up to 15 bytes inline; longer ones allocate). The last few short values are
/// kept apart (see `small`). Bounded: `capacity` entries of at most the header-list limit each,
/// and four short ones. Value type, owned by one connection.
struct HeaderStringCache {
    private var entries: [String] = []
    private var next = 0
    let capacity: Int

    init(capacity: Int = 16) {
        self.capacity = capacity
    }

    /// Field names clients send on most requests, and the ones Apus reads: handed out as
    /// literals (no decoding, no allocation). Lower case, as HTTP/2 carries them; grouped by
    /// length so a name is compared with at most a couple of candidates.
    private static let knownNames: [[(bytes: [UInt8], name: String)]] = {
        let names = ["accept", "accept-encoding", "apus-routing-key", "apus-timeout-ms", "content-encoding", "content-length",
                     "content-type", "inference-header-content-length", "te", "user-agent", "x-request-id"]
        var byLength = [[(bytes: [UInt8], name: String)]](repeating: [], count: (names.map(\.utf8.count).max() ?? 0) + 1)
        for name in names { byLength[name.utf8.count].append((Array(name.utf8), name)) }
        return byLength
    }()

    /// A field name: a literal for the known ones, else as `string(_:)`.
    mutating func name(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        Self.knownName(bytes) ?? string(bytes)
    }

    /// The literal for a known field name with exactly these bytes, or nil. Every known name is
    /// a valid lower-case token, so a match needs no validation of its bytes either.
    static func knownName(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard bytes.count < knownNames.count, let base = bytes.baseAddress else { return nil }
        for known in knownNames[bytes.count] where memcmp(known.bytes, base, bytes.count) == 0 { return known.name }
        return nil
    }

    /// Every known name (for tests).
    static var allKnownNames: [String] { knownNames.flatMap { $0.map(\.name) } }

    mutating func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        guard bytes.count > 15 else { return Self.find(bytes, in: &small, capacity: Self.smallCapacity, next: &nextSmall) }
        return Self.find(bytes, in: &entries, capacity: capacity, next: &next)
    }

    /// Short values (content-length, the authority, accept) are inline strings, so keeping them
    /// saves no allocation, but making one validates its UTF-8 (about 170 instructions), more
    /// than finding it again. Kept apart, and few: values that change per request (a JSON
    /// body's content-length) churn these, not the long values worth keeping.
    private var small: [String] = []
    private var nextSmall = 0
    private static let smallCapacity = 4

    /// The entry of `table` with exactly `bytes`, or a new string put in it (FIFO past `capacity`).
    private static func find(_ bytes: UnsafeBufferPointer<UInt8>, in table: inout [String], capacity: Int, next: inout Int) -> String {
        guard let base = bytes.baseAddress else { return "" }
        // Lengths first (stored in the string, no copy), bytes only for an equal length.
        for i in table.indices where table[i].utf8.count == bytes.count {
            let same = table[i].utf8.withContiguousStorageIfAvailable { stored in
                guard let storedBase = stored.baseAddress else { return false }
                return memcmp(storedBase, base, bytes.count) == 0
            }
            if same == true { return table[i] }
        }
        let made = String(decoding: bytes, as: UTF8.self)
        if table.count < capacity {
            table.append(made)
        } else {
            table[next] = made
            next = (next + 1) % capacity
        }
        return made
    }
}
