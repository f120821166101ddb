import ApusCore

/// Maps method + path to a handler. Exact paths only for now; the table is built once at start
/// and read without locks on every request (immutable after `init`).
///
/// Unknown path: 404; known path, other method: 405 with `allow`. Thread-safe (immutable).
public struct Router: Responder {
    public typealias Handler = @Sendable (Request, RequestContext, ResponseWriter) -> Void

    private let routes: [String: [String: Handler]]

    public init(routes: [(method: String, path: String, handler: Handler)]) {
        var table: [String: [String: Handler]] = [:]
        for route in routes { table[route.path, default: [:]][route.method] = route.handler }
        self.routes = table
    }

    public func respond(to request: Request, context: RequestContext, writer: ResponseWriter) {
        guard let byMethod = routes[request.path] else {
            writer.complete(.error(ApusError(.notFound, "no route for \(request.path)")))
            return
        }
        // HEAD is answered like GET; the transport sends no body for it.
        let method = request.method == "HEAD" ? "GET" : request.method
        guard let handler = byMethod[method] else {
            var response = Response.error(ApusError(.methodNotAllowed, "\(request.method) is not allowed on \(request.path)"))
            response.headers.add(name: "allow", value: byMethod.keys.sorted().joined(separator: ", "))
            writer.complete(response)
            return
        }
        handler(request, context, writer)
    }
}
