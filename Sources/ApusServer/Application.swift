import ApusCore
import ApusInference
import ApusMetrics
import ApusSplit
import Dispatch
import ApusTransport
import Logging
import NIOCore

/// Wires the model repository, the inference service and the transport: the whole server as one
/// object, used by `apus serve` and by in-process tests.
///
/// Lifecycle: `start()` (loads the repository, binds, then ready) and `stop(drainTimeout:)`;
/// readiness is true between the two. Thread-safe.
public final class Application: Sendable {
    public let server: HTTPServer
    /// Every route, as the transport calls it (also driven directly by `apus bench-route`).
    public let responder: any Responder
    public let readiness = Readiness()
    public let repository: ModelRepository?
    public let service: InferenceService?

    public let metrics: ServerMetrics?

    /// `repository`: nil serves only the health routes (transport tests). `accessLog`: every
    /// answered request is recorded there (nil: no access log).
    public init(configuration: HTTPServer.Configuration, repository: ModelRepository? = nil,
                splitter: TrafficSplitter? = nil, metrics: ServerMetrics? = nil,
                outcomes: OutcomeTracker? = nil, canary: CanaryController? = nil,
                extraRoutes: [(method: String, path: String, handler: Router.Handler)] = [],
                accessLog: AccessLog? = nil, logger: Logger) {
        let readiness = self.readiness
        self.repository = repository
        self.metrics = metrics
        var prefixes: [(prefix: String, handler: Router.Handler)] = []
        if let repository {
            let service = InferenceService(repository: repository)
            self.service = service
            let observers: [any RequestObserver] = [metrics as (any RequestObserver)?, canary as (any RequestObserver)?].compactMap { $0 }
            prefixes = InferenceRoutes(service: service, splitter: splitter, observer: observers.isEmpty ? nil : RequestObservers(observers),
                                       outcomes: outcomes, canary: canary, maxBodyBytes: configuration.limits.maxBodyBytes).prefixRoutes()
        } else {
            self.service = nil
        }
        let stats = TransportStats()
        var routes = HealthRoutes.routes(readiness: readiness) + extraRoutes
        if let metrics {
            routes.append(("GET", "/metrics", { _, _, writer in
                // Rendering reads /proc and walks the repository: off the event loop.
                DispatchQueue.global(qos: .utility).async {
                    let body = metrics.render(repository: repository, transport: stats, splitter: splitter, outcomes: outcomes, canary: canary)
                    writer.complete(Response(status: 200, headers: HTTPFields([("content-type", "text/plain; version=0.0.4; charset=utf-8")]), body: body))
                }
            }))
        }
        let router = Router(routes: routes, prefixes: prefixes)
        let responder: any Responder = accessLog.map { AccessLogResponder(router, log: $0) } ?? router
        self.responder = responder
        self.server = HTTPServer(configuration: configuration, responder: responder, logger: logger, stats: stats)
    }

    /// Loads the repository, binds; returns the port. Ready from here on.
    @discardableResult
    public func start() async throws -> Int {
        repository?.reload()
        let port = try await server.start()
        readiness.set(true)
        return port
    }

    /// Not ready any more, drain connections (at most `drainTimeout`), stop the loops.
    public func stop(drainTimeout: TimeAmount) async {
        readiness.set(false)
        await server.drain(timeout: drainTimeout)
        await server.shutdown()
    }
}
