// libFuzzer target for the Apus protobuf decoders (request and, client side, response).
// See FuzzJSON/main.swift for how it is built and run.
import ApusInference
import ApusWire
import Foundation

func fuzzOne(_ bytes: [UInt8]) {
    _ = try? ProtobufCodec.decodeRequest(bytes, model: "m", selector: nil)
    _ = try? ClientCodec.decodeResponse(status: 200, contentType: WireFormat.protobufContentType, body: bytes)
    _ = try? ClientCodec.decodeResponse(status: 400, contentType: WireFormat.protobufContentType, body: bytes)
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    fuzzOne(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#else
@main
struct FuzzProtobufRunner {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            if let data = FileManager.default.contents(atPath: path) { fuzzOne([UInt8](data)) }
        }
    }
}
#endif
