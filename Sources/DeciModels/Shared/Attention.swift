// diffusers `Attention` (attention_processor.py). Activations are NHWC; property names are the checkpoint keys.
import DeciTensor
import DeciWeights
import Foundation

/// diffusers `Attention` (to_q, to_k, to_v, to_out.0) for self- or cross-attention over `[n, t, c]`.
/// q/k/v are computed by one fused matmul (self) or q plus a fused k/v matmul (cross). The k/v of a
/// cross-attention context are cached: the text states stay the same across denoising steps.
public final class Attention: @unchecked Sendable {
    public let heads: Int
    public let channels: Int
    let to_qkv: Linear?  // self-attention
    let to_q: Linear?  // cross-attention
    let to_kv: Linear?
    let to_out: Linear
    let precision: Precision
    private let cacheLock = NSLock()
    // The context's storage is held (not just its address), so a freed context whose address is
    // reused by the next generation's text states can never hit the cache.
    private var cachedContext: TensorStorage?
    private var cachedKV: Tensor?

    /// `contextChannels` nil for self-attention.
    public init(_ w: WeightScope, channels: Int, heads: Int, contextChannels: Int?, qkvBias: Bool = false,
                precision: Precision) throws(ModelError) {
        guard heads > 0, channels % heads == 0 else { throw .config("\(w.prefix): \(channels) channels do not split into \(heads) heads") }
        self.heads = heads
        self.channels = channels
        self.precision = precision
        if let cc = contextChannels {
            to_qkv = nil
            to_q = try w.linear("to_q", in: channels, out: channels, bias: qkvBias, precision: precision)
            to_kv = try w.fusedLinear(["to_k", "to_v"], in: cc, out: channels, bias: qkvBias, precision: precision)
        } else {
            to_qkv = try w.fusedLinear(["to_q", "to_k", "to_v"], in: channels, out: channels, bias: qkvBias, precision: precision)
            to_q = nil
            to_kv = nil
        }
        to_out = try w.linear("to_out.0", in: channels, out: channels, precision: precision)
    }

    /// Output projection applied with `residual` added (the block's skip connection).
    public func callAsFunction(_ x: Tensor, context: Tensor? = nil, residual: Tensor? = nil) -> Tensor {
        let n = x.shape[0], c = channels
        let attended: Tensor
        if let to_qkv {
            let qkv = to_qkv(x)
            attended = Ops.attention(q: qkv.columns(0, c), k: qkv.columns(c, c), v: qkv.columns(2 * c, c), batch: n, heads: heads,
                                     precision: precision)
        } else if let to_q, let context {
            let q = to_q(x)
            let kv = keysAndValues(context)
            attended = Ops.attention(q: q.matrix, k: kv.columns(0, c), v: kv.columns(c, c), batch: n, heads: heads, precision: precision)
        } else {
            preconditionFailure("cross-attention \(self) called without a context")
        }
        return to_out(attended.reshaped(x.shape), residual: residual)
    }

    private func keysAndValues(_ context: Tensor) -> Tensor {
        cacheLock.lock()
        defer { cacheLock.unlock() }
        if let kv = cachedKV, cachedContext === context.storage { return kv }
        let kv = to_kv!(context)
        cachedKV = kv
        cachedContext = context.storage
        return kv
    }
}
