// diffusers `FeedForward` (GEGLU), `BasicTransformerBlock` and `Transformer2DModel` (attention.py,
// transformer_2d.py). Activations are NHWC; property names are the checkpoint keys.
import DeciTensor
import DeciWeights

/// diffusers `FeedForward` with GEGLU: `net.0.proj` (c -> 2 * inner), GEGLU, `net.2` (inner -> c).
public final class FeedForward: @unchecked Sendable {
    let proj: Linear
    let out: Linear

    public init(_ w: WeightScope, channels: Int, inner: Int, precision: Precision) throws(ModelError) {
        proj = try w.linear("net.0.proj", in: channels, out: 2 * inner, precision: precision)
        out = try w.linear("net.2", in: inner, out: channels, precision: precision)
    }

    public func callAsFunction(_ x: Tensor, residual: Tensor? = nil) -> Tensor {
        out(Ops.geglu(proj(x)), residual: residual)
    }
}

/// diffusers `BasicTransformerBlock` as SD uses it: pre-LayerNorm self-attention, cross-attention
/// and GEGLU feed-forward, each with a residual.
public final class BasicTransformerBlock: @unchecked Sendable {
    let norm1: LayerNorm
    let attn1: Attention
    let norm2: LayerNorm
    let attn2: Attention
    let norm3: LayerNorm
    let ff: FeedForward

    public init(_ w: WeightScope, channels: Int, heads: Int, contextChannels: Int, precision: Precision) throws(ModelError) {
        // Attentions before norms: a parameter plan lists tensors in the order asked for, and the
        // benchmarks' random checkpoints (whose values follow that order) are written in this one.
        attn1 = try Attention(w.scoped("attn1."), channels: channels, heads: heads, contextChannels: nil, precision: precision)
        attn2 = try Attention(w.scoped("attn2."), channels: channels, heads: heads, contextChannels: contextChannels, precision: precision)
        norm1 = try w.layerNorm("norm1", channels: channels, eps: 1e-5)
        norm2 = try w.layerNorm("norm2", channels: channels, eps: 1e-5)
        norm3 = try w.layerNorm("norm3", channels: channels, eps: 1e-5)
        ff = try FeedForward(w.scoped("ff."), channels: channels, inner: 4 * channels, precision: precision)
    }

    public func callAsFunction(_ x: Tensor, context: Tensor) -> Tensor {
        var h = attn1(norm1(x), residual: x)
        h = attn2(norm2(h), context: context, residual: h)
        return ff(norm3(h), residual: h)
    }
}

/// diffusers `Transformer2DModel` with one transformer block: GroupNorm(eps 1e-6), proj_in,
/// block, proj_out, plus the input. proj_in/proj_out are 1x1 convs or linears in checkpoints; over
/// NHWC rows both are the same matmul, and loading takes either (`linearProjection` says which the
/// model's config declares, for its parameter plan).
public final class Transformer2DModel: @unchecked Sendable {
    let norm: GroupNorm
    let proj_in: Linear
    let transformer_blocks: [BasicTransformerBlock]
    let proj_out: Linear

    public init(_ w: WeightScope, channels: Int, heads: Int, contextChannels: Int, layers: Int = 1, groups: Int = 32,
                linearProjection: Bool = false, precision: Precision) throws(ModelError) {
        norm = try w.groupNorm("norm", groups: groups, channels: channels, eps: 1e-6)
        proj_in = try w.linear("proj_in", in: channels, out: channels, convShaped: !linearProjection, precision: precision)
        var blocks: [BasicTransformerBlock] = []
        for i in 0..<layers {
            blocks.append(try BasicTransformerBlock(w.scoped("transformer_blocks.\(i)."), channels: channels, heads: heads,
                                                    contextChannels: contextChannels, precision: precision))
        }
        transformer_blocks = blocks
        proj_out = try w.linear("proj_out", in: channels, out: channels, convShaped: !linearProjection, precision: precision)
    }

    /// `x` `[n, h, w, c]`, `context` `[n, tokens, contextChannels]`.
    public func callAsFunction(_ x: Tensor, context: Tensor) -> Tensor {
        let (n, hgt, wid, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var h = proj_in(norm(x).reshaped([n, hgt * wid, c]))
        for block in transformer_blocks { h = block(h, context: context) }
        return proj_out(h, residual: x).reshaped(x.shape)
    }
}
