import ApusCore
import ApusInference
import ApusLoadTest
import ApusRuntime
import ApusTransport
import ApusWire
import ArgumentParser
import Foundation

/// `apus-loadtest`: the load test users run before a rollout and in CI.
@main
struct LoadTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apus-loadtest",
        abstract: "Load-test an Apus server (or any h2c endpoint): open-loop rate or closed-loop concurrency, HdrHistogram latencies, thresholds.",
        discussion: "Targets must be loopback unless --allow-remote is given. Example: apus-loadtest --model churn --rate 2000 --duration 10 --fail-if 'p99>2ms,error_rate>0'"
    )

    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 8080
    @Flag(help: "Allow a target that is not a loopback address.") var allowRemote = false
    @Option(help: "Model to load-test (infer route); without it, --path is requested.") var model: String?
    @Option(help: "Version number or label.") var version: String?
    @Option(help: "Path for plain requests when no --model is given.") var path = "/v2/health/live"
    @Option(help: "HTTP/2 connections.") var connections = 4
    @Option(help: "Max requests in flight per connection.") var streams = 32
    @Option(help: "Open loop: target requests per second across all connections (0 = closed loop).") var rate: Double = 0
    @Option(help: "Arrival process for --rate: constant or poisson.") var arrival: ArrivalSchedule.Kind = .constant
    @Option(help: "Open loop: shortest sleep between sends, in microseconds (10000 sends in 10 ms bursts, as h2load --rps does).")
    var timerResolutionUs: Double = 20
    @Option(help: "Seconds to measure (after warm-up).") var duration: Double?
    @Option(help: "Total requests (instead of, or as well as, --duration).") var requests: Int?
    @Option(help: "Seconds to wait for answers still outstanding when the run ends (with --requests only: without any answer) before they count as failed.")
    var drainTimeout: Double = 10
    @Option(help: "Seconds of warm-up load not recorded.") var warmup: Double = 0
    @Option(help: "Rows per request.") var rows = 1
    @Option(help: "Payload rows from a .npy or .csv file (default: random values within the model's reference ranges).") var payload: String?
    @Option(help: "Routing keys from this many users (A/B splits); none by default.") var users: Int?
    @Option(help: "Zipf exponent for user popularity (e.g. 1.1); uniform when absent.") var zipf: Double?
    @Option(help: "Wire format: protobuf or json.") var format = "protobuf"
    @Flag(help: "gzip request bodies.") var gzip = false
    @Option(help: "Fail (exit 2) if any condition holds, e.g. 'p99>2ms,error_rate>0'.") var failIf: String?
    @Option(help: "Write the JSON report here ('-' for stdout).") var json: String?
    @Option(help: "A scenario file (JSON): phases run in order; see loadtest/scenarios/.") var scenario: String?
    @Option(help: "Event loop threads for the generator.") var threads = 1
    @Option(help: "Random seed (payloads, arrivals, users).") var seed: UInt64 = 1
    @Flag(help: "No live progress line.") var quiet = false

    func validate() throws {
        if !allowRemote, !Self.isLoopback(host) {
            throw ValidationError("\(host) is not a loopback address; pass --allow-remote to load-test another machine")
        }
        if duration == nil, requests == nil, scenario == nil { throw ValidationError("give --duration, --requests or --scenario (load must be bounded)") }
        guard connections >= 1, streams >= 1, rows >= 1 else { throw ValidationError("--connections, --streams and --rows must be at least 1") }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    func run() async throws {
        let thresholds = try failIf.map(Threshold.parseList) ?? []
        var phases: [Scenario.Phase] = []
        if let scenario {
            phases = try Scenario.load(path: scenario).phases
        } else {
            phases = [Scenario.Phase(name: "run", rate: rate, arrival: arrival, duration: duration, requests: requests, warmup: warmup,
                                     connections: connections, streams: streams, label: nil)]
        }
        var basePlan = LoadPlan()
        basePlan.host = host
        basePlan.port = port
        basePlan.users = users
        basePlan.zipfExponent = zipf
        basePlan.seed = seed
        basePlan.timerResolutionNanos = UInt64(max(1, timerResolutionUs) * 1000)
        var configuredSplit: [String: Double] = [:]
        if let model {
            let payloads = try await PayloadBuilder.build(host: host, port: port, model: model, rows: rows, file: payload, seed: seed)
            let wire: WireFormat = format == "json" ? .json : .protobuf
            basePlan.bodies = try payloads.map { input in
                let body = ClientCodec.encodeRequest(InferRequest(model: model, inputs: [input]), format: wire)
                return gzip ? try Compression.deflate(body, encoding: .gzip) : body
            }
            basePlan.headers = HTTPFields([("content-type", wire.contentType), ("accept", wire.contentType)])
            if gzip { basePlan.headers.add(name: "content-encoding", value: "gzip") }
            configuredSplit = (try? await PayloadBuilder.split(host: host, port: port, model: model)) ?? [:]
        } else {
            basePlan.method = "GET"
            basePlan.bodies = [[]]
        }
        var reports: [(String, LoadReport)] = []
        for phase in phases {
            var plan = basePlan
            if let model {
                let selector: VersionSelector? = (phase.label ?? version).map { Int($0).map(VersionSelector.version) ?? .label($0) }
                plan.path = ClientCodec.inferPath(model: model, version: selector)
            } else {
                plan.path = path
            }
            plan.connections = phase.connections ?? connections
            plan.streams = phase.streams ?? streams
            plan.mode = (phase.rate ?? 0) > 0 ? .open(rate: phase.rate ?? 0, arrival: phase.arrival ?? .constant) : .closed
            plan.durationSeconds = phase.duration
            plan.maxRequests = phase.requests
            plan.warmupSeconds = phase.warmup ?? 0
            plan.drainSeconds = drainTimeout
            let quiet = self.quiet
            let name = phase.name
            let warm = plan.warmupSeconds
            var report = try await LoadGenerator.run(plan, threads: threads) { done, elapsed in
                guard !quiet else { return }
                FileHandle.standardError.write(Data(String(format: "\r[%@] %.0fs  %d requests  %.0f req/s   ", name, elapsed, done, Double(done) / max(elapsed - warm, 0.001)).utf8))
            }
            report.configuredSplit = configuredSplit
            if !quiet { FileHandle.standardError.write(Data("\n".utf8)) }
            // With --json - the JSON owns stdout; the table goes to stderr.
            (json == "-" ? FileHandle.standardError : FileHandle.standardOutput).write(Data("== \(phase.name)\n\(report.table)\n".utf8))
            reports.append((phase.name, report))
        }
        var violations: [String] = []
        for (name, report) in reports {
            for threshold in thresholds where threshold.isViolated(by: report) { violations.append("\(name): \(threshold)") }
        }
        if let json {
            var doc: [String: Any] = ["phases": reports.map { ["name": $0.0, "report": $0.1.json] as [String: Any] }]
            doc["violations"] = violations
            doc["passed"] = violations.isEmpty
            let data = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
            if json == "-" { FileHandle.standardOutput.write(data + Data("\n".utf8)) } else { try data.write(to: URL(fileURLWithPath: json)) }
        }
        if !violations.isEmpty {
            FileHandle.standardError.write(Data(("FAILED thresholds:\n" + violations.map { "  " + $0 }.joined(separator: "\n") + "\n").utf8))
            throw ExitCode(2)
        }
        if !thresholds.isEmpty { (json == "-" ? FileHandle.standardError : FileHandle.standardOutput).write(Data("thresholds passed: \(thresholds.map(\.text).joined(separator: ", "))\n".utf8)) }
    }
}

extension ArrivalSchedule.Kind: ExpressibleByArgument {}
