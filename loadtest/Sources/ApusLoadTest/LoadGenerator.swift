import ApusCore
import ApusTransport
import Dispatch
import NIOCore
import NIOPosix
import Synchronization

/// What to send and how: open loop (a target rate, latency from intended send times) or closed
/// loop (a fixed number of requests in flight per connection).
public struct LoadPlan: Sendable {
    public enum Mode: Sendable, Equatable {
        case open(rate: Double, arrival: ArrivalSchedule.Kind)
        case closed
    }

    public var host = "127.0.0.1"
    public var port = 8080
    public var method = "POST"
    public var path = "/v2/health/live"
    public var headers = HTTPFields()
    /// Request bodies, used round-robin (pre-encoded so the generator does no encoding).
    public var bodies: [[UInt8]] = [[]]
    public var connections = 1
    /// Max requests in flight per connection.
    public var streams = 32
    public var mode: Mode = .closed
    public var durationSeconds: Double? = 10
    public var maxRequests: Int?
    public var warmupSeconds: Double = 0
    public var users: Int?
    public var zipfExponent: Double?
    public var seed: UInt64 = 1
    /// Open loop: the timer grid (from the run's start) on which sends wake up. The default keeps
    /// sends close to their intended times; 10 ms reproduces h2load's `--rps` pattern (its timer
    /// fires every max(10 ms, 1/rps) and sends the requests due since the last firing back to
    /// back), for side-by-side comparisons.
    public var timerResolutionNanos: UInt64 = 20_000
    /// How long to wait for requests still in flight when the run ends (for a run bounded by
    /// request count only: with no answer arriving). Then the connection is closed and they are
    /// recorded as failed, so a server that stops answering ends the run with a report instead
    /// of hanging it (and a CI gate with it).
    public var drainSeconds: Double = 10

    public init() {}
}

/// Runs a `LoadPlan` on HTTP/2 connections of the client library and returns the report.
///
/// Each connection is driven on its own event loop by a `ConnectionDriver` (no locks on the hot
/// path); recorders are merged at the end. Thread-safe to call; one run at a time per instance.
public enum LoadGenerator {
    public static func run(_ plan: LoadPlan, threads: Int = 1, progress: (@Sendable (Int, Double) -> Void)? = nil) async throws -> LoadReport {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        do {
            let report = try await run(plan, group: group, progress: progress)
            try? await group.shutdownGracefully()
            return report
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    static func run(_ plan: LoadPlan, group: MultiThreadedEventLoopGroup, progress: (@Sendable (Int, Double) -> Void)?) async throws -> LoadReport {
        var connections: [HTTP2ClientConnection] = []
        for _ in 0..<max(1, plan.connections) {
            connections.append(try await HTTP2ClientConnection.connect(host: plan.host, port: plan.port, group: group))
        }
        let completed = ProgressCounter()
        let start = DispatchTime.now().uptimeNanoseconds
        let recordFrom = start + UInt64(plan.warmupSeconds * 1e9)
        let stopAt = plan.durationSeconds.map { recordFrom + UInt64($0 * 1e9) }
        let perConnectionRequests = plan.maxRequests.map { ($0 + plan.connections - 1) / max(1, plan.connections) }
        let recorders = try await withThrowingTaskGroup(of: LoadRecorder.self) { tasks in
            for (index, connection) in connections.enumerated() {
                tasks.addTask {
                    try await withCheckedThrowingContinuation { continuation in
                        connection.eventLoop.execute {
                            let driver = ConnectionDriver(connection: connection, plan: plan, index: index, start: start, recordFrom: recordFrom,
                                                          stopAt: stopAt, maxRequests: perConnectionRequests, completed: completed) { recorder in
                                continuation.resume(returning: recorder)
                            }
                            driver.begin()
                        }
                    }
                }
            }
            let reporter = Task {
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(1))
                    progress?(completed.value.load(ordering: .relaxed), Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                }
            }
            var all: [LoadRecorder] = []
            for try await recorder in tasks { all.append(recorder) }
            reporter.cancel()
            return all
        }
        let end = DispatchTime.now().uptimeNanoseconds
        for connection in connections { await connection.close() }
        var merged = LoadRecorder()
        for recorder in recorders { merged.merge(recorder) }
        let measured = Double(end - min(recordFrom, end)) / 1e9
        var offered: Double?
        if case .open(let rate, _) = plan.mode { offered = rate }
        return LoadReport(recorder: merged, durationSeconds: measured, offeredRate: offered)
    }
}

/// Drives one connection on its event loop: sends per the plan, records each answer.
/// Event-loop confined (created and used only there).
final class ConnectionDriver {
    let connection: HTTP2ClientConnection
    let plan: LoadPlan
    let loop: any EventLoop
    let start: UInt64
    let recordFrom: UInt64
    let stopAt: UInt64?
    let maxRequests: Int?
    let completed: ProgressCounter
    let finish: (LoadRecorder) -> Void
    let authority: String

    var recorder = LoadRecorder()
    var schedule: ArrivalSchedule?
    var keys: KeyChooser?
    var issued = 0
    var inflight = 0
    var bodyIndex: Int
    /// Open loop: intended send times that could not go yet (all streams busy).
    var backlog: [UInt64] = []
    var backlogHead = 0
    var nextIntended: UInt64 = 0
    var stopped = false
    var finished = false
    /// The drain deadline passed and the connection was closed: what fails now is recorded so.
    var abandoned = false
    /// When the last answer arrived (or the run began).
    var lastAnswerAt: UInt64 = 0

    init(connection: HTTP2ClientConnection, plan: LoadPlan, index: Int, start: UInt64, recordFrom: UInt64, stopAt: UInt64?, maxRequests: Int?,
         completed: ProgressCounter, finish: @escaping (LoadRecorder) -> Void) {
        self.connection = connection
        self.plan = plan
        self.loop = connection.eventLoop
        self.start = start
        self.recordFrom = recordFrom
        self.stopAt = stopAt
        self.maxRequests = maxRequests
        self.completed = completed
        self.finish = finish
        self.bodyIndex = index
        self.authority = "\(plan.host):\(plan.port)"
        if case .open(let rate, let kind) = plan.mode {
            // Fine ticks: connections take turns (evenly spaced sends). Coarse ticks send in
            // bursts anyway, so connections tick together on the shared grid.
            let gap = 1e9 / rate
            let phase = Double(plan.timerResolutionNanos) < gap * Double(max(1, plan.connections)) ? Double(index) / rate : 0
            schedule = ArrivalSchedule(kind: kind, rate: rate / Double(max(1, plan.connections)), seed: plan.seed &+ UInt64(index) &* 7919,
                                       phase: phase)
        }
        if let users = plan.users { keys = KeyChooser(users: users, zipfExponent: plan.zipfExponent, seed: plan.seed &+ UInt64(index)) }
    }

    func begin() {
        lastAnswerAt = DispatchTime.now().uptimeNanoseconds
        watchDrain()
        if schedule != nil {
            nextIntended = start + (schedule?.nextOffsetNanos() ?? 0)
            tick()
        } else {
            connection.batchingWrites {
                for _ in 0..<max(1, plan.streams) where canIssue(now: DispatchTime.now().uptimeNanoseconds) {
                    send(intended: DispatchTime.now().uptimeNanoseconds)
                }
            }
            finishIfDone()
        }
    }

    /// Checks once a second (or each drain period, if shorter) whether to give up on the
    /// requests still in flight: `drainSeconds` after the run's end, or, with no end time,
    /// after `drainSeconds` without an answer.
    func watchDrain() {
        let drain = UInt64(max(plan.drainSeconds, 0) * 1e9)
        let now = DispatchTime.now().uptimeNanoseconds
        guard !finished else { return }
        let pastEnd = stopAt.map { now >= $0 &+ drain } ?? false
        let stalled = stopAt == nil && inflight > 0 && now - min(lastAnswerAt, now) >= drain
        if pastEnd || stalled {
            stopped = true
            abandoned = true
            // Open loop: intended sends still waiting for a stream never went out; they count as failed too.
            for intended in backlog[backlogHead...] where intended >= recordFrom {
                recorder.recordUnsent(latencyNanos: now - min(intended, now), error: "not sent: no stream freed up within the drain time (\(plan.drainSeconds) s)")
            }
            backlogHead = backlog.count
            // Every request still in flight fails through the connection's teardown.
            connection.closeNow()
            return
        }
        loop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(min(drain, 1_000_000_000)) + 1)) { [self] in watchDrain() }
    }

    func canIssue(now: UInt64) -> Bool {
        if stopped { return false }
        if let maxRequests, issued >= maxRequests { stopped = true; return false }
        if let stopAt, now >= stopAt { stopped = true; return false }
        return true
    }

    /// Open loop: move every due intended time into sends (or the backlog), then sleep until
    /// the next one.
    func tick() {
        let now = DispatchTime.now().uptimeNanoseconds
        while nextIntended <= now, canIssue(now: nextIntended) {
            backlog.append(nextIntended)
            issued += 1
            nextIntended = start + (schedule?.nextOffsetNanos() ?? 0)
        }
        connection.batchingWrites { drainBacklog() }
        if canIssue(now: nextIntended) {
            // Wake at the first point of the run's timer grid at or after the next intended send:
            // every connection of the loop shares the grid, so their ticks coincide (one wake-up).
            let resolution = max(1, plan.timerResolutionNanos)
            let target = max(nextIntended, now + 1)
            let wake = start + (target - start + resolution - 1) / resolution * resolution
            loop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(wake - now))) { [self] in tick() }
        } else {
            finishIfDone()
        }
    }

    /// Set while `drainBacklog` runs: a send that fails at once (closed connection) answers
    /// inline, and its answer must not drain again from inside, one stack frame per backlog entry.
    var draining = false

    func drainBacklog() {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        while backlogHead < backlog.count, inflight < plan.streams {
            let intended = backlog[backlogHead]
            backlogHead += 1
            transmit(intended: intended)
        }
        if backlogHead > 4096, backlogHead * 2 > backlog.count {
            backlog.removeFirst(backlogHead)
            backlogHead = 0
        }
    }

    func send(intended: UInt64) {
        issued += 1
        transmit(intended: intended)
    }

    func transmit(intended: UInt64) {
        inflight += 1
        var headers = plan.headers
        if keys != nil, let key = keys?.next() { headers.add(name: "apus-routing-key", value: key) }
        let body = plan.bodies[bodyIndex % plan.bodies.count]
        bodyIndex &+= 1
        let request = ClientRequest(method: plan.method, path: plan.path, authority: authority, headers: headers, body: body)
        let bound = NIOLoopBound(self, eventLoop: loop)
        let sent = schedule == nil ? intended : DispatchTime.now().uptimeNanoseconds
        connection.send(request) { result in
            bound.value.answered(intended: intended, sent: sent, result: result)
        }
    }

    func answered(intended: UInt64, sent: UInt64, result: Result<ClientResponse, ApusError>) {
        inflight -= 1
        let now = DispatchTime.now().uptimeNanoseconds
        lastAnswerAt = now
        if intended >= recordFrom {
            let service = now - min(sent, now)
            switch result {
            case .success(let response):
                // Service time: HEADERS serialized -> the socket read that completed the answer.
                let served = Self.servedBy(response.headers)
                recorder.record(latencyNanos: now - intended, serviceNanos: response.serviceNanos ?? service, status: response.status,
                                variant: served.variant, version: served.version)
            case .failure(let error):
                let message = abandoned ? "no answer within the drain time (\(plan.drainSeconds) s)" : error.message
                recorder.record(latencyNanos: now - intended, serviceNanos: service, status: nil, variant: nil, version: nil, error: message)
            }
            completed.value.add(1, ordering: .relaxed)
        }
        if schedule != nil {
            drainBacklog()
        } else if canIssue(now: now) {
            sendInClosedLoop()
        }
        finishIfDone()
    }

    /// Sends still owed to answers that arrived while sending (closed loop).
    var owedSends = 0

    /// The closed loop's next send, as a loop rather than recursion: on a closed connection a
    /// send fails at once and answers inline, and that answer sends again. With thousands of
    /// requests left that recursion overflowed the stack (the harness died with SIGSEGV when the
    /// server shut down under load).
    func sendInClosedLoop() {
        owedSends += 1
        guard owedSends == 1 else { return }
        while owedSends > 0 {
            let now = DispatchTime.now().uptimeNanoseconds
            if canIssue(now: now) { send(intended: now) }
            owedSends -= 1
        }
    }

    /// The variant and version an answer names, in one pass over its fields (HTTP/2 names are
    /// lower case): two lookups of usually absent names scanned every field twice per answer.
    static func servedBy(_ headers: HTTPFields) -> (variant: String?, version: String?) {
        var variant: String?, version: String?
        for field in headers {
            switch field.name.utf8.count {
            case 12 where field.name == "apus-variant": variant = field.value
            case 18 where field.name == "apus-model-version": version = field.value
            default: continue
            }
        }
        return (variant, version)
    }

    func finishIfDone() {
        guard !finished, stopped || (maxRequests.map { issued >= $0 } ?? false) else { return }
        if inflight == 0, backlogHead >= backlog.count {
            finished = true
            finish(recorder)
        }
    }
}

/// Answers recorded so far, across connections, for the progress line. Thread-safe.
final class ProgressCounter: Sendable {
    let value = Atomic<Int>(0)
}
