/// Every limit and timer the transport enforces, with production defaults.
///
/// Each field maps to one `apus serve` flag (see `ServeCommand`) and to one documented wire
/// result (status or GOAWAY code). Durations are nanoseconds so the state machines stay free of
/// any clock type. Value type, immutable once the server starts.
public struct TransportLimits: Sendable, Equatable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise. Streams beyond it opened before the client
    /// acknowledged our SETTINGS are refused (RST_STREAM REFUSED_STREAM); after the ACK a client
    /// exceeding it breaks the protocol: GOAWAY PROTOCOL_ERROR (nghttp2's rule).
    public var maxConcurrentStreams: Int = 100
    /// Total bytes of one request's header names plus values (HPACK-decoded); over it: 431.
    public var maxHeaderListBytes: Int = 16 * 1024
    /// Number of header fields in one request; over it: 431.
    public var maxHeaderCount: Int = 100
    /// Bytes of one request body (as sent, before any content decoding); over it: 413.
    public var maxBodyBytes: Int = 8 * 1024 * 1024
    /// HTTP/2 initial stream window (SETTINGS_INITIAL_WINDOW_SIZE).
    public var streamWindowBytes: Int = 1024 * 1024
    /// HTTP/2 connection receive window.
    public var connectionWindowBytes: Int = 4 * 1024 * 1024
    /// Outbound bytes written but not yet taken by the kernel; over it the peer is not reading:
    /// the connection is closed.
    public var maxOutboundQueueBytes: Int = 16 * 1024 * 1024
    /// A connection with no open request for this long is closed (HTTP/2: GOAWAY NO_ERROR first).
    public var idleTimeoutNanos: Int64 = 60_000_000_000
    /// From a request's first header byte to its last (slowloris headers). HTTP/1.1: 408;
    /// HTTP/2: GOAWAY ENHANCE_YOUR_CALM (an open header block blocks the whole connection).
    public var headerTimeoutNanos: Int64 = 10_000_000_000
    /// From a request's headers to the end of its body (slow body): 408.
    public var bodyTimeoutNanos: Int64 = 30_000_000_000
    /// How long the connection may stay unwritable (peer not reading, zero window) before it is closed.
    public var writeStallTimeoutNanos: Int64 = 30_000_000_000
    /// Frames that do no useful work (empty DATA without END_STREAM, PRIORITY, unknown types,
    /// RST_STREAM from the client, SETTINGS and PING beyond need) allowed on one connection;
    /// each answered request earns one back. Over it: GOAWAY ENHANCE_YOUR_CALM.
    public var maxJunkFrames: Int = 1000
    /// How often the connection checks its timers; bounds timer precision.
    public var timerTickNanos: Int64 = 250_000_000

    public init() {}
}
