import ApusCore
import ApusTransport
import Logging
import NIOCore

/// Wires the transport to the routes: the whole server as one object, used by `apus serve` and by
/// in-process tests.
///
/// Lifecycle: `start()` then `stop(drainTimeout:)`; readiness is true between the two.
/// Thread-safe.
public final class Application: Sendable {
    public let server: HTTPServer
    public let readiness = Readiness()

    public init(configuration: HTTPServer.Configuration, logger: Logger) {
        let readiness = self.readiness
        let router = Router(routes: HealthRoutes.routes(readiness: readiness))
        self.server = HTTPServer(configuration: configuration, responder: router, logger: logger)
    }

    /// Binds; returns the port. Ready from here on.
    @discardableResult
    public func start() async throws -> Int {
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
