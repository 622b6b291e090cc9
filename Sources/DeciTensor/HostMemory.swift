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

    /// Why `withFloats` could not return `body`'s result.
    public enum Failure<E: Error>: Error {
        /// No memory for the buffer, even after trimming the buffer pool.
        case outOfMemory(bytes: Int)
        case body(E)
    }

    /// Runs `body` with room for `count` floats (contents undefined). The buffer is allocated once
    /// more after trimming the buffer pool before giving up, so loading reports running out of
    /// memory as an error instead of stopping the process.
    public static func withFloats<R, E: Error>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws(E) -> R) throws(Failure<E>) -> R {
        let need = max(count, 1)
        cache.lock.lock()
        var cached = cache.buffer, capacity = cache.capacity
        cache.buffer = nil
        cache.capacity = 0
        cache.lock.unlock()
        if capacity < need {
            free(cached)
            (cached, capacity) = (nil, 0)
            var raw = dd_alloc_large(need * 4)
            if raw == nil {
                dd_pool_trim()
                raw = dd_alloc_large(need * 4)
            }
            if let raw {
                cached = raw.bindMemory(to: Float.self, capacity: need)
                capacity = need
            }
        }
        guard let buffer = cached else { throw .outOfMemory(bytes: need * 4) }
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
        do throws(E) { return try body(buffer) } catch { throw .body(error) }
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
