import ApusCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Maps method + path to a handler: exact paths first, then path prefixes whose handlers parse
/// the rest (model routes carry names and versions in the path). The tables are built once at
/// start and read without locks on every request. They are short lists scanned in order: a
/// handful of string comparisons (most paths are small strings, compared as two words) costs
/// less than hashing the path and the method for dictionary lookups on every request.
///
/// Unknown path: 404; known exact path, other method: 405 with `allow`. Thread-safe (immutable).
public struct Router: Responder {
    public typealias Handler = @Sendable (Request, RequestContext, ResponseWriter) -> Void

    private let routes: [(path: String, length: Int, methods: [(method: String, handler: Handler)])]
    /// Prefixes as UTF-8 bytes: matched with one `memcmp` (`String.hasPrefix` compares by
    /// grapheme and cost as much as the rest of the routing; every prefix is ASCII).
    private let prefixes: [(prefix: [UInt8], handler: Handler)]

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
        // The length first: most paths differ from most routes in length, which compares at once.
        self.routes = table.map { ($0.path, $0.path.utf8.count, $0.methods) }
        // Longest prefix first, so a more specific prefix wins.
        self.prefixes = prefixes.sorted { $0.prefix.utf8.count > $1.prefix.utf8.count }.map { (Array($0.prefix.utf8), $0.handler) }
    }

    public func respond(to request: Request, context: RequestContext, writer: ResponseWriter) {
        let length = request.path.utf8.count
        guard let byMethod = routes.first(where: { $0.length == length && $0.path == request.path })?.methods else {
            for route in prefixes where Self.hasPrefix(request.path, route.prefix) {
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

    /// Whether `path`'s UTF-8 starts with `prefix`.
    private static func hasPrefix(_ path: String, _ prefix: [UInt8]) -> Bool {
        guard path.utf8.count >= prefix.count else { return false }
        let compared: Bool? = path.utf8.withContiguousStorageIfAvailable { bytes in
            prefix.withUnsafeBufferPointer { expected in
                guard let a = bytes.baseAddress, let b = expected.baseAddress else { return expected.isEmpty }
                return memcmp(a, b, expected.count) == 0
            }
        }
        return compared ?? path.utf8.starts(with: prefix)
    }
}
