import Synchronization

/// Request ids for requests that bring none: a per-process random prefix and a counter, both in
/// hex (unique, cheap, no syscall per request). Thread-safe.
final class RequestIDGenerator: Sendable {
    /// The prefix's hex digits and the dash, copied in front of every id.
    private let prefix: [UInt8]
    private let counter = Atomic<UInt64>(0)

    init(prefix value: UInt32? = nil) {
        var generator = SystemRandomNumberGenerator()
        let random = value ?? UInt32(truncatingIfNeeded: generator.next())
        prefix = Array(String(random, radix: 16).utf8) + [UInt8(ascii: "-")]
    }

    /// `<prefix>-<counter>`: the digits are written straight into the new string (concatenating
    /// three strings cost two intermediate strings per request).
    func next() -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
        let digits = max(1, (64 - n.leadingZeroBitCount + 3) / 4)
        return String(unsafeUninitializedCapacity: prefix.count + digits) { buffer in
            var i = 0
            for byte in prefix {
                buffer[i] = byte
                i += 1
            }
            var rest = n
            var j = i + digits
            repeat {
                j -= 1
                let nibble = UInt8(truncatingIfNeeded: rest & 0xf)
                buffer[j] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
                rest >>= 4
            } while rest > 0
            return i + digits
        }
    }
}
