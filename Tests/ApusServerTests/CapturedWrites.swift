import ApusCore

/// What a log wrote, as the calls to its output (`AccessLog.Output`, `JSONLogHandler.Output`),
/// each decoded as text. Thread-safe.
final class CapturedWrites: Sendable {
    private let calls = Locked<[String]>([])

    var output: @Sendable ([UInt8]) -> Void { { bytes in self.calls.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) } } }

    var all: [String] { calls.withLock { $0 } }
}
