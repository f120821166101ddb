#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the protobuf codecs keep per thread between requests: the last answer template and
/// the last request template. Thread-local, so neither needs a lock: requests are decoded on
/// their connection's event loop and answers encoded on the thread that ran their batch, each
/// one after another.
final class CodecScratch {
    /// The last batch's answer template (`ProtobufAnswerTemplate`).
    var answerTemplate: ProtobufAnswerTemplate?
    /// The storage address of the last batch answered without a template.
    var lastBatch: UInt = 0
    /// Whether that batch was found unable to have a template.
    var batchRefused = false

    /// The last request template (`ProtobufRequestTemplate`).
    var requestTemplate: ProtobufRequestTemplate?
    /// The layout (body size, start of the raw contents) of the last body decoded without a
    /// template: a template is built when the next one has the same.
    var lastLayout: (size: Int, rawStart: Int) = (-1, -1)
    /// Bodies still to decode without building a template, after one went unused.
    var requestBackoff = 0

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        // A failure here only means no template is ever kept (`current` makes a new box).
        _ = pthread_key_create(&key) { raw in
            guard let raw else { return }
            Unmanaged<CodecScratch>.fromOpaque(raw).release()
        }
        return key
    }()

    /// This thread's box.
    static var current: CodecScratch {
        if let raw = pthread_getspecific(key) { return Unmanaged<CodecScratch>.fromOpaque(raw).takeUnretainedValue() }
        let scratch = CodecScratch()
        if pthread_setspecific(key, Unmanaged.passRetained(scratch).toOpaque()) != 0 {
            // Not stored: balance the retain; the box lives for this call only.
            Unmanaged.passUnretained(scratch).release()
        }
        return scratch
    }
}
