import ApusClient
import ApusCore
import ApusInference
import ApusRuntime
import ApusWire
import ArgumentParser
import Foundation

/// `apus predict`: one inference from the command line, through the client library.
struct PredictCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Send one inference request (rows of features) and print the answer."
    )

    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 8080
    @Option(help: "Model name.") var model: String
    @Option(help: "Version number or label (default: the model's default version or A/B split).") var version: String?
    @Option(help: "Input tensor name (default: the model's first input, from its metadata).") var input: String?
    @Option(help: "Rows of features: '0.1,0.2;0.3,0.4' (';' separates rows), or @file.csv.") var features: String
    @Option(help: "A/B routing key.") var routingKey: String?
    @Option(help: "Wire format: protobuf or json.") var format = "protobuf"
    @Option(help: "Deadline in milliseconds: the server answers 504 once it passes, and the command gives up a second later (default: 30 s).") var timeoutMs: Int?

    /// Rows of numbers from '0.1,0.2;0.3,0.4' or CSV lines. An empty field is a missing value
    /// (NaN, which tree models route by their missing-value rules); any other text that is not a
    /// number is refused, naming it: it used to become NaN too, so a CSV header line or a typo
    /// was sent as missing values without a word.
    static func parseRows(_ text: String) throws -> [[Float]] {
        let lines = text.split(whereSeparator: { $0 == ";" || $0.isNewline }).filter { !$0.allSatisfy(\.isWhitespace) }
        return try lines.enumerated().map { r, line in
            try line.split(separator: ",", omittingEmptySubsequences: false).enumerated().map { c, field in
                let value = field.trimmingCharacters(in: .whitespaces)
                if value.isEmpty { return .nan }
                guard let number = Float(value) else {
                    throw ValidationError("--features: row \(r + 1), value \(c + 1): \"\(value)\" is not a number")
                }
                return number
            }
        }
    }

    func run() async throws {
        let wire: WireFormat = format == "json" ? .json : .protobuf
        // --timeout-ms bounds the whole command, the metadata call too.
        let client = ApusClient(host: host, port: port, format: wire, requestTimeout: timeoutMs.map(ApusClient.answerWait) ?? .seconds(30))
        defer { Task { await client.close() } }
        let text = features.hasPrefix("@") ? try String(contentsOfFile: String(features.dropFirst()), encoding: .utf8) : features
        let rows = try Self.parseRows(text)
        guard let width = rows.first?.count, rows.allSatisfy({ $0.count == width }) else {
            throw ValidationError("--features: every row needs the same number of values")
        }
        var inputName = input
        if inputName == nil {
            let (status, body) = try await client.get("/v2/models/\(model)")
            guard status == 200, let json = try? JSONValue.parse(Array(body.utf8)), case .array(let inputs)? = json["inputs"],
                  case .string(let name)? = inputs.first?["name"] else {
                throw ApusError(status == 404 ? .notFound : .unavailable, "cannot read the metadata of \(model) (HTTP \(status)): \(body)")
            }
            inputName = name
        }
        let selector: VersionSelector? = version.map { Int($0).map(VersionSelector.version) ?? .label($0) }
        let tensor = try Tensor(shape: [rows.count, width], data: .float32(rows.flatMap { $0 }))
        let answer = try await client.infer(model: model, version: selector, inputs: [.init(name: inputName ?? "input", tensor: tensor)],
                                            routingKey: routingKey, timeoutMilliseconds: timeoutMs)
        var lines = ["model \(answer.model) version \(answer.version)" + (answer.variant.map { " variant \($0)" } ?? "")]
        for output in answer.outputs {
            let values: String
            switch output.tensor.data {
            case .int64(let v): values = v.map(String.init).joined(separator: ", ")
            case .int32(let v): values = v.map(String.init).joined(separator: ", ")
            default: values = ((try? output.tensor.floats()) ?? []).map { String($0) }.joined(separator: ", ")
            }
            lines.append("\(output.name) \(output.tensor.shape): \(values)")
        }
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}
