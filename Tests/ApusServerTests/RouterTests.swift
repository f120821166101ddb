import ApusCore
import XCTest

@testable import ApusServer

final class RouterTests: XCTestCase {
    /// Which handler answered (its name as the body), or the error status.
    private func route(_ router: Router, _ method: String, _ target: String) -> Response {
        let sink = CapturingSink()
        router.respond(to: Request(method: method, target: target, headers: HTTPFields(), version: .http2),
                       context: RequestContext(remoteAddress: "test"), writer: ResponseWriter(sink: sink, token: 0))
        return sink.response.withLock { $0 } ?? Response(status: 0)
    }

    private func named(_ name: String) -> Router.Handler {
        { _, _, writer in writer.complete(Response(status: 200, body: Array(name.utf8))) }
    }

    private func makeRouter() -> Router {
        Router(routes: [("GET", "/v2/health/live", named("live")), ("GET", "/v2/health/ready", named("ready")),
                        ("POST", "/v2/health/ready", named("ready-post")), ("GET", "/v2", named("server"))],
               prefixes: [("/v2/", named("v2-prefix")), ("/v2/models/", named("models")), ("/predict/", named("predict"))])
    }

    private func body(_ response: Response) -> String { String(decoding: response.body, as: UTF8.self) }

    /// Each (method, target) is answered by the handler named.
    private func assertRoutes(_ cases: [(String, String, String)], file: StaticString = #filePath, line: UInt = #line) {
        let router = makeRouter()
        for (method, target, handler) in cases {
            XCTAssertEqual(body(route(router, method, target)), handler, "\(method) \(target)", file: file, line: line)
        }
    }

    func testExactPathsWinOverPrefixesAndPathsOfTheSameLengthAreToldApart() {
        assertRoutes([
            ("GET", "/v2/health/live", "live"),
            // Same length as /v2/health/live, not an exact route: the prefix takes it.
            ("GET", "/v2/health/lime", "v2-prefix"),
            ("GET", "/v2/health/ready", "ready"), ("POST", "/v2/health/ready", "ready-post"), ("GET", "/v2", "server"),
        ])
    }

    func testTheLongestMatchingPrefixWins() {
        assertRoutes([
            ("POST", "/v2/models/churn/infer", "models"), ("GET", "/v2/repository/index", "v2-prefix"), ("POST", "/predict/churn", "predict"),
            // Exactly the prefix, and a long non-ASCII path under it.
            ("GET", "/v2/models/", "models"), ("POST", "/v2/models/m\u{00E9}t\u{00E9}o-\u{65E5}\u{672C}/infer", "models"),
        ])
    }

    func testPathsShorterThanOrDifferingFromEveryPrefixAre404() {
        let router = makeRouter()
        for target in ["/", "/v", "/v2x", "/predict", "/predicT/x", "", "/V2/models/churn/infer"] {
            let response = route(router, "GET", target)
            XCTAssertEqual(response.status, 404, target)
            XCTAssertTrue(body(response).contains("no route"), target)
        }
    }

    func testAKnownPathWithAnotherMethodIs405ListingTheAllowedOnesAndHeadIsGet() {
        let router = makeRouter()
        let response = route(router, "DELETE", "/v2/health/ready")
        XCTAssertEqual(response.status, 405)
        XCTAssertEqual(response.headers[lowercased: "allow"], "GET, POST")
        XCTAssertEqual(body(route(router, "HEAD", "/v2/health/live")), "live")
    }
}

private final class CapturingSink: ResponseSink {
    let response = Locked<Response?>(nil)

    func complete(_ response: Response, token: Int64) {
        self.response.withLock { $0 = $0 ?? response }
    }
}
