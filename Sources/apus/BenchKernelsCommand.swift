import ApusONNX
import ApusRuntime
import ArgumentParser
import Foundation

/// `apus bench-kernels`: rows/s of the native kernels on a model and an input file, per batch
/// size. `scripts/bench-kernels.py` runs it next to onnxruntime in the same run.
struct BenchKernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-kernels",
        abstract: "Measure model execution speed (rows/s) per batch size; prints one JSON object per line."
    )

    @Option(help: "ONNX model file.")
    var model: String

    @Option(help: "Input rows (.npy, float32 [N, F]); tiled to each batch size.")
    var inputs: String

    @Option(help: "Comma-separated batch sizes.")
    var batches = "1,16,256,4096"

    @Option(help: "Seconds of measurement per batch size (after a warm-up of a tenth of that).")
    var seconds: Double = 1

    func run() throws {
        HeapTuning.apply()
        HeapTuning.releaseFreeMemory()
        let residentBefore = Self.residentBytes()
        let loadStart = ContinuousClock.now
        let compiled = try ONNXLoader.load(path: model)
        let loadTime = ContinuousClock.now - loadStart
        // What the loaded model keeps resident once the decoding's temporary memory is freed.
        HeapTuning.releaseFreeMemory()
        let modelResident = Self.residentBytes() - residentBefore
        let fileSize = (try? FileManager.default.attributesOfItem(atPath: model)[.size] as? Int) ?? 0
        let source = try NPY.read(URL(fileURLWithPath: inputs))
        let width = source.shape.count == 2 ? source.shape[1] : source.count
        let rows = try source.floats()
        let sourceRows = rows.count / max(width, 1)
        for batch in batches.split(separator: ",").compactMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) where batch > 0 {
            // Every call gets the next window of distinct rows (cycling through the file), so the
            // CPU's branch predictor cannot learn one batch's tree paths; a file shorter than
            // the batch is tiled.
            var inputs: [Tensor] = []
            for window in 0..<max(1, sourceRows / batch) {
                var values = [Float]()
                values.reserveCapacity(batch * width)
                for r in 0..<batch {
                    let s = (window * batch + r) % sourceRows
                    values.append(contentsOf: rows[(s * width)..<((s + 1) * width)])
                }
                inputs.append(try Tensor(shape: [batch, width], data: .float32(values)))
            }
            // Warm-up, then timed runs until the time budget is spent.
            var next = 0
            let warmUntil = ContinuousClock.now + .milliseconds(Int64(seconds * 100))
            while ContinuousClock.now < warmUntil {
                _ = try compiled.run([inputs[next]])
                next = (next + 1) % inputs.count
            }
            var runs = 0
            let start = ContinuousClock.now
            let deadline = start + .milliseconds(Int64(seconds * 1000))
            repeat {
                _ = try compiled.run([inputs[next]])
                next = (next + 1) % inputs.count
                runs += 1
            } while ContinuousClock.now < deadline
            let elapsed = ContinuousClock.now - start
            let secondsElapsed = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let rowsPerSecond = Double(runs * batch) / secondsElapsed
            let loadMs = Double(loadTime.components.seconds) * 1000 + Double(loadTime.components.attoseconds) / 1e15
            FileHandle.standardOutput.write(Data(
                "{\"engine\":\"apus\",\"model\":\(JSONQuote(model)),\"batch\":\(batch),\"rows_per_s\":\(rowsPerSecond),\"ns_per_row\":\(1e9 / rowsPerSecond),\"load_ms\":\(loadMs),\"model_resident_bytes\":\(modelResident),\"file_bytes\":\(fileSize)}\n".utf8
            ))
        }
    }
}

extension BenchKernelsCommand {
    /// Resident set size from /proc/self/statm (0 where there is none).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

private func JSONQuote(_ s: String) -> String {
    "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}
