import ApusInference
import ApusONNX
import ApusRuntime
import ArgumentParser
import Foundation

/// `apus bundle create | validate | inspect`: make, check and describe model bundles
/// (`<repo>/<model>/<version>/`, see docs/bundles.md).
struct BundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Create, validate and inspect model bundles.",
        subcommands: [Create.self, Validate.self, Inspect.self]
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a bundle folder from an ONNX file and an optional reference sample.")

        @Option(help: "The ONNX model file.")
        var onnx: String

        @Option(help: "Reference sample of training inputs (.npy float array, or .csv with an optional header row); used for drift and validation.")
        var reference: String?

        @Option(help: "Output folder, normally <repo>/<model>/<version>.")
        var out: String

        @Option(help: "Model name (default: the output folder's parent name).")
        var name: String?

        @Option(help: "Version number (default: the output folder's name).")
        var version: Int?

        @Option(help: "Comma-separated feature names of the first input (default: the CSV header, if any).")
        var features: String?

        @Option(help: "Training metrics as name=value pairs, comma-separated (e.g. auc=0.91,accuracy=0.86).")
        var metrics: String?

        @Option(help: "Identifier of the training data (e.g. a snapshot date or hash).")
        var dataVersion: String?

        @Option(help: "Rows kept from the reference sample.")
        var referenceRows = 1000

        @Flag(help: "Replace the output folder if it exists (a served version is swapped whole, never seen half-written).")
        var force = false

        /// Builds the bundle in a hidden folder beside `--out` (the repository ignores names
        /// starting with a dot), validates it there, and renames it into place: a server watching
        /// the repository never sees a half-written version, and a failed create leaves nothing
        /// behind (it used to leave a folder holding only model.onnx, which the server then
        /// reported as a failed version).
        func run() throws {
            let outURL = URL(fileURLWithPath: out).standardizedFileURL
            let modelName = name ?? outURL.deletingLastPathComponent().lastPathComponent
            guard let versionNumber = version ?? Int(outURL.lastPathComponent), versionNumber >= 0 else {
                throw ValidationError("--version is required when the output folder is not named by a version number")
            }
            let fm = FileManager.default
            if fm.fileExists(atPath: outURL.path), !force {
                throw ValidationError("--out \(outURL.path) already exists: a version's bundle does not change once made; pick a new version, or pass --force to replace it")
            }
            // Checked here: Foundation's own error for a missing file is an NSCocoaErrorDomain dump.
            guard fm.fileExists(atPath: onnx) else { throw ValidationError("--onnx \(onnx): no such file") }
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: onnx))
            } catch {
                throw ValidationError("--onnx \(onnx) cannot be read: \((error as NSError).localizedDescription)")
            }
            let graph = try ONNXLoader.graphSpec(data: data, source: onnx)
            let compiled = try CompiledModel(graph)
            let parent = outURL.deletingLastPathComponent()
            try fm.createDirectory(at: parent, withIntermediateDirectories: true)
            let staging = parent.appendingPathComponent(".\(outURL.lastPathComponent).partial-\(ProcessInfo.processInfo.processIdentifier)")
            try? fm.removeItem(at: staging)
            try fm.createDirectory(at: staging, withIntermediateDirectories: false)
            do {
                let loaded = try build(in: staging, data: data, compiled: compiled, modelName: modelName, versionNumber: versionNumber)
                try Self.moveIntoPlace(staging, outURL)
                FileHandle.standardOutput.write(Data("created \(outURL.path): \(modelName) version \(versionNumber), inputs \(loaded.compiled.inputs.map(\.name)), validated\n".utf8))
            } catch {
                try? fm.removeItem(at: staging)
                throw error
            }
        }

        /// `staging` becomes `target`; an existing `target` (--force) is moved aside first and
        /// removed after, so the path always holds one whole bundle or none.
        static func moveIntoPlace(_ staging: URL, _ target: URL) throws {
            let fm = FileManager.default
            guard fm.fileExists(atPath: target.path) else { return try fm.moveItem(at: staging, to: target) }
            let old = target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).old-\(ProcessInfo.processInfo.processIdentifier)")
            try? fm.removeItem(at: old)
            try fm.moveItem(at: target, to: old)
            do {
                try fm.moveItem(at: staging, to: target)
            } catch {
                try? fm.moveItem(at: old, to: target)
                throw error
            }
            try? fm.removeItem(at: old)
        }

        /// Writes the bundle's files into `outURL` and loads it as the server would.
        private func build(in outURL: URL, data: Data, compiled: CompiledModel, modelName: String, versionNumber: Int) throws -> BundleLoader.Loaded {
            try data.write(to: outURL.appendingPathComponent("model.onnx"))
            var featureNames = features?.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            var referenceFile: String?
            if let reference {
                var (tensor, header) = try Self.readSample(reference)
                if featureNames == nil { featureNames = header }
                if let rows = tensor.shape.first, rows > referenceRows { tensor = tensor.rows(0..<referenceRows) }
                try Data(NPY.encode(tensor)).write(to: outURL.appendingPathComponent("reference.npy"))
                referenceFile = "reference.npy"
            }
            func spec(_ value: GraphSpec.ValueSpec, features: [String]?) -> BundleManifest.TensorSpec {
                BundleManifest.TensorSpec(name: value.name, datatype: (value.elementType ?? .float32).rawValue,
                                          shape: (value.shape ?? [nil]).map { $0 ?? -1 }, features: features)
            }
            var inputs = compiled.inputs.map { spec($0, features: nil) }
            if let featureNames, !inputs.isEmpty {
                if let width = inputs[0].shape.last, width > 0, width != featureNames.count {
                    throw ValidationError("\(featureNames.count) feature names for an input of width \(width)")
                }
                inputs[0].features = featureNames
            }
            var sums: [String: String] = [:]
            for file in ["model.onnx"] + (referenceFile.map { [$0] } ?? []) {
                sums[file] = try BundleLoader.sha256(path: outURL.appendingPathComponent(file).path)
            }
            var trainingMetrics: [String: Double]?
            if let metrics {
                trainingMetrics = [:]
                for pair in metrics.split(separator: ",") {
                    let parts = pair.split(separator: "=")
                    guard parts.count == 2, let value = Double(parts[1]) else { throw ValidationError("--metrics: \(pair) is not name=value") }
                    trainingMetrics?[String(parts[0])] = value
                }
            }
            let manifest = BundleManifest(name: modelName, version: versionNumber, modelFile: "model.onnx", inputs: inputs,
                                          outputs: compiled.outputs.map { spec($0, features: nil) }, batching: nil,
                                          training: (trainingMetrics != nil || dataVersion != nil) ? .init(metrics: trainingMetrics, dataVersion: dataVersion) : nil,
                                          referenceSample: referenceFile, sha256: sums)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(manifest).write(to: outURL.appendingPathComponent(BundleLoader.manifestName))
            return try BundleLoader.load(directory: outURL.path, model: modelName, version: versionNumber)
        }

        /// A sample as a float32 [rows, features] tensor, plus CSV header names if present.
        static func readSample(_ path: String) throws -> (Tensor, [String]?) {
            guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("--reference \(path): no such file") }
            if path.hasSuffix(".npy") { return (try NPY.read(URL(fileURLWithPath: path)), nil) }
            let text = try String(contentsOfFile: path, encoding: .utf8)
            var rows: [[Float]] = []
            var header: [String]?
            for (lineNumber, line) in text.split(whereSeparator: \.isNewline).enumerated() {
                let cells = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                let values = cells.map { $0.isEmpty ? Float.nan : Float($0) }
                if lineNumber == 0, values.contains(where: { $0 == nil }) {
                    header = cells
                    continue
                }
                let parsed = try values.enumerated().map { i, v -> Float in
                    guard let v else { throw ValidationError("\(path):\(lineNumber + 1): column \(i + 1) is not a number") }
                    return v
                }
                if let first = rows.first, first.count != parsed.count {
                    throw ValidationError("\(path):\(lineNumber + 1): \(parsed.count) columns, expected \(first.count)")
                }
                rows.append(parsed)
            }
            guard let width = rows.first?.count else { throw ValidationError("\(path) has no data rows") }
            return (try Tensor(shape: [rows.count, width], data: .float32(rows.flatMap { $0 })), header)
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a bundle: manifest, checksums, schema, and a test inference on its reference sample. Exit 1 on failure.")

        @Argument(help: "The bundle folder (<repo>/<model>/<version>).")
        var path: String

        func run() throws {
            let url = URL(fileURLWithPath: path).standardizedFileURL
            let manifest = try BundleLoader.readManifest(directory: url.path)
            do {
                let loaded = try BundleLoader.load(directory: url.path, model: manifest.name, version: manifest.version)
                let rows = loaded.reference?.shape.first.map { "\($0) reference rows ran" } ?? "no reference sample: ran on zeros"
                FileHandle.standardOutput.write(Data("ok: \(manifest.name) version \(manifest.version); checksums match; \(rows)\n".utf8))
            } catch {
                FileHandle.standardError.write(Data("invalid: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Describe a bundle: manifest, inputs, outputs, operators.")

        @Argument(help: "The bundle folder (<repo>/<model>/<version>).")
        var path: String

        func run() throws {
            let url = URL(fileURLWithPath: path).standardizedFileURL
            let manifest = try BundleLoader.readManifest(directory: url.path)
            let data = try Data(contentsOf: url.appendingPathComponent(manifest.modelFile))
            let graph = try ONNXLoader.graphSpec(data: data, source: manifest.modelFile)
            var ops: [String: Int] = [:]
            for node in graph.nodes { ops[node.opType, default: 0] += 1 }
            var lines = ["\(manifest.name) version \(manifest.version)  (\(manifest.modelFile), \(data.count) bytes)"]
            for input in manifest.inputs {
                lines.append("  input  \(input.name) \(input.datatype) \(input.shape)" + (input.features.map { " features: \($0.joined(separator: ", "))" } ?? ""))
            }
            for output in graph.outputs {
                lines.append("  output \(output.name) \(output.elementType?.rawValue ?? "?") \((output.shape ?? []).map { $0 ?? -1 })")
            }
            lines.append("  operators: " + ops.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", "))
            if let training = manifest.training {
                lines.append("  training: data \(training.dataVersion ?? "?"), metrics \(training.metrics ?? [:])")
            }
            lines.append("  reference sample: \(manifest.referenceSample ?? "none")")
            lines.append("  files: " + manifest.sha256.keys.sorted().joined(separator: ", "))
            FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        }
    }
}
