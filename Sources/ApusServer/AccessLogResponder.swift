import ApusCore
import Synchronization

/// Routes every request through `inner` and records its answer in an access log.
///
/// Each request gets its own sink that notes the answer and forwards it to the transport's
/// writer, so any route, answered on any thread, is logged once, when it answers. Requests the
/// transport refuses itself (oversized headers or bodies, malformed HTTP/2 header blocks,
/// timeouts) never reach a route and are not logged; `/metrics` counts them. Thread-safe
/// (immutable).
public struct AccessLogResponder: Responder {
    private let inner: any Responder
    private let log: AccessLog

    public init(_ inner: any Responder, log: AccessLog) {
        self.inner = inner
        self.log = log
    }

    public func respond(to request: Request, context: RequestContext, writer: ResponseWriter) {
        let sink = Sink(request: request, context: context, writer: writer, log: log)
        inner.respond(to: request, context: context, writer: ResponseWriter(sink: sink, token: 0))
    }

    /// One request's way back: logs the first answer and passes it on (later ones only pass on,
    /// and the transport ignores them).
    private final class Sink: ResponseSink {
        private let method: String
        private let target: String
        private let proto: String
        private let forwardedFor: String?
        private let traceparent: String?
        private let context: RequestContext
        private let writer: ResponseWriter
        private let log: AccessLog
        private let answered = Atomic<Bool>(false)

        init(request: Request, context: RequestContext, writer: ResponseWriter, log: AccessLog) {
            method = request.method
            target = request.query.isEmpty ? request.path : request.path + "?" + request.query
            proto = request.version.rawValue
            forwardedFor = request.headers[lowercased: "x-forwarded-for"]
            traceparent = request.headers[lowercased: "traceparent"]
            self.context = context
            self.writer = writer
            self.log = log
        }

        func complete(_ response: Response, token: Int64) {
            if !answered.exchange(true, ordering: .relaxed) {
                let now = MonotonicClock.nanoseconds()
                log.record(AccessLog.Entry(
                    unixNanos: AccessLog.unixNanosNow(), peer: context.remoteAddress, method: method, target: target, proto: proto,
                    status: response.status, bytes: method == "HEAD" ? 0 : response.body.count,
                    durationMicros: now >= context.arrivalNanos ? (now - context.arrivalNanos) / 1000 : 0,
                    requestID: response.headers[lowercased: "x-request-id"], modelVersion: response.headers[lowercased: "apus-model-version"],
                    variant: response.headers[lowercased: "apus-variant"], forwardedFor: forwardedFor, traceparent: traceparent))
            }
            writer.complete(response)
        }
    }
}
