import ApusCore
import ApusInference
import ApusRuntime
import ApusSplit
import ApusWire
import Foundation
import Dispatch
import Synchronization

/// The model routes of the KServe v2 / Open Inference Protocol plus Apus' own:
///
///     POST /v2/models/{m}[/versions/{v}|/labels/{l}]/infer     inference (JSON or protobuf)
///     GET  /v2/models/{m}[/versions/{v}]                        metadata
///     GET  /v2/models/{m}[/versions/{v}]/ready                  readiness (200 / 503)
///     POST /predict/{m}                                         one row, Flask-style
///     POST /v2/repository/index                                 every version's state
///     POST /v2/repository/models/{m}/load | /unload             admin
///     PUT  /v2/repository/models/{m}/labels/{l}                 move a label: {"version": N}
///
/// Stateless apart from the shared service; thread-safe. Answers come back on worker threads.
public struct InferenceRoutes: Sendable {
    public let service: InferenceService
    /// Chooses the variant for a request to a model with a traffic split (the A/B module);
    /// nil: no split.
    public let splitter: (any TrafficSplitting)?
    /// Largest body after decompression (the transport's body limit, so gzip cannot bypass it).
    public let maxBodyBytes: Int
    private let requestCounter = RequestIDGenerator()

    /// Told about every finished infer/predict request (metrics, canary windows).
    public let observer: (any RequestObserver)?
    /// Logs served predictions and joins feedback to them (nil: no feedback route).
    public let outcomes: OutcomeTracker?
    /// Automatic canary progressions (nil: no canary route).
    public let canary: CanaryController?

    public init(service: InferenceService, splitter: (any TrafficSplitting)? = nil, observer: (any RequestObserver)? = nil,
                outcomes: OutcomeTracker? = nil, canary: CanaryController? = nil, maxBodyBytes: Int) {
        self.service = service
        self.splitter = splitter
        self.observer = observer
        self.outcomes = outcomes
        self.canary = canary
        self.maxBodyBytes = maxBodyBytes
    }

    /// What a route calls once with its answer: the observer hears the status, the version and
    /// variant that answered (nil when none was chosen) and the latency since the request arrived
    /// (`RequestContext.arrivalNanos`), then `writer` sends the answer. Unknown models are
    /// reported as model "" to keep label sets bounded. A value, not a closure: the route's
    /// completion carries it inline instead of allocating a closure context per request.
    struct Reporter: Sendable {
        let writer: ResponseWriter
        let observer: (any RequestObserver)?
        let model: String
        /// The request's arrival (`RequestContext.arrivalNanos`).
        let started: UInt64

        func callAsFunction(_ response: Response, _ version: Int?, _ variant: String?) {
            observer?.requestFinished(model: model, version: version, variant: variant, status: response.status,
                                      durationNanos: MonotonicClock.nanoseconds() &- started)
            writer.complete(response)
        }
    }

    func reporter(_ writer: ResponseWriter, context: RequestContext, model: String, known: Bool) -> Reporter {
        Reporter(writer: writer, observer: observer, model: known ? model : "", started: context.arrivalNanos)
    }

    /// Routes for `Router`'s prefix table.
    public func prefixRoutes() -> [(prefix: String, handler: Router.Handler)] {
        [
            ("/v2/models/", { request, context, writer in self.models(request, context, writer) }),
            ("/v2/repository/", { request, _, writer in self.repository(request, writer) }),
            ("/predict/", { request, context, writer in self.predict(request, context, writer) }),
        ]
    }

    // MARK: - /v2/models/...

    func models(_ request: Request, _ context: RequestContext, _ writer: ResponseWriter) {
        guard let route = ModelRoutePath(request.path), !route.hasExtra, route.action != .other else {
            return writer.complete(.error(ApusError(.notFound, "no route for \(request.path)")))
        }
        let model = route.model
        let action = route.action
        var selector: VersionSelector?
        switch route.selector {
        case .version(let value)?:
            guard let v = Int(value), v >= 0 else { return writer.complete(.error(ApusError(.badRequest, "version \(value) is not a number"))) }
            selector = .version(v)
        case .label(let label)?:
            selector = .label(label)
        case nil:
            break
        }
        switch (request.method, action) {
        case ("POST", .infer):
            infer(request, context, writer, model: model, selector: selector)
        case ("GET", .none), ("HEAD", .none):
            writer.complete(metadata(model: model, selector: selector, protobuf: MetadataCodec.wantsProtobuf(request.headers[lowercased: "accept"])))
        case ("GET", .ready), ("HEAD", .ready):
            let ready = (try? service.resolve(model: model, selector: selector)) != nil
            if MetadataCodec.wantsProtobuf(request.headers[lowercased: "accept"]) {
                writer.complete(MetadataCodec.ready(name: model, ready: ready))
            } else {
                writer.complete(.json(ready ? 200 : 503, "{\"name\":\(JSONString.quote(model)),\"ready\":\(ready)}"))
            }
        case ("POST", .feedback) where selector == nil:
            writer.complete(feedback(model: model, request: request))
        case ("GET", .canary) where selector == nil, ("PUT", .canary) where selector == nil,
             ("POST", .canary) where selector == nil, ("DELETE", .canary) where selector == nil:
            let method = request.method
            DispatchQueue.global(qos: .userInitiated).async { writer.complete(self.canaryRoute(model: model, method: method, request: request)) }
        case ("GET", .split) where selector == nil:
            writer.complete(splitResponse(model: model))
        case ("PUT", .split) where selector == nil, ("POST", .split) where selector == nil:
            let body = request.body
            let limit = maxBodyBytes
            DispatchQueue.global(qos: .userInitiated).async {
                writer.complete(self.replaceSplit(model: model, body: body, request: request, limit: limit))
            }
        case (_, .infer), (_, .none), (_, .ready):
            var response = Response.error(ApusError(.methodNotAllowed, "\(request.method) is not allowed on \(request.path)"))
            response.headers.appendLowercased(name: "allow", value: action == .infer ? "POST" : "GET, HEAD")
            writer.complete(response)
        default:
            writer.complete(.error(ApusError(.notFound, "no route for \(request.path)")))
        }
    }

    func infer(_ request: Request, _ context: RequestContext, _ writer: ResponseWriter, model: String, selector: VersionSelector?) {
        // One snapshot entry for the whole request, looked up once: the model check, the split,
        // the shadow and the version agree, and the repository's lock is taken once.
        let entry = service.repository.entry(for: model)
        let finish = reporter(writer, context: context, model: model, known: entry != nil)
        let givenID = request.headers[lowercased: "x-request-id"]
        // Echoed on every answer (with the split's assignment once chosen); kept as two strings,
        // not a header list, since most requests need no other echoed field.
        var echoedID = givenID ?? requestCounter.next()
        var assignment: String?
        do {
            guard let entry else {
                throw ApusError(.notFound, "model \(model) is not in the repository")
            }
            let body = try Compression.decodeBody(request, limit: maxBodyBytes)
            let format = try WireFormat.forRequest(contentType: request.headers[lowercased: "content-type"])
            let replyFormat = WireFormat.forReply(accept: request.headers[lowercased: "accept"], request: format)
            var decoded = try format.decodeInferRequest(body, headers: request.headers, model: model, selector: selector)
            if decoded.id == nil {
                decoded.id = echoedID
            } else if let id = decoded.id, givenID == nil {
                // The body's id names the request when no header does.
                echoedID = id
            }
            decoded.deadline = try Self.deadline(request.headers, body: decoded.timeoutMicroseconds, from: finish.started)
            if let key = request.headers[lowercased: "apus-routing-key"] { decoded.routingKey = key }
            let (served, variant, chosenBy) = try choose(decoded, entry: entry, selector: selector)
            assignment = chosenBy
            // Outputs wanted as raw bytes (KServe's binary extension; JSON only).
            let binaryOutputs: Set<String>
            if format != .json {
                binaryOutputs = []
            } else if decoded.requestedOutputs.isEmpty, request.headers[lowercased: "inference-header-content-length"] != nil {
                binaryOutputs = Set(served.compiled.outputs.map(\.name))
            } else {
                binaryOutputs = Set(decoded.requestedOutputs.filter(\.value).map(\.key))
            }
            let acceptEncoding = request.headers[lowercased: "accept-encoding"]
            let id = echoedID, assignment = assignment
            if selector == nil, let splitter, let shadowSelector = splitter.shadow(model: entry),
               let shadow = try? InferenceService.resolve(entry, selector: shadowSelector), shadow !== served {
                // A copy for the shadow version; its answer is discarded, only counted.
                service.infer(decoded, on: shadow, variant: "shadow") { result in
                    if case .failure = result { splitter.shadowFinished(model: model, failed: true) } else { splitter.shadowFinished(model: model, failed: false) }
                }
            }
            let job = InferAnswerJob(
                answer: .init(served: served, variant: variant, bodyID: decoded.id, requested: decoded.requestedOutputs, replyFormat: replyFormat,
                              binaryOutputs: binaryOutputs, acceptEncoding: acceptEncoding),
                echo: .init(id: id, assignment: assignment, routingKey: decoded.routingKey), outcomes: outcomes, reporter: finish)
            service.run(decoded, on: served, job: job, cancellation: context)
        } catch {
            let apusError = error as? ApusError ?? ApusError(.internalError, "\(error)")
            let replyFormat = WireFormat.forReply(accept: request.headers[lowercased: "accept"], request: (try? WireFormat.forRequest(contentType: request.headers[lowercased: "content-type"])) ?? .json)
            finish(Self.errorResponse(apusError, format: replyFormat, extra: Self.echoed(id: echoedID, assignment: assignment)), nil, nil)
        }
    }

    /// The version (and variant) that answered, named on every infer and predict answer.
    static func nameServed(_ answer: InferResponse, served: ServedVersion, into headers: inout HTTPFields) {
        // The served version's own text (the answer names that version): no String per answer.
        headers.appendLowercased(name: "apus-model-version", value: answer.version == served.version ? served.versionText : String(answer.version))
        if let variant = answer.variant { headers.appendLowercased(name: "apus-variant", value: variant) }
    }

    /// The request id (and how the split chose, if it did) that every infer and predict answer echoes.
    static func echo(id: String, assignment: String?, into headers: inout HTTPFields) {
        headers.appendLowercased(name: "x-request-id", value: id)
        if let assignment { headers.appendLowercased(name: "apus-variant-assignment", value: assignment) }
    }

    static func echoed(id: String, assignment: String?) -> HTTPFields {
        var headers = HTTPFields(capacity: 2)
        echo(id: id, assignment: assignment, into: &headers)
        return headers
    }

    /// Resolves the version: an explicit version/label wins; otherwise the model's split (if any)
    /// picks a variant; otherwise the default version.
    func choose(_ request: InferRequest, entry: RepositorySnapshot.Model, selector: VersionSelector?) throws -> (ServedVersion, String?, String?) {
        if selector == nil, let splitter, let choice = splitter.choose(model: entry, routingKey: request.routingKey) {
            let served = try InferenceService.resolve(entry, selector: choice.selector)
            return (served, choice.variant, choice.byHash ? "hash" : "random")
        }
        return (try InferenceService.resolve(entry, selector: selector ?? request.version), nil, nil)
    }

    static func errorResponse(_ error: ApusError, format: WireFormat, extra: HTTPFields) -> Response {
        var response = format.encodeError(error)
        if let retry = error.retryAfterSeconds { response.headers.replaceOrAdd(name: "retry-after", value: String(retry)) }
        for field in extra { response.headers.add(name: field.name, value: field.value) }
        return response
    }

    /// The request's deadline on the monotonic clock, counted from its arrival (`start`): the
    /// earliest of `apus-timeout-ms` (milliseconds, fractions allowed), the `timeout` header and
    /// the body's timeout (whole microseconds, Triton's unit for its `timeout` parameter; 0:
    /// none). nil: no deadline. A malformed value is a 400 naming the header.
    static func deadline(_ headers: HTTPFields, body bodyMicroseconds: UInt64?, from start: UInt64) throws -> UInt64? {
        var budget: UInt64?
        func tighten(_ nanos: UInt64) { budget = min(budget ?? nanos, nanos) }
        if let text = headers[lowercased: "apus-timeout-ms"] {
            guard let ms = Double(text), ms.isFinite, ms > 0, ms < Double(InferRequest.maxTimeoutMicroseconds / 1000) else {
                throw ApusError(.badRequest, "apus-timeout-ms must be a positive number of milliseconds, got \(text)")
            }
            tighten(UInt64(ms * 1_000_000))
        }
        if let text = headers[lowercased: "timeout"] {
            guard let us = UInt64(text), us < InferRequest.maxTimeoutMicroseconds else {
                throw ApusError(.badRequest, "timeout must be a whole number of microseconds below one day (0: none), got \(text)")
            }
            if us > 0 { tighten(us * 1000) }
        }
        // The codec holds it below a day; saturating keeps any other caller from trapping.
        if let bodyMicroseconds { tighten(bodyMicroseconds.multipliedReportingOverflow(by: 1000).overflow ? .max : bodyMicroseconds * 1000) }
        guard let budget else { return nil }
        let (deadline, overflow) = start.addingReportingOverflow(budget)
        return overflow ? nil : deadline
    }

    func metadata(model: String, selector: VersionSelector?, protobuf: Bool) -> Response {
        let snapshot = service.repository.snapshot
        let served: ServedVersion
        do {
            served = try InferenceService.resolve(model: model, selector: selector, in: snapshot)
        } catch {
            return .error(error as? ApusError ?? ApusError(.internalError, "\(error)"))
        }
        let entry = snapshot.models[model]
        let versions = (entry?.versions.keys.sorted() ?? []).map { "\"\($0)\"" }.joined(separator: ",")
        func tensors(_ specs: [BundleManifest.TensorSpec]) -> String {
            specs.map { spec in
                var s = "{\"name\":\(JSONString.quote(spec.name)),\"datatype\":\(JSONString.quote(spec.datatype)),\"shape\":[\(spec.shape.map(String.init).joined(separator: ","))]"
                if let features = spec.features { s += ",\"features\":[\(features.map(JSONString.quote).joined(separator: ","))]" }
                return s + "}"
            }.joined(separator: ",")
        }
        let outputs = served.manifest.outputs ?? served.compiled.outputs.map {
            BundleManifest.TensorSpec(name: $0.name, datatype: ($0.elementType ?? .float32).rawValue, shape: ($0.shape ?? []).map { $0 ?? -1 }, features: nil)
        }
        if protobuf {
            var response = MetadataCodec.metadata(name: model, version: String(served.version), versions: (entry?.versions.keys.sorted() ?? []).map(String.init),
                                                  inputs: served.manifest.inputs, outputs: outputs,
                                                  labels: (entry?.labels ?? [:]).mapValues(String.init))
            response.headers.appendLowercased(name: "apus-model-version", value: String(served.version))
            return response
        }
        let labels = (entry?.labels ?? [:]).sorted { $0.key < $1.key }.map { "\(JSONString.quote($0.key)):\"\($0.value)\"" }.joined(separator: ",")
        var json = "{\"name\":\(JSONString.quote(model)),\"versions\":[\(versions)],\"platform\":\"onnx\""
        json += ",\"inputs\":[\(tensors(served.manifest.inputs))],\"outputs\":[\(tensors(outputs))]"
        json += ",\"parameters\":{\"version\":\"\(served.version)\",\"labels\":{\(labels)}"
        // Per-feature [min, max] of the reference sample: load generators and clients use it
        // to make realistic inputs.
        if let reference = served.reference, reference.shape.count == 2, let values = try? reference.floats(), reference.shape[0] > 0 {
            let width = reference.shape[1]
            let ranges = (0..<width).map { f -> String in
                let column = stride(from: f, to: values.count, by: width).map { values[$0] }.filter { !$0.isNaN }
                return "[\(JSONValue.format(Double(column.min() ?? 0))),\(JSONValue.format(Double(column.max() ?? 1)))]"
            }
            json += ",\"feature_ranges\":[\(ranges.joined(separator: ","))]"
        }
        json += "}}"
        var response = Response.json(200, json)
        response.headers.appendLowercased(name: "apus-model-version", value: String(served.version))
        return response
    }

    // MARK: - /v2/models/{m}/feedback and /canary

    /// `{"request_id": "...", "value": 1}` (or `"routing_key"` instead of the id: its latest
    /// request; `"label"` is accepted for `"value"`).
    func feedback(model: String, request: Request) -> Response {
        guard let outcomes else { return .error(ApusError(.notFound, "feedback is not enabled")) }
        do {
            let json = try JSONValue.parse(try Compression.decodeBody(request, limit: maxBodyBytes))
            let requestID = try JSONValue.optionalString(json["request_id"], field: "request_id")
            let routingKey = try JSONValue.optionalString(json["routing_key"], field: "routing_key")
            guard requestID != nil || routingKey != nil else { throw ApusError(.badRequest, "request_id or routing_key is required") }
            let truth: Double
            switch json["value"] ?? json["label"] {
            case .number(let d)?: truth = d
            case .bool(let b)?: truth = b ? 1 : 0
            default: throw ApusError(.badRequest, "value must be the true label or value (a number)")
            }
            let prediction = try outcomes.feedback(model: model, requestID: requestID, routingKey: routingKey, truth: truth)
            let correct = prediction.isClassification ? "\(prediction.value == truth)" : "null"
            return .json(200, "{\"model\":\(JSONString.quote(model)),\"variant\":\(JSONString.quote(prediction.variant)),\"version\":\"\(prediction.version)\",\"prediction\":\(JSONValue.format(prediction.value)),\"truth\":\(JSONValue.format(truth)),\"correct\":\(correct)}")
        } catch {
            return .error(error as? ApusError ?? ApusError(.internalError, "\(error)"))
        }
    }

    func canaryRoute(model: String, method: String, request: Request) -> Response {
        guard let canary else { return .error(ApusError(.notFound, "canary progression is not enabled")) }
        do {
            let status: CanaryController.Status
            switch method {
            case "GET": status = try canary.status(model: model)
            case "DELETE": status = try canary.abort(model: model)
            default:
                let body = try Compression.decodeBody(request, limit: maxBodyBytes)
                let policy = try ConfigJSON.decode(CanaryStateMachine.Policy.self, from: Data(body), what: "canary")
                status = try canary.start(model: model, policy: policy)
            }
            return .json(200, Self.canaryJSON(status))
        } catch {
            return .error(error as? ApusError ?? ApusError(.internalError, "\(error)"))
        }
    }

    static func canaryJSON(_ status: CanaryController.Status) -> String {
        let state: String
        var reason = "null"
        switch status.state {
        case .running(let step, _): state = "running step \(step + 1)/\(status.policy.steps.count)"
        case .promoted: state = "promoted"
        case .rolledBack(let why):
            state = "rolled_back"
            reason = JSONString.quote(why)
        }
        return "{\"model\":\(JSONString.quote(status.model)),\"baseline\":\(JSONString.quote(status.policy.baseline)),\"canary\":\(JSONString.quote(status.policy.canary)),\"state\":\(JSONString.quote(state)),\"reason\":\(reason),\"canary_weight\":\(status.canaryWeight),\"steps_taken\":\(status.steps),\"history\":[\(status.history.map(JSONString.quote).joined(separator: ","))]}"
    }

    // MARK: - /v2/models/{m}/split

    func splitResponse(model: String) -> Response {
        guard let entry = service.repository.snapshot.models[model] else {
            return .error(ApusError(.notFound, "model \(model) is not in the repository"))
        }
        guard let split = entry.settings.split else { return .json(200, "{\"model\":\(JSONString.quote(model)),\"split\":null}") }
        do {
            let compiled = try TrafficSplitter.compile(split)
            var out = split
            out.buckets = compiled.table.ranges
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let json = String(decoding: try encoder.encode(out), as: UTF8.self)
            return .json(200, "{\"model\":\(JSONString.quote(model)),\"split\":\(json)}")
        } catch {
            return .error(error as? ApusError ?? ApusError(.internalError, "\(error)"))
        }
    }

    /// Replaces the split (`{"salt": ..., "variants": [...]}` or `null`), keeping the bucket
    /// ranges of variants whose weight did not change, persisted before it takes effect.
    func replaceSplit(model: String, body: [UInt8], request: Request, limit: Int) -> Response {
        do {
            let bytes = try Compression.decodeBody(request, limit: limit)
            let new: ModelSettings.Split?
            if String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == "null" {
                new = nil
            } else {
                new = try ConfigJSON.decode(ModelSettings.Split.self, from: Data(bytes), what: "split")
            }
            guard let old = service.repository.snapshot.models[model] else { throw ApusError(.notFound, "model \(model) is not in the repository") }
            let replacement = try new.map { try TrafficSplitter.replacement(old: old.settings.split, new: $0) }
            for variant in replacement?.variants ?? [] {
                let selector: VersionSelector = variant.version.map { .version($0) } ?? .label(variant.label ?? "")
                if case .label(let label) = selector, old.labels[label] == nil {
                    throw ApusError(.badRequest, "split.variants.\(variant.name): model \(model) has no label \(label)")
                }
            }
            try service.repository.setSplit(model: model, split: replacement)
            return splitResponse(model: model)
        } catch {
            return .error(error as? ApusError ?? ApusError(.internalError, "\(error)"))
        }
    }

    // MARK: - /predict/{m}

    /// `{"features": [x1, ...]}` or `{"features": [[...], ...]}` -> `{"prediction": ..., "confidence": ...}`
    /// (lists for several rows), for users moving from a Flask `/predict`.
    func predict(_ request: Request, _ context: RequestContext, _ writer: ResponseWriter) {
        let model = String(request.path.dropFirst("/predict/".count))
        guard request.method == "POST" else {
            var response = Response.error(ApusError(.methodNotAllowed, "\(request.method) is not allowed on \(request.path)"))
            response.headers.appendLowercased(name: "allow", value: "POST")
            return writer.complete(response)
        }
        // One snapshot entry for the whole request, as in `infer`.
        let entry = service.repository.entry(for: model)
        let finish = reporter(writer, context: context, model: model, known: entry != nil)
        let requestID = request.headers[lowercased: "x-request-id"] ?? requestCounter.next()
        var assignment: String?
        do {
            let body = try Compression.decodeBody(request, limit: maxBodyBytes)
            let json = try JSONValue.parse(body)
            guard case .array(let features)? = json["features"], !features.isEmpty else {
                throw ApusError(.badRequest, "\"features\" must be a non-empty array of numbers (one row) or of arrays (rows)")
            }
            var routingKey = request.headers[lowercased: "apus-routing-key"]
            if case .string(let key)? = json["routing_key"] { routingKey = key }
            guard let entry else { throw ApusError(.notFound, "model \(model) is not in the repository") }
            let probe = InferRequest(model: model, routingKey: routingKey, inputs: [])
            let (served, variant, chosenBy) = try choose(probe, entry: entry, selector: nil)
            assignment = chosenBy
            guard served.compiled.inputs.count == 1, let input = served.compiled.inputs.first else {
                throw ApusError(.badRequest, "model \(model) takes \(served.compiled.inputs.count) inputs; use /v2/models/\(model)/infer")
            }
            let single: Bool
            let rows: [[JSONValue]]
            if case .array = features[0] {
                single = false
                rows = try features.enumerated().map { i, row in
                    guard case .array(let r) = row else { throw ApusError(.badRequest, "features[\(i)] must be an array of numbers") }
                    return r
                }
            } else {
                single = true
                rows = [features]
            }
            let width = rows[0].count
            // Said in the route's own terms (features, not "input input: shape [1, 3]"), naming
            // the features the bundle declares, so a Flask user sees which column is missing.
            if let expected = input.shape?.last ?? nil, (input.shape?.count ?? 0) == 2, width != expected {
                let names = served.manifest.inputs.first?.features.map { ": " + $0.joined(separator: ", ") } ?? ""
                throw ApusError(.badRequest, "features: model \(model) takes \(expected) features per row\(names); got \(width)")
            }
            var values: [Float] = []
            values.reserveCapacity(rows.count * width)
            for (i, row) in rows.enumerated() {
                guard row.count == width else { throw ApusError(.badRequest, "features[\(i)] has \(row.count) values, the first row \(width)") }
                for (j, value) in row.enumerated() {
                    switch value {
                    case .number(let d): values.append(Float(d))
                    case .null: values.append(.nan)   // a missing value, as trees and imputers expect
                    default: throw ApusError(.badRequest, single ? "features[\(j)] must be a number or null" : "features[\(i)][\(j)] must be a number or null")
                    }
                }
            }
            let tensor = try BundleLoader.cast(try Tensor(shape: [rows.count, width], data: .float32(values)), to: input.elementType ?? .float32)
            var inferRequest = InferRequest(model: model, id: requestID, routingKey: routingKey, inputs: [.init(name: input.name, tensor: tensor)])
            inferRequest.deadline = try Self.deadline(request.headers, body: nil, from: finish.started)
            let assignment = assignment
            let outcomes = self.outcomes
            let key = routingKey
            service.infer(inferRequest, on: served, variant: variant, cancellation: context) { result in
                switch result {
                case .success(let answer):
                    if let outcomes, let prediction = OutcomeTracker.prediction(of: answer, variant: answer.variant ?? "") {
                        outcomes.log(requestID: requestID, routingKey: key, prediction: prediction)
                    }
                    var response = Response.json(200, PredictEncoding.encode(answer, single: single))
                    Self.nameServed(answer, served: served, into: &response.headers)
                    Self.echo(id: requestID, assignment: assignment, into: &response.headers)
                    finish(response, answer.version, answer.variant)
                case .failure(let error):
                    finish(Self.errorResponse(error, format: .json, extra: Self.echoed(id: requestID, assignment: assignment)), nil, nil)
                }
            }
        } catch {
            finish(Self.errorResponse(error as? ApusError ?? ApusError(.badRequest, "\(error)"), format: .json, extra: Self.echoed(id: requestID, assignment: assignment)), nil, nil)
        }
    }

    // MARK: - /v2/repository/...

    func repository(_ request: Request, _ writer: ResponseWriter) {
        // Loading a model or writing settings does disk I/O: never on the event loop.
        DispatchQueue.global(qos: .userInitiated).async { self.repositoryAdmin(request, writer) }
    }

    func repositoryAdmin(_ request: Request, _ writer: ResponseWriter) {
        let parts = request.path.split(separator: "/").map(String.init)   // v2 repository ...
        let repository = service.repository
        do {
            let rest = Array(parts.dropFirst(2))
            let model = rest.count >= 2 && rest[0] == "models" ? rest[1] : ""
            let action = rest.count >= 3 && rest[0] == "models" ? rest[2] : ""
            switch (request.method, rest.count) {
            case ("POST", 1) where rest[0] == "index", ("GET", 1) where rest[0] == "index":
                let errors = repository.modelErrors
                if MetadataCodec.wantsProtobuf(request.headers[lowercased: "accept"]) {
                    var entries = repository.statuses.map { ($0.model, String($0.version), $0.state.name, $0.state.reason ?? $0.lastFailure) }
                    for (model, error) in errors.sorted(by: { $0.key < $1.key }) { entries.append((model, "", "FAILED", error)) }
                    writer.complete(MetadataCodec.index(entries))
                    return
                }
                var items = repository.statuses.map { Self.statusJSON($0) }
                for (model, error) in errors.sorted(by: { $0.key < $1.key }) {
                    items.append("{\"name\":\(JSONString.quote(model)),\"state\":\"FAILED\",\"reason\":\(JSONString.quote(error))}")
                }
                writer.complete(.json(200, "[\(items.joined(separator: ","))]"))
            case ("POST", 3) where action == "load":
                try repository.load(model: model)
                // Something serves; say which versions failed (and why) rather than a bare success.
                let versions = repository.statuses.filter { $0.model == model }.map { Self.statusJSON($0) }
                writer.complete(.json(200, "{\"name\":\(JSONString.quote(model)),\"loaded\":true,\"versions\":[\(versions.joined(separator: ","))]}"))
            case ("POST", 3) where action == "unload":
                try repository.unload(model: model)
                writer.complete(.json(200, "{\"name\":\(JSONString.quote(model)),\"unloaded\":true}"))
            case ("PUT", 4) where action == "labels", ("POST", 4) where action == "labels":
                let label = rest[3]
                let json = try JSONValue.parse(try Compression.decodeBody(request, limit: maxBodyBytes))
                let version: Int?
                switch json["version"] {
                case .number(let d)? where d >= 0 && d == d.rounded() && d < 1e9: version = Int(d)
                case .string(let s)? where Int(s) != nil: version = Int(s)
                case .null?: version = nil
                default: throw ApusError(.badRequest, "\"version\" must be a version number (or null to remove the label)")
                }
                try repository.setLabel(model: model, label: label, version: version)
                writer.complete(.json(200, "{\"name\":\(JSONString.quote(model)),\"label\":\(JSONString.quote(label)),\"version\":\(version.map { "\"\($0)\"" } ?? "null")}"))
            default:
                writer.complete(.error(ApusError(.notFound, "no route for \(request.method) \(request.path)")))
            }
        } catch {
            writer.complete(.error(error as? ApusError ?? ApusError(.internalError, "\(error)")))
        }
    }
}

extension InferenceRoutes {
    /// One version's entry in the repository index and in load answers.
    static func statusJSON(_ status: VersionStatus) -> String {
        var s = "{\"name\":\(JSONString.quote(status.model)),\"version\":\"\(status.version)\",\"state\":\"\(status.state.name)\""
        if let reason = status.state.reason ?? status.lastFailure { s += ",\"reason\":\(JSONString.quote(reason))" }
        return s + "}"
    }
}
