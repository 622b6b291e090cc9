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

extension Linear: RewritableWeights {
    public var weightCount: Int { inFeatures * outFeatures }

    public func readWeights() throws(KernelError) -> [Float] {
        guard let handle else { throw KernelError("Linear(\(inFeatures)->\(outFeatures)) is a placeholder without weights") }
        var out = [Float](repeating: 0, count: weightCount)
        let (rc, msg) = out.withUnsafeMutableBufferPointer { b in withErrorBuffer { dd_linear_read_weights(handle, b.baseAddress, $0, $1) } }
        guard rc == 0 else { throw KernelError(msg) }
        return out
    }

    public func writeWeights(_ values: [Float]) throws(KernelError) {
        guard let handle else { throw KernelError("Linear(\(inFeatures)->\(outFeatures)) is a placeholder without weights") }
        guard values.count == weightCount else { throw KernelError("linear weight has \(values.count) values, want \(outFeatures)x\(inFeatures)") }
        let (rc, msg) = values.withUnsafeBufferPointer { b in withErrorBuffer { dd_linear_write_weights(handle, b.baseAddress, $0, $1) } }
        guard rc == 0 else { throw KernelError(msg) }
    }
}

extension Conv2d: RewritableWeights {
    public var weightCount: Int { outChannels * inChannels * kernelSize.0 * kernelSize.1 }

    public func readWeights() throws(KernelError) -> [Float] {
        guard let handle else { throw KernelError("Conv2d(\(inChannels)->\(outChannels)) is a placeholder without weights") }
        var out = [Float](repeating: 0, count: weightCount)
        let (rc, msg) = out.withUnsafeMutableBufferPointer { b in withErrorBuffer { dd_conv_read_weights(handle, b.baseAddress, $0, $1) } }
        guard rc == 0 else { throw KernelError(msg) }
        return out
    }

    public func writeWeights(_ values: [Float]) throws(KernelError) {
        guard let handle else { throw KernelError("Conv2d(\(inChannels)->\(outChannels)) is a placeholder without weights") }
        guard values.count == weightCount else { throw KernelError("conv weight has \(values.count) values, want \(weightCount)") }
        let (rc, msg) = values.withUnsafeBufferPointer { b in withErrorBuffer { dd_conv_write_weights(handle, b.baseAddress, $0, $1) } }
        guard rc == 0 else { throw KernelError(msg) }
    }
}
