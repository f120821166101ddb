// libFuzzer target for the HTTP/2 transport's request rules: header fields, bodies and stream
// events decoded from the input drive a connection's state machine, and every request it
// dispatches is checked against RFC 9113's rules (see HTTP2EventFuzzing). Built and run like
// FuzzJSON (scripts/fuzz.sh fuzz-h2-headers); without FUZZING it is a corpus runner.
@_spi(Fuzzing) import ApusTransport
import Foundation

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    HTTP2EventFuzzing.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#else
@main
struct FuzzHTTP2HeadersRunner {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            if let data = FileManager.default.contents(atPath: path) { HTTP2EventFuzzing.run([UInt8](data)) }
        }
    }
}
#endif
