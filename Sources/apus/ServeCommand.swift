import ApusHotSwap
import ApusInference
import ApusMetrics
import ApusServer
import ApusSplit
import ApusTransport
import ArgumentParser
import Dispatch
import Foundation
import Logging

/// `apus serve`: binds, serves until SIGTERM/SIGINT, then drains and exits 0.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model repository over HTTP/2 (h2c) and HTTP/1.1 on one port."
    )

    @Option(help: "Address to listen on. Use 0.0.0.0 in containers.")
    var host = "127.0.0.1"

    @Option(help: "TCP port; 0 picks a free one (printed in the log).")
    var port = 8080

    @Option(help: "Event loop threads; default: one per core the process may use (CPU affinity and cgroup quota).")
    var threads: Int?

    @Option(name: .customLong("model-repository"), help: "Model repository folder (<repo>/<model>/<version>/).")
    var modelRepository = "examples/models"

    @Option(help: "Seconds between repository scans for new, changed or removed versions; 0 disables polling (SIGHUP and the admin API still reload).")
    var pollInterval: Double = 5

    @Option(help: "Seconds between feature-drift (KS) recomputations exported on /metrics.")
    var driftInterval: Double = 10

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Log format on standard error: text, or json (one JSON object per line: time, level, label, message, source and the metadata as fields).")
    var logFormat: StandardErrorLogging.Format = .text

    @Option(help: "HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; extra streams before the client ACKs it: RST_STREAM REFUSED_STREAM, after: GOAWAY PROTOCOL_ERROR.")
    var maxConcurrentStreams = 100

    @Option(help: "Max bytes of a request's header names and values; over it: 431.")
    var maxHeaderBytes = 16 * 1024

    @Option(help: "Max number of request header fields; over it: 431.")
    var maxHeaderCount = 100

    @Option(help: "Max request body bytes; over it: 413.")
    var maxBodyBytes = 8 * 1024 * 1024

    @Option(help: "HTTP/2 initial stream flow-control window in bytes.")
    var streamWindow = 1024 * 1024

    @Option(help: "HTTP/2 connection flow-control window in bytes.")
    var connectionWindow = 4 * 1024 * 1024

    @Option(help: "Max unsent outbound bytes per connection; reading stops above it, a stall closes.")
    var maxOutboundQueue = 16 * 1024 * 1024

    @Option(help: "Seconds a connection may stay without requests before it is closed.")
    var idleTimeout: Double = 60

    @Option(help: "Seconds from a request's first byte to the end of its headers (slowloris); HTTP/1: 408, HTTP/2: GOAWAY.")
    var headerTimeout: Double = 10

    @Option(help: "Seconds from a request's headers to the end of its body; over it: 408.")
    var bodyTimeout: Double = 30

    @Option(help: "Seconds a peer may leave our output unread before the connection is closed.")
    var writeStallTimeout: Double = 30

    @Option(help: "Junk frames (empty DATA, PRIORITY, unknown, RST_STREAM, PING, SETTINGS) per connection before GOAWAY ENHANCE_YOUR_CALM; each answered request earns one back.")
    var maxJunkFrames = 1000

    @Option(name: .customLong("inline-budget-us"), help: "Microseconds of estimated batch compute an event loop may run itself after a pass over its sockets (a thread hand-off costs more); batches beyond it go to the worker pool, and 0 sends every batch there. Default: 20, or 1000 when the process may use only one core.")
    var inlineBudgetMicroseconds: Int?

    @Option(help: "Seconds to let in-flight requests finish on SIGTERM/SIGINT before closing.")
    var drainTimeout: Double = 25

    @Flag(name: .customLong("access-log"), help: "Write one JSON line per answered request to standard output (time, peer, method, path, protocol, status, bytes, duration_us, request_id, model_version, variant, forwarded_for, traceparent), flushed every 32 KiB and at least every 200 ms.")
    var accessLog = false

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        // Each thread is an event loop; 100,000 of them ended the process in thread creation.
        guard (1...1024).contains(threads ?? 1) else { throw ValidationError("--threads must be 1...1024") }
        // Below these, no ordinary request gets through (a typo, not a policy): say so at start.
        guard maxHeaderBytes >= 256 else { throw ValidationError("--max-header-bytes must be at least 256") }
        guard maxHeaderCount >= 8 else { throw ValidationError("--max-header-count must be at least 8") }
        guard maxBodyBytes >= 0 else { throw ValidationError("--max-body-bytes must be 0 or more") }
        guard maxOutboundQueue >= 64 * 1024 else { throw ValidationError("--max-outbound-queue must be at least 65536 bytes") }
        guard maxJunkFrames >= 0 else { throw ValidationError("--max-junk-frames must be 0 or more") }
        guard pollInterval >= 0 else { throw ValidationError("--poll-interval must be 0 (off) or a positive number of seconds") }
        guard driftInterval > 0 else { throw ValidationError("--drift-interval must be a positive number of seconds") }
        guard (inlineBudgetMicroseconds ?? 0) >= 0 else { throw ValidationError("--inline-budget-us must be 0 or more") }
        guard maxConcurrentStreams >= 1 else { throw ValidationError("--max-concurrent-streams must be at least 1") }
        guard (65535...Int(Int32.max)).contains(streamWindow) else { throw ValidationError("--stream-window must be 65535...2147483647") }
        guard (65535...Int(Int32.max)).contains(connectionWindow) else { throw ValidationError("--connection-window must be 65535...2147483647") }
        for (name, value) in [("--idle-timeout", idleTimeout), ("--header-timeout", headerTimeout), ("--body-timeout", bodyTimeout),
                              ("--write-stall-timeout", writeStallTimeout), ("--drain-timeout", drainTimeout)] where !(value > 0) {
            throw ValidationError("\(name) must be a positive number of seconds")
        }
    }

    var limits: TransportLimits {
        var limits = TransportLimits()
        limits.maxConcurrentStreams = maxConcurrentStreams
        limits.maxHeaderListBytes = maxHeaderBytes
        limits.maxHeaderCount = maxHeaderCount
        limits.maxBodyBytes = maxBodyBytes
        limits.streamWindowBytes = streamWindow
        limits.connectionWindowBytes = connectionWindow
        limits.maxOutboundQueueBytes = maxOutboundQueue
        limits.idleTimeoutNanos = Self.nanos(idleTimeout)
        limits.headerTimeoutNanos = Self.nanos(headerTimeout)
        limits.bodyTimeoutNanos = Self.nanos(bodyTimeout)
        limits.writeStallTimeoutNanos = Self.nanos(writeStallTimeout)
        limits.maxJunkFrames = maxJunkFrames
        // Timer precision: a tenth of the shortest timeout, between 10 ms and 250 ms.
        let shortest = min(limits.idleTimeoutNanos, limits.headerTimeoutNanos, limits.bodyTimeoutNanos, limits.writeStallTimeoutNanos)
        limits.timerTickNanos = max(10_000_000, min(250_000_000, shortest / 10))
        return limits
    }

    static func nanos(_ seconds: Double) -> Int64 { Int64((seconds * 1e9).rounded()) }

    func run() async throws {
        StandardErrorLogging.bootstrap(level: logLevel, format: logFormat)
        let logger = Logger(label: "apus")

        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: modelRepository, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("--model-repository \(modelRepository) is not a folder")
        }

        let cores = UsableCores.count
        let threads = self.threads ?? cores
        let inlineBudget = inlineBudgetMicroseconds ?? ModelRepository.defaultInlineBudgetMicroseconds(usableCores: cores)
        var configuration = HTTPServer.Configuration()
        configuration.host = host
        configuration.port = port
        configuration.threads = threads
        configuration.limits = limits

        // Signals first, so a SIGTERM that arrives during start-up still drains cleanly.
        let signals = SignalWaiter(signals: [SIGTERM, SIGINT])
        let metrics = ServerMetrics()
        let repository = ModelRepository(root: modelRepository, workers: threads, inlineBudgetMicroseconds: inlineBudget,
                                         logger: logger, observer: metrics)
        let watcher = RepositoryWatcher(repository: repository, logger: logger)
        let outcomes = OutcomeTracker()
        let accessLog = self.accessLog ? AccessLog() : nil
        let canary = CanaryController(repository: repository, outcomes: outcomes, logger: logger)
        let app = Application(configuration: configuration, repository: repository, splitter: TrafficSplitter(), metrics: metrics,
                              outcomes: outcomes, canary: canary, accessLog: accessLog, logger: logger)
        // SIGHUP handling is armed before the port is announced: a reload asked for right after
        // start-up is not lost (Dispatch activates signal sources asynchronously).
        watcher.start(pollInterval: pollInterval > 0 ? .nanoseconds(Self.nanos(pollInterval)) : nil, handleSIGHUP: true)
        try await app.start()
        let canaryTimer = canary.startTimer(interval: .seconds(1))
        let accessLogTimer = accessLog?.startFlushing(every: .milliseconds(200))
        let driftTimer = metrics.drift.startRecomputing(every: .seconds(max(1, driftInterval)), snapshot: { repository.snapshot })
        let ready = repository.statuses.filter { $0.state == .ready }.map { "\($0.model)/\($0.version)" }
        logger.info("serving", metadata: ["model-repository": "\(modelRepository)", "versions": "\(ready.joined(separator: " "))",
                                          "usable-cores": "\(cores)", "inline-budget-us": "\(inlineBudget)"])
        let received = await signals.next()
        logger.info("shutting down", metadata: ["signal": "\(received)", "drain-timeout-s": "\(drainTimeout)"])
        watcher.stop()
        driftTimer.cancel()
        canaryTimer.cancel()
        await app.stop(drainTimeout: .nanoseconds(Self.nanos(drainTimeout)))
        // After the drain: the answers it let finish are in the log too.
        accessLogTimer?.cancel()
        accessLog?.flush()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Turns POSIX signals into an awaitable value via Dispatch sources (the default handlers are
/// disabled so the process is not killed before it drains).
final class SignalWaiter {
    private let stream: AsyncStream<Int32>
    private let sources: [any DispatchSourceSignal]

    init(signals: [Int32]) {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        self.stream = stream
        self.sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
    }

    func next() async -> Int32 {
        for await number in stream { return number }
        return 0
    }
}
