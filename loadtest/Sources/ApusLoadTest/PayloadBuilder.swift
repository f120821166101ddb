import ApusCore
import ApusInference
import ApusRuntime
import ApusTransport
import ApusWire
import Foundation
import NIOPosix

/// Request payloads for a model: rows from a file, or random rows within each feature's
/// reference range read from the model's metadata (`parameters.feature_ranges`), [0, 1) when the
/// bundle has no reference sample. A pool of 256 payloads is built once, before the run.
public enum PayloadBuilder {
    public static func build(host: String, port: Int, model: String, rows: Int, file: String?, seed: UInt64, pool: Int = 256) async throws -> [InferRequest.Input] {
        let metadata = try await fetchJSON(host: host, port: port, path: "/v2/models/\(model)")
        guard case .array(let inputs)? = metadata["inputs"], case .string(let name)? = inputs.first?["name"],
              case .array(let shape)? = inputs.first?["shape"], case .number(let widthValue)? = shape.last else {
            throw ApusError(.badRequest, "the metadata of \(model) has no usable first input")
        }
        var datatype = "FP32"
        if case .string(let d)? = inputs.first?["datatype"] { datatype = d }
        let width = Int(widthValue)
        var source: [Float] = []
        var sourceRows = 0
        if let file {
            let tensor: Tensor
            if file.hasSuffix(".npy") {
                tensor = try NPY.read(URL(fileURLWithPath: file))
            } else {
                let text = try String(contentsOfFile: file, encoding: .utf8)
                let parsed = text.split(whereSeparator: \.isNewline).compactMap { line -> [Float]? in
                    let values = line.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
                    return values.contains(where: { $0 == nil }) ? nil : values.compactMap { $0 }
                }
                tensor = try Tensor(shape: [parsed.count, parsed.first?.count ?? 0], data: .float32(parsed.flatMap { $0 }))
            }
            guard tensor.shape.count == 2, tensor.shape[1] == width, tensor.shape[0] > 0 else {
                throw ApusError(.badRequest, "--payload \(file): shape \(tensor.shape) does not fit the model's width \(width)")
            }
            source = try tensor.floats()
            sourceRows = tensor.shape[0]
        }
        var ranges: [(Float, Float)] = Array(repeating: (0, 1), count: width)
        if case .array(let list)? = metadata["parameters"]?["feature_ranges"] {
            for (i, pair) in list.enumerated() where i < width {
                if case .array(let bounds) = pair, bounds.count == 2, case .number(let lo) = bounds[0], case .number(let hi) = bounds[1] {
                    ranges[i] = (Float(lo), Float(hi))
                }
            }
        }
        var rng = SplitMix64(seed: seed)
        var payloads: [InferRequest.Input] = []
        for p in 0..<pool {
            var values: [Float] = []
            values.reserveCapacity(rows * width)
            for r in 0..<rows {
                if sourceRows > 0 {
                    let row = (p * rows + r) % sourceRows
                    values.append(contentsOf: source[(row * width)..<((row + 1) * width)])
                } else {
                    for (lo, hi) in ranges {
                        // In Double: edge-value samples can span the whole Float range.
                        let v = Double(lo) + rng.nextUnit() * (Double(hi) - Double(lo))
                        values.append(Float(max(-Double(Float.greatestFiniteMagnitude), min(Double(Float.greatestFiniteMagnitude), v))))
                    }
                }
            }
            let tensor = try BundleLoader.cast(try Tensor(shape: [rows, width], data: .float32(values)), to: Tensor.ElementType(rawValue: datatype) ?? .float32)
            payloads.append(.init(name: name, tensor: tensor))
        }
        return payloads
    }

    /// The model's configured A/B split as fractions, when it has one.
    public static func split(host: String, port: Int, model: String) async throws -> [String: Double] {
        let json = try await fetchJSON(host: host, port: port, path: "/v2/models/\(model)/split")
        guard case .array(let variants)? = json["split"]?["variants"] else { return [:] }
        var out: [String: Double] = [:]
        for variant in variants {
            if case .string(let name)? = variant["name"], case .number(let weight)? = variant["weight"] { out[name] = weight / 10_000 }
        }
        return out
    }

    static func fetchJSON(host: String, port: Int, path: String) async throws -> JSONValue {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let result: Result<ClientResponse, any Error>
        do {
            let connection = try await HTTP2ClientConnection.connect(host: host, port: port, group: group)
            do {
                result = .success(try await connection.send(ClientRequest(method: "GET", path: path, authority: "\(host):\(port)")))
            } catch {
                result = .failure(error)
            }
            await connection.close()
        } catch {
            result = .failure(error)
        }
        try? await group.shutdownGracefully()
        let response = try result.get()
        guard response.status == 200 else {
            throw ApusError(response.status == 404 ? .notFound : .unavailable, "GET \(path): HTTP \(response.status) \(String(decoding: response.body.prefix(300), as: UTF8.self))")
        }
        return try JSONValue.parse(response.body)
    }
}
