import CDeciKernels

/// Owns one pooled, 64-byte aligned float buffer, or none: while the thread has a fault pending
/// (see `BackendFault.swift`) and when allocating failed, a storage has no memory, and every op and
/// read-out checks `isAllocated` before touching it.
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    /// Whether `pointer` is real memory of `count` floats.
    public let isAllocated: Bool

    /// Allocates `count` floats, retrying once after trimming the buffer pool (cached buffers of
    /// other sizes may be what is in the way); a second failure records a fault naming `shape`.
    init(count: Int, shape: @autoclosure () -> [Int]) {
        self.count = count
        guard dd_fault_active() == 0 else {
            (pointer, isAllocated) = (noStorage, false)
            return
        }
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        var raw = dd_alloc(bytes)
        if raw == nil {
            dd_pool_trim()
            raw = dd_alloc(bytes)
        }
        guard let raw else {
            Fault.raise(op: "allocate", "out of memory allocating \(bytes) bytes for a tensor of shape \(shape())")
            (pointer, isAllocated) = (noStorage, false)
            return
        }
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        isAllocated = true
    }

    deinit { if isAllocated { dd_free(pointer, max(count, 1) * MemoryLayout<Float>.stride) } }
}

/// The pointer of a storage without memory: an address in the never-mapped first page, so a path
/// that forgot to check `isAllocated` stops at once instead of corrupting memory.
nonisolated(unsafe) private let noStorage: UnsafeMutablePointer<Float> =
    UnsafeMutablePointer(bitPattern: 64) ?? UnsafeMutablePointer<Float>.allocate(capacity: 16)

/// A dense float32 tensor. Images are NHWC `[n, h, w, c]`, sequences `[n, t, c]`; the last axis is
/// contiguous. Operations return new tensors; storage is shared by reshapes, so treat a tensor as
/// immutable unless an API says it writes in place.
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public let shape: [Int]
    public let storage: TensorStorage

    public var count: Int { storage.count }
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
    public var rank: Int { shape.count }
    /// Size of the last (contiguous) axis.
    public var channels: Int { shape.last ?? 1 }
    /// Number of rows of length `channels`.
    public var rows: Int { channels == 0 ? 0 : count / channels }
    /// False for a tensor made while a fault was pending or whose allocation failed: it has a
    /// shape but no memory, reads back as zeros and makes every op skip (see `BackendFault.swift`).
    public var isAllocated: Bool { storage.isAllocated }

    /// Uninitialised tensor of the given shape.
    public init(shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *), shape: shape)
    }

    public init(shape: [Int], data: [Float]) {
        let n = shape.reduce(1, *)
        precondition(n == data.count, "shape \(shape) holds \(n) elements, got \(data.count)")
        self.init(shape: shape)
        guard isAllocated else { return }
        data.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: n) }
        }
    }

    /// A tensor whose elements `fill` writes (it gets the whole buffer, contents undefined): data
    /// from a file lands in tensor memory without an intermediate array. Without memory (a pending
    /// fault) `fill` is not called.
    public init<E: Error>(shape: [Int], filling fill: (UnsafeMutableBufferPointer<Float>) throws(E) -> Void) throws(E) {
        self.init(shape: shape)
        guard isAllocated else { return }
        try fill(UnsafeMutableBufferPointer(start: pointer, count: count))
    }

    public static func zeros(_ shape: [Int]) -> Tensor {
        let t = Tensor(shape: shape)
        if t.isAllocated { t.pointer.update(repeating: 0, count: t.count) }
        return t
    }

    init(shape: [Int], storage: TensorStorage) {
        self.shape = shape
        self.storage = storage
    }

    /// Same data under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(shape: newShape, storage: storage)
    }

    /// The elements; zeros for a tensor without memory (its values are lost to a fault, which the
    /// caller's next `Backend.checkFault()` reports).
    public func toArray() -> [Float] {
        guard isAllocated else { return [Float](repeating: 0, count: count) }
        return Array(UnsafeBufferPointer(start: pointer, count: count))
    }

    /// One element; reads 0 and ignores writes without memory.
    public subscript(flat i: Int) -> Float {
        get { isAllocated ? pointer[i] : 0 }
        nonmutating set { if isAllocated { pointer[i] = newValue } }
    }

    /// A deep copy.
    public func copy() -> Tensor {
        let t = Tensor(shape: shape)
        if Fault.skips("copy", self, t) { return t }
        t.pointer.update(from: pointer, count: count)
        return t
    }

    /// Columns `[start, start + width)` of this tensor viewed as a `[rows, channels]` matrix,
    /// without copying (e.g. the q, k or v part of a fused projection).
    public func columns(_ start: Int, _ width: Int) -> MatrixView {
        precondition(start >= 0 && width >= 0 && start + width <= channels, "columns \(start)..<\(start + width) outside \(channels)")
        return MatrixView(base: self, offset: start, rows: rows, cols: width, ld: channels)
    }

    public var matrix: MatrixView { columns(0, channels) }

    public var description: String { "Tensor\(shape)" }
}

/// A row-major strided matrix inside a tensor's storage: row `r`, column `c` is at
/// `offset + r * ld + c`. Keeps its tensor alive.
public struct MatrixView: @unchecked Sendable {
    public let base: Tensor
    public let offset: Int
    public let rows: Int
    public let cols: Int
    public let ld: Int

    public var pointer: UnsafeMutablePointer<Float> { base.pointer + offset }
}

extension Tensor {
    /// Builds an NHWC tensor from PyTorch-ordered NCHW data.
    public static func fromNCHW(_ data: [Float], n: Int, c: Int, h: Int, w: Int) -> Tensor {
        precondition(data.count == n * c * h * w, "NCHW data has \(data.count) elements, want \(n * c * h * w)")
        let src = Tensor(shape: [n, c, h, w], data: data)
        let out = Tensor(shape: [n, h, w, c])
        if Fault.skips("fromNCHW", src, out) { return out }
        dd_nchw_to_nhwc(src.pointer, out.pointer, n, c, h * w)
        return out
    }

    /// This NHWC tensor's data in PyTorch's NCHW order.
    public func toNCHW() -> [Float] {
        precondition(rank == 4, "toNCHW needs a rank-4 NHWC tensor, got \(shape)")
        let out = Tensor(shape: [shape[0], shape[3], shape[1], shape[2]])
        if Fault.skips("toNCHW", self, out) { return [Float](repeating: 0, count: count) }
        dd_nhwc_to_nchw(pointer, out.pointer, shape[0], shape[1] * shape[2], shape[3])
        return out.toArray()
    }
}
