// The Swift client library in a dozen lines: one prediction from the example churn model.
//   swift run example-client [port]
import ApusClient
import ApusInference
import ApusRuntime
import Foundation

@main
struct ExampleClient {
    static func main() async throws {
        let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 8080
        let client = ApusClient(port: port, connections: 1, format: .protobuf)
        let features: [Float] = [12, 70.5, 3, 1, 0, 845.2, 2, 0]
        let input = try Tensor(shape: [1, features.count], data: .float32(features))
        let answer = try await client.infer(model: "churn", inputs: [.init(name: "input", tensor: input)], routingKey: "user-42")
        let probabilities = try answer.outputs.first { $0.name == "probabilities" }?.tensor.floats() ?? []
        print("churn version \(answer.version) variant \(answer.variant ?? "-"): P(churn) = \(probabilities.last ?? .nan)")
        await client.close()
    }
}
