/// Answers requests. The transport calls `respond` on the connection's event loop thread; an
/// implementation must not block it: it either answers at once or hands the work elsewhere and
/// calls `writer.complete` later from any thread.
///
/// Implementations are shared by every connection, hence `Sendable`.
public protocol Responder: Sendable {
    func respond(to request: Request, context: RequestContext, writer: ResponseWriter)
}

/// Where a connection takes its answers. One per connection (not per request), so answering
/// allocates nothing; `token` tells the connection which request is answered. Implementations
/// must accept calls from any thread and ignore a token answered before.
public protocol ResponseSink: AnyObject, Sendable {
    func complete(_ response: Response, token: Int64)
}

/// The one-shot channel back to the connection. Calling `complete` more than once is ignored
/// after the first call (the transport guards it); calling it from any thread is safe.
public struct ResponseWriter: Sendable {
    private let sink: any ResponseSink
    private let token: Int64

    public init(sink: any ResponseSink, token: Int64) {
        self.sink = sink
        self.token = token
    }

    public func complete(_ response: Response) { sink.complete(response, token: token) }
}
