/// The one error type of Apus: a code, a human message naming the offending field, and an
/// optional underlying cause.
///
/// The code alone decides the HTTP status (`Code.httpStatus`), so the mapping lives in one place.
/// Value type, `Sendable`.
public struct ApusError: Error, Sendable, CustomStringConvertible {
    /// Stable machine-readable codes; the string form goes into error bodies and logs.
    public enum Code: String, Sendable, CaseIterable {
        case badRequest = "bad_request"
        case notFound = "not_found"
        case methodNotAllowed = "method_not_allowed"
        case requestTimeout = "request_timeout"
        case payloadTooLarge = "payload_too_large"
        case unsupportedMediaType = "unsupported_media_type"
        case headersTooLarge = "headers_too_large"
        case tooManyRequests = "too_many_requests"
        case internalError = "internal"
        case unavailable = "unavailable"
        case deadlineExceeded = "deadline_exceeded"

        /// The HTTP status for this code: the single place errors map to statuses.
        public var httpStatus: Int {
            switch self {
            case .badRequest: 400
            case .notFound: 404
            case .methodNotAllowed: 405
            case .requestTimeout: 408
            case .payloadTooLarge: 413
            case .unsupportedMediaType: 415
            case .headersTooLarge: 431
            case .tooManyRequests: 429
            case .internalError: 500
            case .unavailable: 503
            case .deadlineExceeded: 504
            }
        }
    }

    public var code: Code
    public var message: String
    public var cause: (any Error & Sendable)?
    /// Set for 429/503 answers so clients back off instead of hammering.
    public var retryAfterSeconds: Int?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil, retryAfterSeconds: Int? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String {
        if let cause { return "\(code.rawValue): \(message) (cause: \(cause))" }
        return "\(code.rawValue): \(message)"
    }

    /// `{"error":"...","code":"..."}`, with the message JSON-escaped.
    public var jsonBody: String {
        "{\"error\":\(JSONString.quote(message)),\"code\":\"\(code.rawValue)\"}"
    }
}
