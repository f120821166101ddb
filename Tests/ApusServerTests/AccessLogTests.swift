import ApusCore
import Foundation
import XCTest

@testable import ApusServer

final class AccessLogTests: XCTestCase {
    private static func entry(target: String = "/v2/models/churn/infer", status: Int = 200, id: String? = "abc-1") -> AccessLog.Entry {
        AccessLog.Entry(unixNanos: 1_764_645_600_123_456_789, peer: "127.0.0.1:54321", method: "POST", target: target, proto: "HTTP/2",
                        status: status, bytes: 81, durationMicros: 412, requestID: id, modelVersion: "1", variant: "stable")
    }

    func testALineIsOneJSONObjectWithEveryFieldAndANewline() throws {
        let line = AccessLog.line(Self.entry())
        XCTAssertEqual(line, #"{"time":"2025-12-02T03:20:00.123Z","peer":"127.0.0.1:54321","method":"POST","path":"/v2/models/churn/infer","#
                       + #""protocol":"HTTP/2","status":200,"bytes":81,"duration_us":412,"request_id":"abc-1","model_version":"1","variant":"stable"}"#
                       + "\n")
    }

    func testQuotesBackslashesAndControlBytesInClientTextAreEscapedSoTheLineStaysOneJSONObject() throws {
        let line = AccessLog.line(Self.entry(target: "/v2/x\"y\\z\u{1}", id: "a\nb\"c"))
        XCTAssertEqual(line.filter { $0 == "\n" }.count, 1)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(object["path"] as? String, "/v2/x\"y\\z\u{1}")
        XCTAssertEqual(object["request_id"] as? String, "a\nb\"c")
    }

    func testAbsentRequestIDVersionAndVariantAreLeftOut() throws {
        var plain = Self.entry(id: nil)
        plain.modelVersion = nil
        plain.variant = nil
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(AccessLog.line(plain).utf8)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["time", "peer", "method", "path", "protocol", "status", "bytes", "duration_us"])
    }

    func testALineOfExtremeValuesStaysWithinTheRoomItReservesAndParses() throws {
        // Every text all escapes (six bytes each), the largest numbers, a far-off year: a line
        // longer than its reserved room would trap when the unused room is removed.
        let escapes = String(repeating: "\u{1}", count: 2000)
        let extreme = AccessLog.Entry(unixNanos: Int64.max, peer: escapes, method: escapes, target: escapes, proto: escapes,
                                      status: Int.max, bytes: Int.max, durationMicros: UInt64.max, requestID: escapes,
                                      modelVersion: escapes, variant: escapes, forwardedFor: escapes, traceparent: escapes)
        let line = AccessLog.line(extreme)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(object["traceparent"] as? String, escapes)
        XCTAssertEqual((object["duration_us"] as? NSNumber)?.uint64Value, UInt64.max)
        XCTAssertTrue((object["time"] as? String)?.hasPrefix("2262-04-11T23:47:16.854") ?? false, "\(object["time"] ?? "")")
    }

    func testTimestampsAreRFC3339UTCWithMilliseconds() {
        XCTAssertEqual(AccessLog.timestamp(unixNanos: 0), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(AccessLog.timestamp(unixNanos: 951_782_400_999_999_999), "2000-02-29T00:00:00.999Z")
        XCTAssertEqual(AccessLog.timestamp(unixNanos: -1), "1969-12-31T23:59:59.999Z")
    }

    func testLinesWaitInTheBufferUntilItFillsOrIsFlushedAndLeaveWholeAndInOrder() {
        let writes = CapturedWrites()
        let lineBytes = AccessLog.line(Self.entry()).utf8.count
        let log = AccessLog(flushBytes: 3 * lineBytes, output: writes.output)
        log.record(Self.entry(status: 200))
        log.record(Self.entry(status: 201))
        XCTAssertEqual(writes.all, [], "under the threshold nothing is written")
        log.record(Self.entry(status: 202))
        XCTAssertEqual(writes.all.count, 1, "the third line fills the buffer: one write")
        log.record(Self.entry(status: 203))
        log.flush()
        log.flush()
        XCTAssertEqual(writes.all.count, 2, "an empty buffer is not written")
        let lines = writes.all.joined().split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 4)
        XCTAssertEqual(lines.compactMap { line in ["200", "201", "202", "203"].first { line.contains("\"status\":\($0),") } },
                       ["200", "201", "202", "203"])
    }

    func testLinesFromManyThreadsAreAllWrittenWhole() {
        let writes = CapturedWrites()
        let log = AccessLog(flushBytes: 1000, output: writes.output)
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for i in 0..<250 { log.record(Self.entry(id: "t\(thread)-\(i)")) }
        }
        log.flush()
        let lines = writes.all.joined().split(separator: "\n")
        XCTAssertEqual(lines.count, 2000)
        XCTAssertEqual(Set(lines.map { String($0) }).count, 2000)
        for line in lines { XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(line.utf8))) }
    }

    // MARK: The responder

    private final class CapturingSink: ResponseSink {
        let responses = Locked<[Response]>([])
        func complete(_ response: Response, token: Int64) { responses.withLock { $0.append(response) } }
    }

    private func serve(_ handler: @escaping Router.Handler, method: String = "POST", target: String = "/v2/models/churn/infer",
                       version: Request.Version = .http2, headers: HTTPFields = HTTPFields(), arrival: UInt64 = MonotonicClock.nanoseconds())
        -> (lines: [[String: Any]], answers: [Response]) {
        let writes = CapturedWrites()
        let log = AccessLog(flushBytes: 1 << 20, output: writes.output)
        let responder = AccessLogResponder(Router(routes: [], prefixes: [("/", handler)]), log: log)
        let sink = CapturingSink()
        responder.respond(to: Request(method: method, target: target, headers: headers, version: version),
                          context: RequestContext(remoteAddress: "10.0.0.7:4000", arrivalNanos: arrival),
                          writer: ResponseWriter(sink: sink, token: 7))
        log.flush()
        let lines = writes.all.joined().split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        return (lines, sink.responses.withLock { $0 })
    }

    func testAnAnswerIsLoggedWithItsRequestItsProxyAndTraceHeadersAndItsServedHeadersAndPassedOnUnchanged() throws {
        let answer = Response(status: 200, headers: HTTPFields([("x-request-id", "r-9"), ("apus-model-version", "2"), ("apus-variant", "canary")]),
                              body: Array("0123456789".utf8))
        let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let (lines, answers) = serve({ _, _, writer in writer.complete(answer) }, target: "/v2/models/churn/infer?debug=1", version: .http1_1,
                                     headers: HTTPFields([("X-Forwarded-For", "203.0.113.9"), ("traceparent", trace)]),
                                     arrival: MonotonicClock.nanoseconds() - 3_000_000)
        XCTAssertEqual(answers, [answer])
        let line = try XCTUnwrap(lines.first)
        XCTAssertEqual(lines.count, 1)
        XCTAssertEqual(line["path"] as? String, "/v2/models/churn/infer?debug=1")
        XCTAssertEqual(line["protocol"] as? String, "HTTP/1.1")
        XCTAssertEqual(line["peer"] as? String, "10.0.0.7:4000")
        XCTAssertEqual(line["method"] as? String, "POST")
        XCTAssertEqual(line["status"] as? Int, 200)
        XCTAssertEqual(line["bytes"] as? Int, 10)
        XCTAssertEqual(line["request_id"] as? String, "r-9")
        XCTAssertEqual(line["model_version"] as? String, "2")
        XCTAssertEqual(line["variant"] as? String, "canary")
        XCTAssertEqual(line["forwarded_for"] as? String, "203.0.113.9")
        XCTAssertEqual(line["traceparent"] as? String, trace)
        let duration = try XCTUnwrap(line["duration_us"] as? Int)
        XCTAssertGreaterThanOrEqual(duration, 3000, "counted from the request's arrival, not from the route")
    }

    func testASecondAnswerToTheSameRequestIsPassedOnButNotLoggedAgain() {
        let (lines, answers) = serve({ _, _, writer in
            writer.complete(Response(status: 504))
            writer.complete(Response(status: 200))
        })
        XCTAssertEqual(answers.map(\.status), [504, 200], "the transport, not the log, drops the second")
        XCTAssertEqual(lines.map { $0["status"] as? Int }, [504])
    }

    func testAHeadAnswerLogsNoBodyBytesSinceNoneIsSent() {
        let (lines, _) = serve({ _, _, writer in writer.complete(Response(status: 200, body: Array("abc".utf8))) }, method: "HEAD", target: "/v2")
        XCTAssertEqual(lines.first?["bytes"] as? Int, 0)
    }

    func testAnAnswerGivenLaterFromAnotherThreadIsLoggedWhenItIsGiven() {
        let given = expectation(description: "answered")
        let writes = CapturedWrites()
        let log = AccessLog(flushBytes: 1, output: writes.output)
        let responder = AccessLogResponder(Router(routes: [], prefixes: [("/", { _, _, writer in
            DispatchQueue.global().async {
                writer.complete(Response(status: 429))
                given.fulfill()
            }
        })]), log: log)
        responder.respond(to: Request(method: "GET", target: "/x", headers: HTTPFields(), version: .http2),
                          context: RequestContext(remoteAddress: "p"), writer: ResponseWriter(sink: CapturingSink(), token: 1))
        wait(for: [given], timeout: 10)
        XCTAssertEqual(writes.all.count, 1)
        XCTAssertTrue(writes.all.first?.contains("\"status\":429") ?? false)
    }
}
