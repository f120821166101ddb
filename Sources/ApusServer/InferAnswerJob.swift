import ApusCore
import ApusInference
import ApusSplit
import ApusWire

/// One `/v2/models/.../infer` request in its version's batcher, holding what its answer needs:
/// the answer is shaped, logged for feedback, encoded in the reply format, named (version,
/// variant, request id) and written when the batch has run (`finish`).
///
/// A job rather than a closure so that the request is one object from the route to the answer
/// (see `InferenceJob`). Its own properties are immutable after init (the batcher's fields follow
/// `InferenceJob`'s rules); `finish` runs once, on whichever thread ran the batch.
final class InferAnswerJob: InferenceJob, @unchecked Sendable {
    struct Answer {
        let served: ServedVersion
        /// The split's variant that serves (nil: no split).
        let variant: String?
        /// The id the answer body carries (the body's own, else the echoed one).
        let bodyID: String?
        /// Outputs asked for (empty: all).
        let requested: [String: Bool]
        let replyFormat: WireFormat
        /// Outputs sent as raw bytes (KServe's binary extension).
        let binaryOutputs: Set<String>
        let acceptEncoding: String?
    }

    struct Echo {
        /// The request id the answer's `x-request-id` echoes, and the feedback log's key.
        let id: String
        /// How the split chose ("hash" or "random"; nil: no split).
        let assignment: String?
        let routingKey: String?
    }

    private let answer: Answer
    private let echo: Echo
    private let outcomes: OutcomeTracker?
    private let reporter: InferenceRoutes.Reporter

    init(answer: Answer, echo: Echo, outcomes: OutcomeTracker?, reporter: InferenceRoutes.Reporter) {
        self.answer = answer
        self.echo = echo
        self.outcomes = outcomes
        self.reporter = reporter
    }

    override func finish(_ result: Result<OutputRows, ApusError>) {
        let served = answer.served
        switch result {
        case .success(let outputs):
            let response = InferenceService.answer(outputs, served: served, variant: answer.variant, id: answer.bodyID, requested: answer.requested)
            // Logged under the id the answer's x-request-id carries (a header id wins over the
            // body's, as in the echo), so feedback names the request as the client saw it.
            if let outcomes, let prediction = OutcomeTracker.prediction(of: response, variant: response.variant ?? "") {
                outcomes.log(requestID: echo.id, routingKey: echo.routingKey, prediction: prediction)
            }
            var encoded = answer.replyFormat.encodeInferResponse(response, binaryOutputs: answer.binaryOutputs, headerRoom: echo.assignment == nil ? 3 : 4)
            InferenceRoutes.nameServed(response, served: served, into: &encoded.headers)
            InferenceRoutes.echo(id: echo.id, assignment: echo.assignment, into: &encoded.headers)
            reporter(Compression.encodeResponse(encoded, acceptEncoding: answer.acceptEncoding), response.version, response.variant)
        case .failure(let error):
            reporter(InferenceRoutes.errorResponse(error, format: answer.replyFormat, extra: InferenceRoutes.echoed(id: echo.id, assignment: echo.assignment)),
                     served.version, answer.variant)
        }
    }
}
