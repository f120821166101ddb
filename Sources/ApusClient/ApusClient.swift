import ApusCore
import ApusInference
import ApusRuntime
import ApusTransport
import ApusWire
import NIOCore
import NIOPosix
import Synchronization

/// The Apus client library: inference and model calls over h2c (prior knowledge) with
/// connection reuse and many concurrent streams per connection, protobuf or KServe JSON.
///
/// `connections` HTTP/2 connections are opened lazily and used round-robin; a connection that
/// closed or received GOAWAY is replaced on the next call. Every call waits at most
/// `requestTimeout` for its answer (a stalled server fails it with `deadlineExceeded` and its
/// stream is reset; the connection goes on); an `infer` with `timeoutMilliseconds` waits that
/// long plus a second for the server's own 504 instead. Thread-safe; calls may overlap freely.
public final class ApusClient: Sendable {
    public let host: String
    public let port: Int
    public let format: WireFormat
    /// The longest wait for an answer; nil: no limit.
    public let requestTimeout: TimeAmount?
    private let group: any EventLoopGroup
    private let ownsGroup: Bool
    private let slots: Locked<[HTTP2ClientConnection?]>
    private let slotCount: Int
    private let next = Atomic<Int>(0)

    public init(host: String = "127.0.0.1", port: Int, connections: Int = 1, format: WireFormat = .protobuf, group: (any EventLoopGroup)? = nil,
                requestTimeout: TimeAmount? = .seconds(30)) {
        self.host = host
        self.port = port
        self.format = format
        self.requestTimeout = requestTimeout
        if let group {
            self.group = group
            ownsGroup = false
        } else {
            self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            ownsGroup = true
        }
        slotCount = max(1, connections)
        slots = Locked(Array(repeating: nil, count: max(1, connections)))
    }

    /// A usable connection (opened or replaced as needed).
    public func connection() async throws -> HTTP2ClientConnection {
        let index = next.wrappingAdd(1, ordering: .relaxed).oldValue % slotCount
        if let existing = slots.withLock({ $0[index] }), await existing.isUsable { return existing }
        let fresh = try await HTTP2ClientConnection.connect(host: host, port: port, group: group)
        let stale = slots.withLock { slots -> HTTP2ClientConnection? in
            defer { slots[index] = fresh }
            return slots[index]
        }
        if let stale { await stale.close() }
        return fresh
    }

    /// Runs inference. `version`: a number or label; nil: the model's default (or its A/B split).
    public func infer(model: String, version: VersionSelector? = nil, inputs: [InferRequest.Input], routingKey: String? = nil,
                      id: String? = nil, outputs: [String] = [], timeoutMilliseconds: Int? = nil) async throws -> InferResponse {
        let request = InferRequest(model: model, version: version, id: id, routingKey: routingKey, inputs: inputs,
                                   requestedOutputs: Dictionary(uniqueKeysWithValues: outputs.map { ($0, false) }))
        var headers = HTTPFields([("content-type", format.contentType), ("accept", format.contentType)])
        if let routingKey { headers.add(name: "apus-routing-key", value: routingKey) }
        if let timeoutMilliseconds { headers.add(name: "apus-timeout-ms", value: String(timeoutMilliseconds)) }
        let wait = timeoutMilliseconds.map(Self.answerWait)
        let response = try await send(ClientRequest(method: "POST", path: ClientCodec.inferPath(model: model, version: version),
                                                    authority: "\(host):\(port)", headers: headers, body: ClientCodec.encodeRequest(request, format: format),
                                                    timeout: wait ?? requestTimeout))
        var answer = try ClientCodec.decodeResponse(status: response.status, contentType: response.headers["content-type"], body: response.body,
                                                    headerLength: response.headers["inference-header-content-length"].flatMap { Int($0) })
        if answer.variant == nil { answer.variant = response.headers["apus-variant"] }
        return answer
    }

    /// How long to wait for an answer to a request with a server-side deadline: the server
    /// answers 504 once the deadline passes; a second more covers the trip back.
    public static func answerWait(deadlineMilliseconds: Int) -> TimeAmount {
        .milliseconds(Int64(max(deadlineMilliseconds, 0)) + 1000)
    }

    /// A raw request on one of the pooled connections.
    public func send(_ request: ClientRequest) async throws -> ClientResponse {
        var request = request
        if request.timeout == nil { request.timeout = requestTimeout }
        return try await connection().send(request)
    }

    /// GET a path and return status and body text (health, metadata, metrics).
    public func get(_ path: String) async throws -> (status: Int, body: String) {
        let response = try await send(ClientRequest(method: "GET", path: path, authority: "\(host):\(port)"))
        return (response.status, String(decoding: response.body, as: UTF8.self))
    }

    public func close() async {
        let all = slots.withLock { slots -> [HTTP2ClientConnection?] in
            defer { slots = Array(repeating: nil, count: slots.count) }
            return slots
        }
        for connection in all.compactMap({ $0 }) { await connection.close() }
        if ownsGroup { try? await group.shutdownGracefully() }
    }
}
