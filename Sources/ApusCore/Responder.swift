/// Answers requests. The transport calls `respond` on the connection's event loop thread; an
/// implementation must not block it: it either answers at once or hands the work elsewhere and
/// calls `writer.complete` later from any thread.
///
/// Implementations are shared by every connection, hence `Sendable`.
public protocol Responder: Sendable {
    func respond(to request: Request, context: RequestContext, writer: ResponseWriter)
}

/// The one-shot channel back to the connection. Calling `complete` more than once is ignored
/// after the first call (the transport guards it); calling it from any thread is safe.
public struct ResponseWriter: Sendable {
    private let body: @Sendable (Response) -> Void

    public init(_ body: @escaping @Sendable (Response) -> Void) { self.body = body }

    public func complete(_ response: Response) { body(response) }
}
