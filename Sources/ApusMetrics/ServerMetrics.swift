import ApusCore
import ApusInference
import ApusRuntime
import ApusSplit
import ApusTransport
import Foundation
import Prometheus
import Synchronization

/// Everything `/metrics` exports, in the Prometheus text format: request, queue and compute
/// histograms and counters (updated on the request path: swift-prometheus collectors, and
/// `LatencyHistogram`s for the two latencies recorded per request), plus
/// gauges read at scrape time from the repository, the transport, the A/B splitter, the drift
/// monitor and /proc.
///
/// Label sets are bounded: model and version only for models in the repository (requests for
/// unknown models count under `model=""`), variants from the split config, status as a class.
/// Thread-safe.
public final class ServerMetrics: InferenceObserver, RequestObserver, Sendable {
    public let registry = PrometheusCollectorRegistry()
    public let drift: DriftMonitor
    private let startTime = Date().timeIntervalSince1970

    /// Latency bucket bounds in seconds. Latencies are `Double` histograms, not swift-prometheus'
    /// `Duration` ones: a `Duration` comparison is a call (two words) where a `Double` one is an
    /// instruction. The two recorded per request (its duration and its queue wait) are
    /// `LatencyHistogram`s. The `le` labels read as Swift prints the doubles (`5e-05`, `0.001`).
    static let latencyBuckets: [Double] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
    static func seconds(_ nanos: UInt64) -> Double { Double(nanos) / 1e9 }
    static let rowBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096]

    /// Collectors by label values: creating one through the registry validates names and
    /// builds label strings, far too slow for every request.
    private struct Collectors {
        /// A request's counter and its model's duration histogram, found with one lookup.
        var requests: [RequestKey: (counter: Counter, duration: LatencyHistogram)] = [:]
        /// Rendered by `render` (not the registry), sorted by model.
        var requestDuration: [String: LatencyHistogram] = [:]
        var perVersion: [VersionKey: VersionCollectors] = [:]
        /// The last request's collectors: consecutive answers mostly share model, version, variant
        /// and status class, and comparing the key (identical strings compare by pointer) is
        /// cheaper than hashing it.
        var lastRequest: (key: RequestKey, counter: Counter, duration: LatencyHistogram)?
        var lastVersion: (key: VersionKey, collectors: VersionCollectors)?
    }

    struct RequestKey: Hashable {
        var model: String
        var version: Int
        var variant: String
        var codeClass: Int
    }

    struct VersionKey: Hashable {
        var model: String
        var version: Int
    }

    struct VersionCollectors {
        /// Recorded per request, so ours (see `LatencyHistogram`); rendered by `render`.
        var queue: LatencyHistogram
        var compute: ValueHistogram
        var rows: ValueHistogram
        var requests: ValueHistogram
    }

    private let collectors = Locked(Collectors())

    public init(drift: DriftMonitor = DriftMonitor()) {
        self.drift = drift
    }

    static func descriptor(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "apus", metricName: name, unitName: unit, helpText: help)
    }

    // MARK: - Observers (request path)

    public func requestFinished(model: String, version: Int?, variant: String?, status: Int, durationNanos: UInt64) {
        let codeClass = status / 100, versionNumber = version ?? -1
        let seconds = Self.seconds(durationNanos)
        // The last request's series, compared field by field through the optional and counted
        // under the lock: for a repeat (the common case on a busy model) no key is built and no
        // collector is handed out, 8 -> 4 retains and releases per request (callgrind).
        let repeated = collectors.withLock { c -> Bool in
            guard c.lastRequest?.key.codeClass == codeClass, c.lastRequest?.key.version == versionNumber,
                  c.lastRequest?.key.model == model, c.lastRequest?.key.variant == (variant ?? "") else { return false }
            c.lastRequest?.counter.increment()
            c.lastRequest?.duration.record(seconds)
            return true
        }
        if repeated { return }
        let key = RequestKey(model: model, version: versionNumber, variant: variant ?? "", codeClass: codeClass)
        let (counter, histogram) = collectors.withLock { c -> (Counter, LatencyHistogram) in
            if let hit = c.requests[key] {
                c.lastRequest = (key, hit.counter, hit.duration)
                return hit
            }
            let labels = [("model", model), ("version", version.map(String.init) ?? ""), ("variant", variant ?? ""), ("code", "\(status / 100)xx")]
            let counter = registry.makeCounter(descriptor: Self.descriptor("requests", "total", "Inference requests answered, by model, version, variant and status class."), labels: labels)
            let histogram = c.requestDuration[model] ?? {
                let made = LatencyHistogram(bounds: Self.latencyBuckets)
                c.requestDuration[model] = made
                return made
            }()
            c.requests[key] = (counter, histogram)
            c.lastRequest = (key, counter, histogram)
            return (counter, histogram)
        }
        counter.increment()
        histogram.record(seconds)
    }

    public func batchRan(model: String, version: Int, rows: Int, queueWaitNanos: [UInt64], computeNanos: UInt64) {
        let key = VersionKey(model: model, version: version)
        let set = collectors.withLock { c -> VersionCollectors in
            if let last = c.lastVersion, last.key == key { return last.collectors }
            if let hit = c.perVersion[key] {
                c.lastVersion = (key, hit)
                return hit
            }
            let labels = [("model", model), ("version", String(version))]
            let made = VersionCollectors(
                queue: LatencyHistogram(bounds: Self.latencyBuckets),
                compute: registry.makeValueHistogram(descriptor: Self.descriptor("compute_duration", "seconds", "Time to run one batch through the model."),
                                                        labels: labels, buckets: Self.latencyBuckets),
                rows: registry.makeValueHistogram(descriptor: Self.descriptor("batch", "rows", "Rows per executed batch."), labels: labels, buckets: Self.rowBuckets),
                requests: registry.makeValueHistogram(descriptor: Self.descriptor("batch_requests", "count", "Requests per executed batch."), labels: labels, buckets: Self.rowBuckets))
            c.perVersion[key] = made
            c.lastVersion = (key, made)
            return made
        }
        set.queue.record(nanoseconds: queueWaitNanos)
        set.compute.record(Self.seconds(computeNanos))
        set.rows.record(Double(rows))
        set.requests.record(Double(queueWaitNanos.count))
    }

    public func requestDropped(model: String, version: Int, reason: DropReason) {
        registry.makeCounter(descriptor: Self.descriptor("dropped_requests", "total", "Requests dropped before running: deadline, queue_full, cancelled."),
                             labels: [("model", model), ("version", String(version)), ("reason", reason.rawValue)]).increment()
    }

    public func versionRetired(model: String, version: Int) {
        let key = VersionKey(model: model, version: version)
        let (perVersion, counters) = collectors.withLock { c -> (VersionCollectors?, [Counter]) in
            // The shortcuts may hold collectors about to be unregistered.
            c.lastRequest = nil
            c.lastVersion = nil
            let requestKeys = c.requests.keys.filter { $0.model == model && $0.version == version }
            let counters = requestKeys.compactMap { c.requests.removeValue(forKey: $0)?.counter }
            return (c.perVersion.removeValue(forKey: key), counters)
        }
        for counter in counters { registry.unregisterCounter(counter) }
        if let perVersion {
            registry.unregisterValueHistogram(perVersion.compute)
            registry.unregisterValueHistogram(perVersion.rows)
            registry.unregisterValueHistogram(perVersion.requests)
        }
        for reason in [DropReason.deadline, .queueFull, .cancelled] {
            registry.unregisterCounter(registry.makeCounter(
                descriptor: Self.descriptor("dropped_requests", "total", "Requests dropped before running: deadline, queue_full, cancelled."),
                labels: [("model", model), ("version", String(version)), ("reason", reason.rawValue)]))
        }
    }

    public func inputsSeen(model: String, version: Int, feeds: [Tensor]) {
        drift.observe(model: model, version: version, feeds: feeds)
    }

    // MARK: - Scrape

    /// The whole exposition. `repository`, `transport`, `splitter` may be nil (not running).
    public func render(repository: ModelRepository?, transport: TransportStats?, splitter: TrafficSplitter?,
                       outcomes: OutcomeTracker? = nil, canary: CanaryController? = nil) -> [UInt8] {
        var out: [UInt8] = []
        registry.emit(into: &out)
        var text = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            guard !samples.isEmpty else { return }
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for sample in samples { text += "\(name)\(sample.labels) \(sample.value)\n" }
        }
        func labels(_ pairs: [(String, String)]) -> String {
            "{" + pairs.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        // The latency histograms recorded per request (ours, not the registry's).
        let (durations, queues) = collectors.withLock { c in
            (c.requestDuration.sorted { $0.key < $1.key },
             c.perVersion.map { ($0.key, $0.value.queue) }.sorted { ($0.0.model, $0.0.version) < ($1.0.model, $1.0.version) })
        }
        func histograms(_ name: String, _ help: String, _ series: [(labels: String, histogram: LatencyHistogram)]) {
            guard !series.isEmpty else { return }
            text += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
            for (labels, histogram) in series { histogram.render(name: name, labels: labels, into: &text) }
        }
        histograms("apus_request_duration_seconds", "Time from a request's arrival (the socket read that completed it) to its answer.",
                   durations.map { ("model=\"\(Self.escape($0.key))\"", $0.value) })
        histograms("apus_queue_duration_seconds", "Time requests waited in the batch queue.",
                   queues.map { ("model=\"\(Self.escape($0.0.model))\",version=\"\($0.0.version)\"", $0.1) })
        if let repository {
            let snapshot = repository.snapshot
            var inflight: [(String, String)] = [], queued: [(String, String)] = []
            for (model, entry) in snapshot.models.sorted(by: { $0.key < $1.key }) {
                for (version, served) in entry.versions.sorted(by: { $0.key < $1.key }) {
                    let l = labels([("model", model), ("version", String(version))])
                    inflight.append((l, String(served.inflightRequests)))
                    queued.append((l, String(served.queuedRows)))
                }
            }
            family("apus_inflight_requests", "gauge", "Requests accepted by a version and not yet answered.", inflight)
            family("apus_queue_rows", "gauge", "Rows waiting in a version's batch queue.", queued)
            let states = ["LOADING", "READY", "DRAINING", "UNLOADED", "FAILED"]
            family("apus_model_version_state", "gauge", "1 for the state each known model version is in.", repository.statuses.flatMap { status in
                states.map { state in (labels([("model", status.model), ("version", String(status.version)), ("state", state)]), status.state.name == state ? "1" : "0") }
            })
            let counters = repository.counters
            family("apus_model_loads_total", "counter", "Model versions loaded and validated.", [("", String(counters.loads))])
            family("apus_model_load_failures_total", "counter", "Model version loads that failed (checksum, format, validation).", [("", String(counters.failures))])
            family("apus_model_unloads_total", "counter", "Model versions unloaded after draining.", [("", String(counters.unloads))])
            family("apus_repository_reloads_total", "counter", "Repository scans.", [("", String(counters.reloads))])
            family("apus_repository_generation", "gauge", "Generation of the serving snapshot (grows with every swap).", [("", String(snapshot.generation))])
            var driftD: [(String, String)] = [], driftP: [(String, String)] = [], driftN: [(String, String)] = []
            for entry in drift.current {
                driftN.append((labels([("model", entry.model), ("version", String(entry.version))]), String(entry.samples)))
                for feature in entry.drift {
                    let l = labels([("model", entry.model), ("version", String(entry.version)), ("feature", feature.feature)])
                    driftD.append((l, Self.number(feature.statistic)))
                    driftP.append((l, Self.number(feature.pValue)))
                }
            }
            family("apus_feature_drift_ks_statistic", "gauge", "Two-sample Kolmogorov-Smirnov statistic of recent inputs against the bundle's reference sample.", driftD)
            family("apus_feature_drift_ks_pvalue", "gauge", "p-value of the KS test (small: the input distribution moved).", driftP)
            family("apus_feature_drift_samples", "gauge", "Recent input rows in the drift reservoir.", driftN)
        }
        if let splitter {
            var samples: [(String, String)] = []
            for (model, variants) in splitter.assignments.sorted(by: { $0.key < $1.key }) {
                for (variant, count) in variants.sorted(by: { $0.key < $1.key }) {
                    samples.append((labels([("model", model), ("variant", variant), ("method", "hash")]), String(count.hash)))
                    samples.append((labels([("model", model), ("variant", variant), ("method", "random")]), String(count.random)))
                }
            }
            family("apus_ab_assignments_total", "counter", "Requests assigned to an A/B variant, by routing-key hash or at random (no key).", samples)
            var shadows: [(String, String)] = [], shadowFailures: [(String, String)] = []
            for (model, counts) in splitter.shadows.sorted(by: { $0.key < $1.key }) {
                shadows.append((labels([("model", model)]), String(counts.sent)))
                shadowFailures.append((labels([("model", model)]), String(counts.failed)))
            }
            family("apus_shadow_requests_total", "counter", "Copies of requests sent to a shadow version (answers discarded).", shadows)
            family("apus_shadow_failures_total", "counter", "Shadow copies that failed.", shadowFailures)
        }
        if let outcomes {
            var count: [(String, String)] = [], correct: [(String, String)] = [], error: [(String, String)] = []
            for (model, variants) in outcomes.totals.sorted(by: { $0.key < $1.key }) {
                for (variant, totals) in variants.sorted(by: { $0.key < $1.key }) {
                    let l = labels([("model", model), ("variant", variant)])
                    count.append((l, String(totals.outcomes)))
                    correct.append((l, String(totals.correct)))
                    error.append((l, Self.number(totals.absoluteErrorSum)))
                }
            }
            family("apus_ab_outcomes_total", "counter", "Feedback outcomes joined to served predictions, per variant.", count)
            family("apus_ab_outcomes_correct_total", "counter", "Outcomes where the classifier's label was right.", correct)
            family("apus_ab_outcomes_absolute_error_sum", "counter", "Sum of |prediction - truth| over outcomes.", error)
        }
        if let canary {
            var weight: [(String, String)] = [], steps: [(String, String)] = [], state: [(String, String)] = []
            for status in canary.all.sorted(by: { $0.model < $1.model }) {
                let l = labels([("model", status.model), ("canary", status.policy.canary)])
                weight.append((l, String(status.canaryWeight)))
                steps.append((l, String(status.steps)))
                let name: String
                switch status.state {
                case .running: name = "running"
                case .promoted: name = "promoted"
                case .rolledBack: name = "rolled_back"
                }
                for s in ["running", "promoted", "rolled_back"] {
                    state.append((labels([("model", status.model), ("canary", status.policy.canary), ("state", s)]), s == name ? "1" : "0"))
                }
            }
            family("apus_canary_weight_basis_points", "gauge", "Share of traffic given to the canary, in basis points.", weight)
            family("apus_canary_steps_total", "counter", "Canary progression steps taken (advances and rollbacks).", steps)
            family("apus_canary_state", "gauge", "1 for the state of each model's canary progression.", state)
        }
        if let transport {
            family("apus_connections_open", "gauge", "Client connections currently open.", [("", String(transport.currentConnections))])
            family("apus_connections_total", "counter", "Connections accepted, by protocol.", [
                (labels([("protocol", "h2")]), String(transport.http2Connections.current)),
                (labels([("protocol", "http1")]), String(transport.http1Connections.current)),
            ])
            family("apus_http2_streams_open", "gauge", "HTTP/2 streams currently open.", [("", String(transport.currentStreams))])
            family("apus_http2_streams_total", "counter", "HTTP/2 streams begun by clients.", [("", String(transport.streamsOpened.current))])
            family("apus_junk_frames_total", "counter", "Empty, unknown, PRIORITY, RST_STREAM, PING and SETTINGS frames counted against connections.", [("", String(transport.junkFrames.current))])
            family("apus_goaway_enhance_your_calm_total", "counter", "Connections closed with GOAWAY ENHANCE_YOUR_CALM.", [("", String(transport.calmGoAways.current))])
            family("apus_limit_rejections_total", "counter", "Requests answered by the transport because a limit or timer tripped (408, 413, 431).", [("", String(transport.limitRejections.current))])
            family("apus_malformed_requests_total", "counter", "HTTP/2 requests answered 400 by the transport for breaking HTTP/2's message rules (a bad or missing field, a body unlike its content-length).", [("", String(transport.malformedRequests.current))])
            family("apus_protocol_errors_total", "counter", "Connections closed because the peer broke the protocol.", [("", String(transport.protocolErrors.current))])
        }
        let process = ProcessStats.read()
        family("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.", [("", Self.number(process.cpuSeconds))])
        family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", [("", String(process.residentBytes))])
        family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", [("", String(process.virtualBytes))])
        family("process_open_fds", "gauge", "Open file descriptors.", [("", String(process.openFDs))])
        family("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.", [("", Self.number(startTime))])
        out.append(contentsOf: Array(text.utf8))
        return out
    }

    static func escape(_ value: String) -> String {
        var out = ""
        for c in value {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    static func number(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "+Inf" : "-Inf" }
        return String(d)
    }
}
