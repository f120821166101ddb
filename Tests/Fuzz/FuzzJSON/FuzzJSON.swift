// libFuzzer target for the KServe v2 JSON decoder (scripts/fuzz.sh builds it with -DFUZZING and
// -sanitize=fuzzer,address). Without FUZZING it is a corpus runner: every file argument is fed
// once, so crashes found by the fuzzer stay regression tests.
import ApusInference
import ApusWire
import Foundation

func fuzzOne(_ bytes: [UInt8]) {
    // Plain JSON, and the binary-data extension with the JSON header length taken from the
    // first byte, so both paths are explored.
    _ = try? KServeJSONCodec.decodeRequest(bytes, jsonLength: nil, model: "m", version: nil)
    if let first = bytes.first {
        _ = try? KServeJSONCodec.decodeRequest(Array(bytes.dropFirst()), jsonLength: Int(first), model: "m", version: .version(1))
    }
    _ = try? JSONValue.parse(bytes)
    // The client reads answers through the same JSON: a hostile server must not crash it.
    _ = try? ClientCodec.decodeResponse(status: 200, contentType: "application/json", body: bytes)
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    fuzzOne(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#else
@main
struct FuzzJSONRunner {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            if let data = FileManager.default.contents(atPath: path) { fuzzOne([UInt8](data)) }
        }
    }
}
#endif
