import ApusCore
import ApusONNX
import ApusRuntime
import Foundation

/// Turns a version folder into a `ServedVersion`: manifest, checksums of every listed file, ONNX
/// load, schema check against the manifest, and a warm-up run on the reference sample (which is
/// also the validation: a version whose model cannot run its own sample never serves).
///
/// Stateless; safe from any thread. Errors are `ApusError`s whose message names the file.
public enum BundleLoader {
    public static let manifestName = "manifest.json"

    /// A cheap identity of a folder's contents (names, sizes, modification times), so a poll
    /// does not re-hash or re-load a version whose files did not change.
    public static func fingerprint(directory: String) -> String {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory) else { return "" }
        var parts: [String] = []
        for name in names.sorted() {
            let attributes = try? fm.attributesOfItem(atPath: directory + "/" + name)
            let size = (attributes?[.size] as? NSNumber)?.int64Value ?? -1
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            parts.append("\(name):\(size):\(modified)")
        }
        return parts.joined(separator: "|")
    }

    public static func readManifest(directory: String) throws -> BundleManifest {
        let path = directory + "/" + manifestName
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ApusError(.notFound, "\(path) is missing (bundle incomplete or still being copied)")
        }
        return try ConfigJSON.decode(BundleManifest.self, from: data, what: "\(path) is not a valid manifest")
    }

    /// Checks every checksum the manifest lists; the model file and reference sample must be
    /// among them (an unlisted model file could be anything).
    public static func verifyChecksums(_ manifest: BundleManifest, directory: String) throws {
        var required = [manifest.modelFile]
        if let reference = manifest.referenceSample { required.append(reference) }
        for file in required where manifest.sha256[file] == nil {
            throw ApusError(.badRequest, "manifest.json: sha256 has no entry for \(file)")
        }
        for (file, expected) in manifest.sha256.sorted(by: { $0.key < $1.key }) {
            guard !file.contains("/"), !file.hasPrefix(".") else {
                throw ApusError(.badRequest, "manifest.json: sha256 names \(file); only files of the version folder may be listed")
            }
            let path = directory + "/" + file
            let actual = try sha256(path: path)
            guard actual == expected.lowercased() else {
                throw ApusError(.badRequest, "\(path): sha256 \(actual) does not match the manifest's \(expected) (corrupt or still being copied)")
            }
        }
    }

    public static func sha256(path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ApusError(.notFound, "\(path) is missing")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            hasher.update(chunk)
        }
        return hasher.finalizeHex()
    }

    /// Everything a served version needs, loaded and validated but not yet serving.
    public struct Loaded: Sendable {
        public var manifest: BundleManifest
        public var compiled: CompiledModel
        public var reference: Tensor?
    }

    public static func load(directory: String, model: String, version: Int) throws -> Loaded {
        let manifest = try readManifest(directory: directory)
        guard manifest.name == model else {
            throw ApusError(.badRequest, "\(directory)/manifest.json: name is \(manifest.name), the folder says \(model)")
        }
        guard manifest.version == version else {
            throw ApusError(.badRequest, "\(directory)/manifest.json: version is \(manifest.version), the folder says \(version)")
        }
        try verifyChecksums(manifest, directory: directory)
        let compiled: CompiledModel
        do {
            compiled = try ONNXLoader.load(path: directory + "/" + manifest.modelFile)
        } catch let error as RuntimeError {
            throw ApusError(.badRequest, "\(directory)/\(manifest.modelFile): \(error.message)", cause: error)
        }
        try checkSchema(manifest, compiled: compiled, directory: directory)
        var reference: Tensor?
        if let file = manifest.referenceSample {
            do {
                reference = try NPY.read(URL(fileURLWithPath: directory + "/" + file))
            } catch let error as RuntimeError {
                throw ApusError(.badRequest, "\(directory)/\(file): \(error.message)", cause: error)
            }
        }
        try warmUp(compiled, reference: reference, directory: directory)
        return Loaded(manifest: manifest, compiled: compiled, reference: reference)
    }

    /// The manifest's inputs must be the ONNX graph's inputs, in the same order and type.
    static func checkSchema(_ manifest: BundleManifest, compiled: CompiledModel, directory: String) throws {
        let graphInputs = compiled.inputs
        guard manifest.inputs.map(\.name) == graphInputs.map(\.name) else {
            throw ApusError(.badRequest, "\(directory)/manifest.json: inputs \(manifest.inputs.map(\.name)) do not match the model's \(graphInputs.map(\.name))")
        }
        for (spec, graph) in zip(manifest.inputs, graphInputs) {
            if let type = graph.elementType, type.rawValue != spec.datatype {
                throw ApusError(.badRequest, "\(directory)/manifest.json: input \(spec.name) is \(spec.datatype), the model takes \(type.rawValue)")
            }
            if let features = spec.features, let width = spec.shape.last, width > 0, features.count != width {
                throw ApusError(.badRequest, "\(directory)/manifest.json: input \(spec.name) lists \(features.count) features for width \(width)")
            }
        }
    }

    /// Runs the model once on a few reference rows (or zeros) so first requests do not pay for
    /// page faults and lazy setup, and so a model that cannot run never serves.
    static func warmUp(_ compiled: CompiledModel, reference: Tensor?, directory: String) throws {
        var feeds: [Tensor] = []
        for (index, input) in compiled.inputs.enumerated() {
            if index == 0, let reference, compiled.inputs.count == 1 {
                let rows = reference.shape.first ?? 0
                let sample = rows > 0 ? reference.rows(0..<min(rows, 16)) : reference
                feeds.append(try cast(sample, to: input.elementType ?? .float32))
                continue
            }
            let dims = (input.shape ?? [nil, 1]).enumerated().map { i, d in d ?? (i == 0 ? 1 : 1) }
            // The model file declares these dimensions: a product beyond what a request may send
            // (10^8 elements) fails the load rather than trapping or allocating gigabytes.
            guard let count = Tensor.boundedElementCount(dims) else {
                throw ApusError(.badRequest, "\(directory): input \(input.name) declares shape \(dims), more than 10^8 elements a row")
            }
            let data: Tensor.Data = switch input.elementType ?? .float32 {
            case .float64: .float64(Array(repeating: 0, count: count))
            case .int64: .int64(Array(repeating: 0, count: count))
            case .int32: .int32(Array(repeating: 0, count: count))
            case .bool: .bool(Array(repeating: false, count: count))
            case .string: .string(Array(repeating: "", count: count))
            case .float32: .float32(Array(repeating: 0, count: count))
            }
            feeds.append(try Tensor(shape: dims, data: data))
        }
        do {
            _ = try compiled.run(feeds)
        } catch let error as RuntimeError {
            throw ApusError(.badRequest, "\(directory): the model fails on its reference sample: \(error.message)", cause: error)
        }
    }

    /// `tensor` converted to the element type a model input takes.
    public static func cast(_ tensor: Tensor, to type: Tensor.ElementType) throws -> Tensor {
        if tensor.elementType == type { return tensor }
        switch type {
        case .float32: return try Tensor(shape: tensor.shape, data: .float32(tensor.floats()))
        case .float64: return try Tensor(shape: tensor.shape, data: .float64(tensor.floats().map(Double.init)))
        case .int64: return try Tensor(shape: tensor.shape, data: .int64(tensor.int64s()))
        case .int32: return try Tensor(shape: tensor.shape, data: .int32(tensor.int64s().map { Int32(truncatingIfNeeded: $0) }))
        default: throw ApusError(.badRequest, "the reference sample cannot be fed as \(type.rawValue)")
        }
    }
}
