import ApusCore

/// KServe v2 / Open Inference Protocol health endpoints.
///
/// `GET /v2/health/live`: 200 `{"live":true}` while the process runs (Kubernetes liveness).
/// `GET /v2/health/ready`: 200 `{"ready":true}` when `Readiness` says so, else 503
/// `{"ready":false}` (Kubernetes readiness: no traffic before models load or during drain).
public enum HealthRoutes {
    static let live = Response.json(200, "{\"live\":true}")
    static let ready = Response.json(200, "{\"ready\":true}")
    static let notReady = Response.json(503, "{\"ready\":false}")

    public static func routes(readiness: Readiness) -> [(method: String, path: String, handler: Router.Handler)] {
        [
            ("GET", "/v2/health/live", { _, _, writer in writer.complete(live) }),
            ("GET", "/v2/health/ready", { _, _, writer in writer.complete(readiness.isReady ? ready : notReady) }),
            // KServe v1 and Triton spell the server probes this way too; Kubernetes users copy both.
            ("GET", "/v2", { _, _, writer in writer.complete(.json(200, "{\"name\":\"apus\",\"version\":\"\(ApusVersion.string)\",\"extensions\":[]}")) }),
        ]
    }
}

/// The server's version, reported by `/v2` and `apus --version`.
public enum ApusVersion {
    public static let string = "0.1.0"
}
