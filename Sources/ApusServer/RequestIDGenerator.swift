import Synchronization

/// Request ids for requests that bring none: a per-process random prefix and a counter, both in
/// base 32 (digits then `a`...`v`), joined by a dash: unique, cheap, no syscall per request.
/// Thread-safe.
///
/// Every id fits in 15 bytes (5 prefix digits, the dash, at most 9 counter digits until 32^9,
/// about 3.5e13, requests), so Swift keeps it inline in the `String` value: no allocation, and
/// no reference counting wherever the id is copied (the answer's closure, the outcome log, the
/// answer's header). The previous hex form outgrew that after 2^24 requests, five minutes of a
/// busy server, and from then on every request paid for a heap string.
final class RequestIDGenerator: Sendable {
    static let digits = Array("0123456789abcdefghijklmnopqrstuv".utf8)

    /// The prefix's digits and the dash, copied in front of every id.
    private let prefix: [UInt8]
    private let counter: Atomic<UInt64>

    /// `prefix`: 25 bits (random by default); `start`: the counter's last value, for tests.
    init(prefix value: UInt32? = nil, start: UInt64 = 0) {
        var generator = SystemRandomNumberGenerator()
        let random = value ?? UInt32(truncatingIfNeeded: generator.next())
        prefix = (0..<5).reversed().map { Self.digits[Int((random >> (5 * UInt32($0))) & 31)] } + [UInt8(ascii: "-")]
        counter = Atomic(start)
    }

    /// `<prefix>-<counter>`: the digits are written straight into the new string.
    func next() -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
        let digits = max(1, (64 - n.leadingZeroBitCount + 4) / 5)
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
                buffer[j] = Self.digits[Int(rest & 31)]
                rest >>= 5
            } while rest > 0
            return i + digits
        }
    }
}
