// Changes merged into weights while a model's layers are built from a store (LoRA deltas): each
// layer builder converts a checkpoint tensor to float32 in PyTorch layout, then lets the store's
// adjustments add to it before the layer packs its own copy in the compute precision, and reports
// the layer it built (so the changes can be replaced later without reading the checkpoint again).

/// Additive changes to checkpoint tensors, applied as they are converted at load.
public protocol WeightAdjustments: AnyObject, Sendable {
    /// Adds the changes for checkpoint key `key` (shape `shape`, PyTorch layout) to `values`;
    /// does nothing for a key without changes.
    func adjust(_ key: String, shape: [Int], values: UnsafeMutableBufferPointer<Float>) throws(WeightsError)
    /// The layer built from `key`: its weight values `values` (a range of the layer's own, in
    /// PyTorch layout; fused projections hold several keys) came from that tensor.
    func built(_ key: String, layer: AnyObject, values: Range<Int>)
}
