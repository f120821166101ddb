import ApusCore
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The access log: one JSON object per answered request, one per line (JSON Lines), the form log
/// pipelines (Loki, Elasticsearch, Cloud Logging) parse without a custom pattern.
///
/// Lines collect in a buffer and go out in one write when it passes `flushBytes`, and at least
/// every flush interval (`startFlushing`): a write per request would cost a system call each,
/// which under load is a large share of a request's CPU. Lines leave in the order they were
/// recorded, and a line is never split across writes. Thread-safe: requests finish on any thread.
public final class AccessLog: Sendable {
    /// One answered request.
    public struct Entry: Sendable, Equatable {
        /// Wall-clock time the answer was handed to the transport, in nanoseconds since 1970.
        public var unixNanos: Int64
        public var peer: String
        public var method: String
        /// The request target: the path, and `?query` when there is one.
        public var target: String
        /// `HTTP/2`, `HTTP/1.1` or `HTTP/1.0`.
        public var proto: String
        public var status: Int
        /// Body bytes of the answer as sent (after compression; 0 for HEAD).
        public var bytes: Int
        /// From the read that completed the request to its answer.
        public var durationMicros: UInt64
        /// The answer's `x-request-id`, `apus-model-version` and `apus-variant`, when it has them.
        public var requestID: String?
        public var modelVersion: String?
        public var variant: String?
        /// The request's `x-forwarded-for` (the client behind a proxy, which `peer` then is) and
        /// W3C `traceparent` (to find the request in a distributed trace), when it has them.
        public var forwardedFor: String? = nil
        public var traceparent: String? = nil
    }

    public typealias Output = @Sendable ([UInt8]) -> Void

    /// The pending lines, and the formatted second of the last line written (lines of the same
    /// second reuse it: formatting a date cost more than the rest of a line).
    struct State {
        var pending: [UInt8] = []
        var second = Int64.min
        var secondText: [UInt8] = []
    }

    private let output: Output
    private let flushBytes: Int
    private let state: Locked<State>

    /// `output` receives whole lines, in order, never two calls at once.
    public init(flushBytes: Int = 32 * 1024, output: @escaping Output) {
        self.output = output
        self.flushBytes = max(1, flushBytes)
        var state = State()
        state.pending.reserveCapacity(min(self.flushBytes, 1 << 20) + 1024)
        self.state = Locked(state)
    }

    /// An access log written to a file descriptor (standard output by default).
    public convenience init(fileDescriptor: Int32 = 1, flushBytes: Int = 32 * 1024) {
        self.init(flushBytes: flushBytes) { bytes in Self.writeAll(bytes, to: fileDescriptor) }
    }

    public func record(_ entry: Entry) {
        state.withLock { state in
            // Written straight into the buffer, byte by byte: building each line as a String
            // first (concatenation, interpolation) cost as much as serving the request.
            Self.append(entry, to: &state)
            guard state.pending.count >= flushBytes else { return }
            // Written under the lock: lines stay in order and whole.
            output(state.pending)
            state.pending.removeAll(keepingCapacity: true)
        }
    }

    /// Writes what is buffered now.
    public func flush() {
        state.withLock { state in
            guard !state.pending.isEmpty else { return }
            output(state.pending)
            state.pending.removeAll(keepingCapacity: true)
        }
    }

    /// Flushes every `interval` until the returned timer is cancelled (cancel, then `flush()`
    /// once more at shutdown).
    public func startFlushing(every interval: DispatchTimeInterval) -> any DispatchSourceTimer {
        let timer = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
        timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(50))
        timer.setEventHandler { [weak self] in self?.flush() }
        timer.resume()
        return timer
    }

    /// The entry as one JSON object and a newline. Absent optional fields are left out.
    static func line(_ entry: Entry) -> String {
        var state = State()
        append(entry, to: &state)
        return String(decoding: state.pending, as: UTF8.self)
    }

    /// Room for a line's fixed text: its field names and punctuation (159 bytes with every
    /// optional field), the time (at most 31, for a year of 12 digits) and three numbers (20
    /// digits each), with a margin.
    private static let fixedBytes = 512

    static func append(_ entry: Entry, to state: inout State) {
        if second(of: entry.unixNanos) != state.second { cacheSecond(of: entry.unixNanos, in: &state) }
        // Summed one by one: an array of the texts allocated and freed an array per line.
        var room = fixedBytes + JSONString.maxQuotedCount(entry.peer) + JSONString.maxQuotedCount(entry.method)
        room += JSONString.maxQuotedCount(entry.target) + JSONString.maxQuotedCount(entry.proto)
        room += JSONString.maxQuotedCount(entry.requestID ?? "") + JSONString.maxQuotedCount(entry.modelVersion ?? "")
        room += JSONString.maxQuotedCount(entry.variant ?? "") + JSONString.maxQuotedCount(entry.forwardedFor ?? "")
        room += JSONString.maxQuotedCount(entry.traceparent ?? "")
        let before = state.pending.count
        // Room first, then one pass through a pointer: appending piece by piece to the array
        // (each a uniqueness and capacity check) cost three times as much.
        state.pending.append(contentsOf: repeatElement(0, count: room))
        let written = state.pending.withUnsafeMutableBufferPointer { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            var out = Writer(at: base + before)
            out.literal("{\"time\":\"")
            state.secondText.withUnsafeBufferPointer { out.bytes($0) }
            out.millis(entry.unixNanos)
            out.literal("Z\",\"peer\":")
            out.quoted(entry.peer)
            out.literal(",\"method\":")
            out.quoted(entry.method)
            out.literal(",\"path\":")
            out.quoted(entry.target)
            out.literal(",\"protocol\":")
            out.quoted(entry.proto)
            out.literal(",\"status\":")
            out.decimal(UInt64(clamping: entry.status))
            out.literal(",\"bytes\":")
            out.decimal(UInt64(clamping: entry.bytes))
            out.literal(",\"duration_us\":")
            out.decimal(entry.durationMicros)
            out.optional(",\"request_id\":", entry.requestID)
            out.optional(",\"model_version\":", entry.modelVersion)
            out.optional(",\"variant\":", entry.variant)
            out.optional(",\"forwarded_for\":", entry.forwardedFor)
            out.optional(",\"traceparent\":", entry.traceparent)
            out.literal("}\n")
            return out.count
        }
        state.pending.removeLast(room - written)
    }

    /// RFC 3339 in UTC with milliseconds: `2026-12-02T03:20:00.123Z`.
    static func timestamp(unixNanos: Int64) -> String {
        var state = State()
        cacheSecond(of: unixNanos, in: &state)
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buffer in
            guard let base = buffer.baseAddress else { return "" }
            var out = Writer(at: base)
            state.secondText.withUnsafeBufferPointer { out.bytes($0) }
            out.millis(unixNanos)
            out.literal("Z")
            return String(decoding: UnsafeBufferPointer(start: base, count: out.count), as: UTF8.self)
        }
    }

    /// The second `unixNanos` falls in (floored, also before 1970).
    private static func second(of unixNanos: Int64) -> Int64 {
        unixNanos >= 0 ? unixNanos / 1_000_000_000 : (unixNanos - 999_999_999) / 1_000_000_000
    }

    /// Formats the second `unixNanos` falls in into `state`.
    private static func cacheSecond(of unixNanos: Int64, in state: inout State) {
        state.second = second(of: unixNanos)
        state.secondText = Array(secondText(state.second).utf8)
    }

    /// Writes through a pointer into room the caller reserved.
    private struct Writer {
        let start: UnsafeMutablePointer<UInt8>
        var count = 0

        init(at start: UnsafeMutablePointer<UInt8>) { self.start = start }

        mutating func literal(_ text: StaticString) {
            text.withUTF8Buffer { bytes($0) }
        }

        mutating func bytes(_ bytes: UnsafeBufferPointer<UInt8>) {
            guard let base = bytes.baseAddress else { return }
            (start + count).update(from: base, count: bytes.count)
            count += bytes.count
        }

        mutating func quoted(_ text: String) {
            count += JSONString.write(text, quotedTo: start + count)
        }

        /// `prefix` and `text` quoted, when there is a text; nothing otherwise.
        mutating func optional(_ prefix: StaticString, _ text: String?) {
            guard let text else { return }
            literal(prefix)
            quoted(text)
        }

        mutating func decimal(_ value: UInt64) {
            var digits = 1, scale: UInt64 = 1
            while value / scale >= 10 { scale *= 10; digits += 1 }
            var rest = value
            for _ in 0..<digits {
                start[count] = UInt8(ascii: "0") + UInt8(rest / scale)
                rest %= scale
                scale /= 10
                count += 1
            }
        }

        /// `.mmm`: the milliseconds within the second.
        mutating func millis(_ unixNanos: Int64) {
            let within = (unixNanos % 1_000_000_000 + 1_000_000_000) % 1_000_000_000 / 1_000_000
            start[count] = UInt8(ascii: ".")
            start[count + 1] = UInt8(ascii: "0") + UInt8(within / 100)
            start[count + 2] = UInt8(ascii: "0") + UInt8(within / 10 % 10)
            start[count + 3] = UInt8(ascii: "0") + UInt8(within % 10)
            count += 4
        }
    }

    /// `2026-12-02T03:20:00`: the second, in UTC.
    private static func secondText(_ seconds: Int64) -> String {
        var time = time_t(seconds)
        var parts = tm()
        guard gmtime_r(&time, &parts) != nil else { return "\(seconds)" }
        func pad(_ n: Int32, _ width: Int) -> String {
            let digits = String(n)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return pad(parts.tm_year + 1900, 4) + "-" + pad(parts.tm_mon + 1, 2) + "-" + pad(parts.tm_mday, 2) + "T"
            + pad(parts.tm_hour, 2) + ":" + pad(parts.tm_min, 2) + ":" + pad(parts.tm_sec, 2)
    }

    /// The wall clock now, in nanoseconds since 1970.
    public static func unixNanosNow() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// Writes all of `bytes`, retrying short writes and interrupted calls. A failed write (a
    /// closed pipe) drops the rest: the access log must never stop the server.
    static func writeAll(_ bytes: [UInt8], to fd: Int32) {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var done = 0
            while done < raw.count {
                let n = write(fd, base + done, raw.count - done)
                if n > 0 {
                    done += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }
}
