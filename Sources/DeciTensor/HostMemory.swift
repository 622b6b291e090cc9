import CDeciKernels
import Foundation

/// Host-side conversions the weight loader needs, vectorised in the kernel layer.
public enum HostConversion {
    /// IEEE half bit patterns (read unaligned) to float32, exactly.
    public static func halfToFloat(_ source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        dd_f16_to_f32(source.assumingMemoryBound(to: UInt16.self), destination, count)
    }
}

/// One reusable float32 staging buffer for loading: weights are converted into it and packed from
/// it, so loading a model touches fresh pages only for the packed copies (a new array per tensor
/// made page clearing the largest cost of loading). Concurrent users each get their own buffer;
/// the largest is kept for the next load.
public enum StagingBuffer {
    private final class Cache: @unchecked Sendable {
        let lock = NSLock()
        var buffer: UnsafeMutablePointer<Float>?
        var capacity = 0
    }
    private static let cache = Cache()

    /// Runs `body` with room for `count` floats (contents undefined).
    public static func withFloats<R, E: Error>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws(E) -> R) throws(E) -> R {
        let need = max(count, 1)
        cache.lock.lock()
        var buffer = cache.buffer, capacity = cache.capacity
        cache.buffer = nil
        cache.capacity = 0
        cache.lock.unlock()
        if capacity < need {
            free(buffer)
            guard let raw = dd_alloc_large(need * 4) else { fatalError("out of memory allocating \(need * 4) bytes of staging memory") }
            buffer = raw.bindMemory(to: Float.self, capacity: need)
            capacity = need
        }
        defer {
            cache.lock.lock()
            if cache.capacity < capacity {
                free(cache.buffer)
                cache.buffer = buffer
                cache.capacity = capacity
            } else {
                free(buffer)
            }
            cache.lock.unlock()
        }
        return try body(buffer!)
    }

    /// Returns the staging memory (call after loading).
    public static func release() {
        cache.lock.lock()
        free(cache.buffer)
        cache.buffer = nil
        cache.capacity = 0
        cache.lock.unlock()
    }
}
