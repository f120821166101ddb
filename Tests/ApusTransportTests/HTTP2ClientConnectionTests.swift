import ApusCore
import ApusTransport
import Logging
import NIOPosix
import XCTest

/// Answers with what it received: method, path, one header and the body's length.
struct EchoResponder: Responder {
    func respond(to request: Request, context: RequestContext, writer: ResponseWriter) {
        writer.complete(.text(200, "\(request.method) \(request.path) tag=\(request.headers["x-tag"] ?? "-") body=\(request.body.count)"))
    }
}

final class HTTP2ClientConnectionTests: XCTestCase {
    /// The client reuses a request's header block when the next request is the same; a request
    /// that differs in any part must still go out as itself.
    func testConsecutiveRequestsArriveAsSentWhetherTheyRepeatOrDiffer() async throws {
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        configuration.threads = 1
        let server = HTTPServer(configuration: configuration, responder: EchoResponder(), logger: Logger(label: "test"))
        let port = try await server.start()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let connection = try await HTTP2ClientConnection.connect(host: "127.0.0.1", port: port, group: group)
        let tagged = HTTPFields([("x-tag", "a")])
        let requests: [(ClientRequest, String)] = [
            (ClientRequest(method: "GET", path: "/one"), "GET /one tag=- body=0"),
            (ClientRequest(method: "GET", path: "/one"), "GET /one tag=- body=0"),
            (ClientRequest(method: "GET", path: "/two"), "GET /two tag=- body=0"),
            (ClientRequest(method: "POST", path: "/two", headers: tagged, body: [1, 2, 3]), "POST /two tag=a body=3"),
            (ClientRequest(method: "POST", path: "/two", headers: tagged, body: [1, 2, 3]), "POST /two tag=a body=3"),
            (ClientRequest(method: "POST", path: "/two", headers: tagged, body: [1, 2, 3, 4]), "POST /two tag=a body=4"),
            (ClientRequest(method: "POST", path: "/two", headers: HTTPFields([("x-tag", "b")]), body: [1, 2, 3, 4]), "POST /two tag=b body=4"),
            (ClientRequest(method: "POST", path: "/two", body: [1]), "POST /two tag=- body=1"),
            (ClientRequest(method: "GET", path: "/one"), "GET /one tag=- body=0"),
        ]
        for (request, expected) in requests {
            let response = try await connection.send(request)
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(String(decoding: response.body, as: UTF8.self), expected)
        }
        await connection.close()
        await server.shutdown()
        try await group.shutdownGracefully()
    }
}
