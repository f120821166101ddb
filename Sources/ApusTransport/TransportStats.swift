import Synchronization

/// Transport counters shared by every connection of a server, read by the metrics endpoint and
/// by tests. Thread-safe (atomics); values only grow except the gauges.
public final class TransportStats: Sendable {
    /// A monotonically increasing, thread-safe counter.
    public final class Counter: Sendable {
        private let value = Atomic<Int>(0)
        public init() {}
        public func add(_ n: Int) { value.add(n, ordering: .relaxed) }
        public var current: Int { value.load(ordering: .relaxed) }
    }

    public let connectionsAccepted = Counter()
    public let http2Connections = Counter()
    public let http1Connections = Counter()
    public let junkFrames = Counter()
    /// GOAWAY ENHANCE_YOUR_CALM sent.
    public let calmGoAways = Counter()
    /// Requests answered by the transport itself because a limit or timer tripped (408/413/431).
    public let limitRejections = Counter()
    /// HTTP/2 requests answered 400 by the transport because their header block or body broke
    /// HTTP/2's message rules (RFC 9113 8.1.1, 8.2, 8.3): a bad field, a missing pseudo-header
    /// field, a body unlike its content-length.
    public let malformedRequests = Counter()
    /// Connections closed because the peer broke the protocol.
    public let protocolErrors = Counter()
    /// HTTP/2 streams begun by clients.
    public let streamsOpened = Counter()
    private let openConnections = Atomic<Int>(0)
    private let openStreams = Atomic<Int>(0)

    public init() {}

    /// Connections currently open (both HTTP versions).
    public var currentConnections: Int { openConnections.load(ordering: .relaxed) }

    /// HTTP/2 streams currently open (begun and not yet closed or torn down with their connection).
    public var currentStreams: Int { openStreams.load(ordering: .relaxed) }

    func connectionOpened() { openConnections.add(1, ordering: .relaxed) }
    func streamsOpened(_ n: Int) {
        streamsOpened.add(n)
        openStreams.add(n, ordering: .relaxed)
    }
    func streamsClosed(_ n: Int) { openStreams.subtract(n, ordering: .relaxed) }
    func connectionClosed() { openConnections.subtract(1, ordering: .relaxed) }
}

/// Sent down every connection's pipeline when the server starts draining.
struct TransportDrainEvent: Sendable {}
