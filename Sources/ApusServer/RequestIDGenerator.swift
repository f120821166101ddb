import Synchronization

/// Request ids for requests that bring none: a per-process random prefix and a counter (unique,
/// cheap, no syscall per request). Thread-safe.
final class RequestIDGenerator: Sendable {
    private let prefix: String
    private let counter = Atomic<UInt64>(0)

    init() {
        var generator = SystemRandomNumberGenerator()
        prefix = String(generator.next() & 0xffff_ffff, radix: 16)
    }

    func next() -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return prefix + "-" + String(n, radix: 16)
    }
}
