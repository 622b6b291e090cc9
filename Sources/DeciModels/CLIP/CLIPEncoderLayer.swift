// transformers' CLIPEncoderLayer, CLIPAttention and CLIPMLP (modeling_clip.py). Sequences are
// `[batch, tokens, hidden]`; property names are the checkpoint keys.
import DeciTensor
import DeciWeights

/// transformers' `CLIPEncoderLayer`: `x + attn(LN1(x))`, then `h + mlp(LN2(h))`. Causal in the
/// text tower; the same layer without the mask forms CLIP's vision tower.
public final class CLIPEncoderLayer: Sendable {
    let layer_norm1: LayerNorm
    let self_attn: CLIPAttention
    let layer_norm2: LayerNorm
    let mlp: CLIPMLP

    public init(_ w: WeightScope, hidden: Int, intermediate: Int, heads: Int, activation: Activation, eps: Float, causal: Bool,
                precision: Precision) throws(ModelError) {
        // Attention before the norms: a parameter plan lists tensors in the order asked for, and the
        // benchmarks' random checkpoints (whose values follow that order) are written in this one.
        self_attn = try CLIPAttention(w.scoped("self_attn."), hidden: hidden, heads: heads, causal: causal, precision: precision)
        layer_norm1 = try w.layerNorm("layer_norm1", channels: hidden, eps: eps)
        layer_norm2 = try w.layerNorm("layer_norm2", channels: hidden, eps: eps)
        mlp = try CLIPMLP(w.scoped("mlp."), hidden: hidden, intermediate: intermediate, activation: activation, precision: precision)
    }

    /// `x` `[batch, tokens, hidden]`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = self_attn(layer_norm1(x), residual: x)
        return mlp(layer_norm2(h), residual: h)
    }
}

/// transformers' `CLIPAttention` (q_proj, k_proj, v_proj, out_proj, all with biases), with q/k/v
/// as one fused matmul. Scale 1/sqrt(head dim).
public final class CLIPAttention: Sendable {
    public let heads: Int
    public let hidden: Int
    public let causal: Bool
    let precision: Precision
    let qkv_proj: Linear
    let out_proj: Linear

    public init(_ w: WeightScope, hidden: Int, heads: Int, causal: Bool, precision: Precision) throws(ModelError) {
        guard heads > 0, hidden % heads == 0 else { throw .config("\(w.prefix): \(hidden) channels do not split into \(heads) heads") }
        self.heads = heads
        self.hidden = hidden
        self.causal = causal
        self.precision = precision
        qkv_proj = try w.fusedLinear(["q_proj", "k_proj", "v_proj"], in: hidden, out: hidden, bias: true, precision: precision)
        out_proj = try w.linear("out_proj", in: hidden, out: hidden, precision: precision)
    }

    /// `x` `[batch, tokens, hidden]`; `residual` is added after the output projection.
    public func callAsFunction(_ x: Tensor, residual: Tensor? = nil) -> Tensor {
        let c = hidden
        let qkv = qkv_proj(x)
        let attended = Ops.attention(q: qkv.columns(0, c), k: qkv.columns(c, c), v: qkv.columns(2 * c, c), batch: x.shape[0],
                                     heads: heads, causal: causal, precision: precision)
        return out_proj(attended, residual: residual)
    }
}

/// transformers' `CLIPMLP`: fc1 with the activation fused, then fc2.
public final class CLIPMLP: Sendable {
    let fc1: Linear
    let fc2: Linear
    public let activation: Activation

    public init(_ w: WeightScope, hidden: Int, intermediate: Int, activation: Activation, precision: Precision) throws(ModelError) {
        fc1 = try w.linear("fc1", in: hidden, out: intermediate, precision: precision)
        fc2 = try w.linear("fc2", in: intermediate, out: hidden, precision: precision)
        self.activation = activation
    }

    /// `residual` is added after fc2.
    public func callAsFunction(_ x: Tensor, residual: Tensor? = nil) -> Tensor {
        fc2(fc1(x, activation: activation), residual: residual)
    }
}
