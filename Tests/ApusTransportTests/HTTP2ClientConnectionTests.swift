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

/// Never answers `/stall` (and records that its request was cancelled); answers anything else.
final class StallingResponder: Responder, @unchecked Sendable {
    let cancelled = Locked(0)

    func respond(to request: Request, context: RequestContext, writer: ResponseWriter) {
        guard request.path == "/stall" else { return writer.complete(.text(200, "ok")) }
        let cancelled = self.cancelled
        context.onCancel { cancelled.withLock { $0 += 1 } }
        // The writer is dropped unanswered: the client's timeout must end the wait.
    }
}

final class HTTP2ClientConnectionTests: XCTestCase {
    func testARequestPastItsTimeoutFailsResetsItsStreamAndTheConnectionGoesOn() async throws {
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        configuration.threads = 1
        let responder = StallingResponder()
        let server = HTTPServer(configuration: configuration, responder: responder, logger: Logger(label: "test"))
        let port = try await server.start()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let connection = try await HTTP2ClientConnection.connect(host: "127.0.0.1", port: port, group: group)
        let started = ContinuousClock.now
        do {
            _ = try await connection.send(ClientRequest(method: "GET", path: "/stall", timeout: .milliseconds(100)))
            XCTFail("a stalled request was answered")
        } catch let error as ApusError {
            XCTAssertEqual(error.code, .deadlineExceeded)
            XCTAssertEqual(error.message, "no answer within 100 ms")
        }
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - started, .milliseconds(100))
        // The same connection still answers, and the server was told to drop the stalled work.
        let response = try await connection.send(ClientRequest(method: "GET", path: "/ok", timeout: .seconds(10)))
        XCTAssertEqual(response.status, 200)
        for _ in 0..<200 where responder.cancelled.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(10)) }
        XCTAssertEqual(responder.cancelled.withLock { $0 }, 1, "the server saw the stream reset")
        // A request answered in time leaves no timer behind: the next request takes its slot, and
        // is failed by its own timeout (1000 ms), not by the answered one's (200 ms).
        let quick = try await connection.send(ClientRequest(method: "GET", path: "/ok", timeout: .milliseconds(200)))
        XCTAssertEqual(quick.status, 200)
        do {
            _ = try await connection.send(ClientRequest(method: "GET", path: "/stall", timeout: .milliseconds(1000)))
            XCTFail("a stalled request was answered")
        } catch let error as ApusError {
            XCTAssertEqual(error.message, "no answer within 1000 ms")
        }
        await connection.close()
        await server.shutdown()
        try await group.shutdownGracefully()
    }

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
