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
        _ = glibcMallocTrim(0)
        #endif
    }
}

#if os(Linux)
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32

@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
#endif
