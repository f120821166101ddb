#if canImport(Glibc)
import Glibc
#endif

/// Process-wide allocator settings for tensor work. glibc serves allocations above its mmap
/// threshold with fresh pages that fault in on every batch (measured: 14% of an MLP run at batch
/// 4096); keeping them in the heap lets freed tensor buffers be reused. Call once at start-up.
public enum HeapTuning {
    public static func apply() {
        #if os(Linux)
        // <malloc.h> is not part of the Glibc module map; the values are glibc's ABI constants.
        let trimThreshold: Int32 = -1  // M_TRIM_THRESHOLD
        let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD
        _ = glibcMallopt(mmapThreshold, 256 * 1024 * 1024)
        _ = glibcMallopt(trimThreshold, 512 * 1024 * 1024)
        #endif
    }

    /// Gives free heap pages back to the system. `apply()` raises the trim threshold so the hot
    /// path never pays for returning memory; without this call the pages of an unloaded model
    /// version would stay resident for the life of the process. Called when a version is freed
    /// (rare, off the request path in practice); costs about a millisecond on a small heap.
    public static func releaseFreeMemory() {
        #if os(Linux)
        if let mallctl = jemallocControl {
            // jemalloc (the executables link it): purge every arena's unused dirty pages now
            // rather than after its decay time. "arena.4096.purge" is MALLCTL_ARENAS_ALL.
            _ = "arena.4096.purge".withCString { mallctl($0, nil, nil, nil, 0) }
        } else if !sanitizerOwnsHeap {
            _ = glibcMallocTrim(0)
        }
        #endif
    }

    #if os(Linux)
    private typealias MallctlFunction = @convention(c) (UnsafePointer<CChar>?, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?,
                                                         UnsafeMutableRawPointer?, Int) -> Int32
    /// jemalloc's `mallctl`, when jemalloc is the process's allocator (looked up, not linked:
    /// the library targets run under either allocator).
    private static let jemallocControl: MallctlFunction? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallctl") else { return nil }
        return unsafeBitCast(symbol, to: MallctlFunction.self)
    }()

    /// Whether a sanitizer's runtime (thread or address, as in `swift test --sanitize=thread` and
    /// the fuzz build) serves malloc. glibc's heap then holds nothing of ours to give back, and
    /// `malloc_trim` walking it beside the sanitizer's allocator crashed a thread-sanitized test
    /// run (SEGV in `mtrim`, in one of three clean-clone CI runs on 2026-12-01).
    private static let sanitizerOwnsHeap: Bool = ["__tsan_init", "__asan_init"].contains { (name: String) in
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) != nil
    }
    #endif
}

#if os(Linux)
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32

@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
#endif
