// Reading a layer's weights back and rewriting them in place: how a running process changes
// LoRAs without loading the base model again (the originals of the layers a LoRA touches are read
// back once and kept by the caller).
import CDeciKernels

/// A layer whose weights (PyTorch layout, float32) can be read back and replaced in place.
public protocol RewritableWeights: AnyObject, Sendable {
    /// Values in the weight: `out x in` (x kh x kw).
    var weightCount: Int { get }
    /// The weights as the layer holds them (bf16-rounded where it stores bf16).
    func readWeights() throws(KernelError) -> [Float]
    /// Replaces the weights, rounded as at creation. Not while the layer runs.
    func writeWeights(_ values: [Float]) throws(KernelError)
}

/// The shim calls behind both layer kinds: the kernel (nil for a placeholder), its name, and the
/// read / write entry points.
private struct WeightAccess {
    let handle: OpaquePointer?
    let what: String
    let count: Int
    let read: (OpaquePointer, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<CChar>, Int32) -> Int32
    let write: (OpaquePointer, UnsafePointer<Float>?, UnsafeMutablePointer<CChar>, Int32) -> Int32

    func get() throws(KernelError) -> [Float] {
        guard let handle else { throw KernelError("\(what) is a placeholder without weights") }
        var out = [Float](repeating: 0, count: count)
        let (rc, msg) = out.withUnsafeMutableBufferPointer { b in withErrorBuffer { read(handle, b.baseAddress, $0, $1) } }
        guard rc == 0 else { throw KernelError(msg) }
        return out
    }

    func set(_ values: [Float]) throws(KernelError) {
        guard let handle else { throw KernelError("\(what) is a placeholder without weights") }
        guard values.count == count else { throw KernelError("\(what): \(values.count) weight values, want \(count)") }
        let (rc, msg) = values.withUnsafeBufferPointer { b in withErrorBuffer { write(handle, b.baseAddress, $0, $1) } }
        guard rc == 0 else { throw KernelError(msg) }
    }
}

extension Linear: RewritableWeights {
    public var weightCount: Int { inFeatures * outFeatures }
    private var access: WeightAccess {
        WeightAccess(handle: handle, what: "Linear(\(inFeatures)->\(outFeatures))", count: weightCount,
                     read: dd_linear_read_weights, write: dd_linear_write_weights)
    }
    public func readWeights() throws(KernelError) -> [Float] { try access.get() }
    public func writeWeights(_ values: [Float]) throws(KernelError) { try access.set(values) }
}

extension Conv2d: RewritableWeights {
    public var weightCount: Int { outChannels * inChannels * kernelSize.0 * kernelSize.1 }
    private var access: WeightAccess {
        WeightAccess(handle: handle, what: "Conv2d(\(inChannels)->\(outChannels), \(kernelSize.0)x\(kernelSize.1))", count: weightCount,
                     read: dd_conv_read_weights, write: dd_conv_write_weights)
    }
    public func readWeights() throws(KernelError) -> [Float] { try access.get() }
    public func writeWeights(_ values: [Float]) throws(KernelError) { try access.set(values) }
}
