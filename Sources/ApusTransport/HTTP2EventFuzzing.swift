import ApusCore

/// Drives one connection's `HTTP2ConnectionStateMachine` with events decoded from arbitrary bytes
/// (the `fuzz-h2-headers` libFuzzer target; also run by the unit tests), and checks what every
/// dispatched request must satisfy after HTTP/2's message rules (RFC 9113 8.2, 8.3): a token
/// method, an origin-form path, lower-case token field names, values without control bytes.
/// A broken rule traps, which is what the fuzzer reports. Stateless; safe from any thread.
/// SPI, not API: only the fuzz target and tests import it.
@_spi(Fuzzing)
public enum HTTP2EventFuzzing {
    /// Feeds the events `bytes` encodes: each starts with an opcode byte, then its operands
    /// (stream ids are one byte, made odd; field names and values one length byte, then bytes).
    /// Returns how many requests were dispatched (and checked).
    @discardableResult
    public static func run(_ bytes: [UInt8]) -> Int {
        var dispatched = 0
        var limits = TransportLimits()
        limits.maxHeaderCount = 16
        limits.maxHeaderListBytes = 512
        limits.maxBodyBytes = 64
        var machine = HTTP2ConnectionStateMachine(limits: limits, now: 0)
        var input = bytes[...]
        func byte() -> UInt8? { input.popFirst() }
        func id() -> Int32 { Int32(byte() ?? 0) | 1 }
        func chunk() -> [UInt8] {
            let length = Int(byte() ?? 0) % 48
            let taken = Array(input.prefix(length))
            input = input.dropFirst(length)
            return taken
        }
        var now: Int64 = 0
        while let op = byte() {
            now += 1_000_000
            switch op % 9 {
            case 0: machine.streamOpened(id(), now: now)
            case 1:
                let stream = id(), name = chunk(), value = chunk()
                name.withUnsafeBufferPointer { n in value.withUnsafeBufferPointer { v in machine.headerReceived(stream, name: n, value: v) } }
            case 2: dispatched += check(machine.headersComplete(id(), endStream: (byte() ?? 0) & 1 == 1, now: now), &machine)
            case 3:
                let stream = id()
                dispatched += check(chunk().withUnsafeBytes { machine.dataReceived(stream, $0) }, &machine)
            case 4: dispatched += check(machine.endStreamReceived(id()), &machine)
            case 5: _ = machine.streamClosed(id(), now: now)
            case 6: _ = machine.answerSubmitted(id())
            case 7: for action in machine.tick(now: now) { dispatched += check(action, &machine) }
            default: _ = machine.junkFrameReceived(kind: "fuzz")
            }
        }
        return dispatched
    }

    /// Lower-case token bytes (RFC 9110 5.1, RFC 9113 8.2.1).
    private static let tokenBytes = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz".utf8)

    /// 1 when `action` dispatched a request (checked), else 0.
    private static func check(_ action: HTTP2ConnectionStateMachine.Action?, _ machine: inout HTTP2ConnectionStateMachine) -> Int {
        guard case .dispatch(let stream)? = action else { return 0 }
        guard let request = machine.takeRequest(stream) else { preconditionFailure("a dispatched request could not be taken") }
        // The rules spelled out again, independently of the classifiers under test.
        precondition(!request.method.isEmpty && request.method.utf8.allSatisfy { tokenBytes.contains($0) || (0x41...0x5A).contains($0) }, "method")
        precondition(request.path.hasPrefix("/") || request.path == "*", "path")
        if let length = request.headers[lowercased: "content-length"] { precondition(Int(length) == request.body.count, "content-length") }
        for field in request.headers {
            precondition(!field.name.isEmpty && field.name.utf8.allSatisfy { tokenBytes.contains($0) }, "name")
            let value = Array(field.value.utf8)
            precondition(value.allSatisfy { ($0 >= 0x20 || $0 == 0x09) && $0 != 0x7F }, "value of \(field.name)")
            precondition(value.first.map { $0 != 0x20 && $0 != 0x09 } ?? true && value.last.map { $0 != 0x20 && $0 != 0x09 } ?? true, "ends of \(field.name)")
        }
        return 1
    }
}
