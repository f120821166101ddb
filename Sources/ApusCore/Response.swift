/// One HTTP response. The transport adds framing headers (`content-length`, `date`,
/// `connection`) itself; handlers set status, content headers and body.
///
/// Value type, `Sendable`: built on a worker thread, written on the connection's event loop.
public struct Response: Sendable, Equatable {
    public var status: Int
    public var headers: HTTPFields
    public var body: [UInt8]

    public init(status: Int, headers: HTTPFields = HTTPFields(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A UTF-8 text response.
    public static func text(_ status: Int, _ text: String, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: HTTPFields([("content-type", contentType)]), body: Array(text.utf8))
    }

    /// A JSON response from already-serialised JSON text.
    public static func json(_ status: Int, _ json: String) -> Response {
        text(status, json, contentType: "application/json")
    }

    /// The error body every route uses: `{"error": "<message>", "code": "<code>"}`.
    public static func error(_ error: ApusError) -> Response {
        var response = json(error.code.httpStatus, error.jsonBody)
        if let retry = error.retryAfterSeconds {
            response.headers.appendLowercased(name: "retry-after", value: String(retry))
        }
        return response
    }
}
