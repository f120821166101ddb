import ApusCore
import ApusInference
import ApusRuntime

/// The Flask-style answer of `POST /predict/{m}`: `{"prediction": p, "confidence": c, "model": m,
/// "version": "v"}` for one row, `"predictions"`/`"confidences"` lists for several.
///
/// prediction: the label output (classifiers) or the first output's value (regressors);
/// confidence: the highest class probability (classifiers only, else null). Stateless.
public enum PredictEncoding {
    static func number(_ value: Float) -> String { value.isFinite ? "\(value)" : "null" }

    public static func encode(_ answer: InferResponse, single: Bool) -> String {
        let outputs = answer.outputs   // each read copies the request's rows out: once
        let rows = outputs.first?.tensor.shape.first ?? 0
        var predictions: [String] = []
        var confidences: [String] = []
        let labelOutput = outputs.first { $0.tensor.elementType == .int64 || $0.tensor.elementType == .int32 || $0.tensor.elementType == .string }
        let probabilities = outputs.first { out in
            out.tensor.elementType == .float32 && out.tensor.shape.count == 2 && (out.tensor.shape[1] > 1 || labelOutput != nil)
        }
        for row in 0..<rows {
            if let labelOutput {
                switch labelOutput.tensor.data {
                case .int64(let v): predictions.append(String(v[row]))
                case .int32(let v): predictions.append(String(v[row]))
                case .string(let v): predictions.append(JSONString.quote(v[row]))
                default: predictions.append("null")
                }
            } else if let first = outputs.first, let values = try? first.tensor.floats() {
                let width = first.tensor.shape.dropFirst().reduce(1, *)
                predictions.append(width == 1 ? Self.number(values[row]) : "[" + values[(row * width)..<((row + 1) * width)].map(Self.number).joined(separator: ",") + "]")
            }
            if let probabilities, labelOutput != nil, let values = try? probabilities.tensor.floats() {
                let width = probabilities.tensor.shape[1]
                let best = values[(row * width)..<((row + 1) * width)].max() ?? .nan
                // Float's own shortest form: 0.78450918, not 0.7845091819763184.
                confidences.append(best.isFinite ? "\(best)" : "null")
            } else {
                confidences.append("null")
            }
        }
        var json = "{"
        if single, rows == 1 {
            json += "\"prediction\":\(predictions.first ?? "null"),\"confidence\":\(confidences.first ?? "null")"
        } else {
            json += "\"predictions\":[\(predictions.joined(separator: ","))],\"confidences\":[\(confidences.joined(separator: ","))]"
        }
        json += ",\"model\":\(JSONString.quote(answer.model)),\"version\":\"\(answer.version)\""
        if let variant = answer.variant { json += ",\"variant\":\(JSONString.quote(variant))" }
        if let id = answer.id { json += ",\"id\":\(JSONString.quote(id))" }
        return json + "}"
    }
}
