import ApusCore
import ApusInference
import ApusMetrics
import ApusServer
import ApusSplit
import ApusTransport
import ArgumentParser
import Foundation
import Logging
import NIOCore

/// `apus bench-route`: the serving path's own cost per request, without sockets or HTTP/2.
///
/// It builds the same routes as `apus serve` (metrics, outcome log, canary observer, splitter)
/// over a model repository and calls them in bursts, the way one socket read delivers a burst
/// of requests to an event loop: inside one `WakeupCoalescer` scope, so cheap batches run
/// inline at the burst's end. It prints the thread CPU time per request. With the transport
/// out of the picture the figure is steady enough to compare two builds of the request path.
struct BenchRouteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-route",
        abstract: "Measure the request path's CPU time per request in-process (no sockets); prints one JSON object."
    )

    @Option(help: "Model repository folder.")
    var modelRepository: String

    @Option(help: "Request path, e.g. /v2/models/logreg/infer.")
    var path: String

    @Option(help: "Request body file (protobuf InferRequest or JSON).")
    var body: String

    @Option(help: "Content-Type of the body.")
    var contentType = "application/x-protobuf"

    @Option(help: "Requests per burst (one socket read's worth).")
    var burst = 32

    @Option(help: "Requests to time (after a warm-up of a tenth of that).")
    var requests = 200_000

    @Option(name: .customLong("inline-budget-us"), help: "As for apus serve: batches estimated under this many microseconds run inline.")
    var inlineBudgetMicroseconds = 20

    func run() throws {
        guard burst > 0, requests > 0 else { throw ValidationError("--burst and --requests must be positive") }
        StandardErrorLogging.bootstrap(level: .warning)
        let logger = Logger(label: "apus-bench")
        let metrics = ServerMetrics()
        let repository = ModelRepository(root: modelRepository, workers: 1, inlineBudgetMicroseconds: inlineBudgetMicroseconds,
                                         logger: logger, observer: metrics)
        let outcomes = OutcomeTracker()
        let canary = CanaryController(repository: repository, outcomes: outcomes, logger: logger)
        let app = Application(configuration: HTTPServer.Configuration(), repository: repository, splitter: TrafficSplitter(),
                              metrics: metrics, outcomes: outcomes, canary: canary, logger: logger)
        repository.reload()
        let payload = Array(try Data(contentsOf: URL(fileURLWithPath: body)))
        var headers = HTTPFields()
        for (name, value) in [("content-type", contentType), ("content-length", String(payload.count)), ("user-agent", "apus-bench-route")] {
            headers.appendLowercased(name: name, value: value)
        }
        let sink = CountingSink()
        let responder = app.responder

        func runBursts(_ count: Int) throws -> (cpuNanos: UInt64, wallNanos: UInt64) {
            let expected = sink.answered + count
            let cpuStart = Self.threadCPUNanos()
            let wallStart = DispatchTime.now().uptimeNanoseconds
            var sent = 0
            while sent < count {
                let n = min(burst, count - sent)
                WakeupCoalescer.batch {
                    for i in 0..<n {
                        let request = Request(method: "POST", target: path, headers: headers, body: payload, version: .http2)
                        responder.respond(to: request, context: RequestContext(remoteAddress: "127.0.0.1"),
                                          writer: ResponseWriter(sink: sink, token: Int64(sent + i)))
                    }
                }
                sent += n
            }
            // Batches the batcher sent to its workers (before it measured the model) finish there.
            let deadline = DispatchTime.now().uptimeNanoseconds + 10_000_000_000
            while sink.answered < expected {
                guard DispatchTime.now().uptimeNanoseconds < deadline else { throw ValidationError("answers missing after 10 s") }
                usleep(100)
            }
            return (Self.threadCPUNanos() - cpuStart, DispatchTime.now().uptimeNanoseconds - wallStart)
        }

        _ = try runBursts(max(burst, requests / 10))
        guard sink.failures == 0 else { throw ValidationError("\(sink.failures) answers were not 200; first: \(sink.firstFailure ?? "")") }
        let (cpu, wall) = try runBursts(requests)
        guard sink.failures == 0 else { throw ValidationError("\(sink.failures) answers were not 200; first: \(sink.firstFailure ?? "")") }
        let perRequest = Double(cpu) / Double(requests)
        let line = String(format: "{\"path\":\"%@\",\"burst\":%d,\"requests\":%d,\"cpu_ns_per_request\":%.0f,\"wall_ns_per_request\":%.0f}",
                          path, burst, requests, perRequest, Double(wall) / Double(requests))
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func threadCPUNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// Counts answers (any thread) and remembers the first non-200.
private final class CountingSink: ResponseSink {
    private let state = Locked<(answered: Int, failures: Int, first: String?)>((0, 0, nil))

    var answered: Int { state.withLock { $0.answered } }
    var failures: Int { state.withLock { $0.failures } }
    var firstFailure: String? { state.withLock { $0.first } }

    func complete(_ response: Response, token: Int64) {
        state.withLock { s in
            s.answered += 1
            if response.status != 200 {
                s.failures += 1
                if s.first == nil { s.first = "\(response.status) \(String(decoding: response.body, as: UTF8.self))" }
            }
        }
    }
}
