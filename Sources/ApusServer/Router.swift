import ApusCore

/// Maps method + path to a handler: exact paths first, then path prefixes whose handlers parse
/// the rest (model routes carry names and versions in the path). The tables are built once at
/// start and read without locks on every request. They are short lists scanned in order: a
/// handful of string comparisons (most paths are small strings, compared as two words) costs
/// less than hashing the path and the method for dictionary lookups on every request.
///
/// Unknown path: 404; known exact path, other method: 405 with `allow`. Thread-safe (immutable).
public struct Router: Responder {
    public typealias Handler = @Sendable (Request, RequestContext, ResponseWriter) -> Void

    private let routes: [(path: String, methods: [(method: String, handler: Handler)])]
    private let prefixes: [(prefix: String, handler: Handler)]

    public init(routes: [(method: String, path: String, handler: Handler)], prefixes: [(prefix: String, handler: Handler)] = []) {
        var table: [(path: String, methods: [(method: String, handler: Handler)])] = []
        for route in routes {
            if let i = table.firstIndex(where: { $0.path == route.path }) {
                // A later registration of the same method and path replaces the earlier one.
                table[i].methods.removeAll { $0.method == route.method }
                table[i].methods.append((route.method, route.handler))
            } else {
                table.append((route.path, [(route.method, route.handler)]))
            }
        }
        self.routes = table
        // Longest prefix first, so a more specific prefix wins.
        self.prefixes = prefixes.sorted { $0.prefix.utf8.count > $1.prefix.utf8.count }
    }

    public func respond(to request: Request, context: RequestContext, writer: ResponseWriter) {
        guard let byMethod = routes.first(where: { $0.path == request.path })?.methods else {
            for route in prefixes where request.path.hasPrefix(route.prefix) {
                route.handler(request, context, writer)
                return
            }
            writer.complete(.error(ApusError(.notFound, "no route for \(request.path)")))
            return
        }
        // HEAD is answered like GET; the transport sends no body for it.
        let method = request.method == "HEAD" ? "GET" : request.method
        guard let handler = byMethod.first(where: { $0.method == method })?.handler else {
            var response = Response.error(ApusError(.methodNotAllowed, "\(request.method) is not allowed on \(request.path)"))
            response.headers.add(name: "allow", value: byMethod.map(\.method).sorted().joined(separator: ", "))
            writer.complete(response)
            return
        }
        handler(request, context, writer)
    }
}
