// Building blocks shared by the UNets and the VAE, matching diffusers' ResnetBlock2D,
// Downsample2D, Upsample2D, Attention, FeedForward(GEGLU), BasicTransformerBlock,
// Transformer2DModel, Timesteps and TimestepEmbedding. Activations are NHWC; property names are the
// checkpoint keys.
import DeciTensor
import DeciWeights
import Foundation

/// diffusers `ResnetBlock2D`: GroupNorm, SiLU, conv3x3, (+ time embedding), GroupNorm, SiLU,
/// conv3x3, plus a 1x1 shortcut when the width changes.
public final class ResnetBlock2D: @unchecked Sendable {
    let norm1: GroupNorm
    let conv1: Conv2d
    let time_emb_proj: Linear?
    let norm2: GroupNorm
    let conv2: Conv2d
    let conv_shortcut: Conv2d?

    public init(_ w: WeightScope, in cin: Int, out cout: Int, tembChannels: Int?, groups: Int = 32, eps: Float,
                precision: Precision) throws(ModelError) {
        norm1 = try w.groupNorm("norm1", groups: groups, channels: cin, eps: eps)
        conv1 = try w.conv("conv1", in: cin, out: cout, kernel: 3, precision: precision)
        time_emb_proj = try tembChannels.map { (t: Int) throws(ModelError) in
            try w.linear("time_emb_proj", in: t, out: cout, precision: precision)
        }
        norm2 = try w.groupNorm("norm2", groups: groups, channels: cout, eps: eps)
        conv2 = try w.conv("conv2", in: cout, out: cout, kernel: 3, precision: precision)
        conv_shortcut = cin == cout ? nil : try w.conv("conv_shortcut", in: cin, out: cout, kernel: 1, precision: precision)
    }

    /// `x` `[n, h, w, in]`; `tembSilu` is SiLU(time embedding) `[n, temb]`, shared by all blocks.
    public func callAsFunction(_ x: Tensor, tembSilu: Tensor? = nil) -> Tensor {
        var h = conv1(norm1(x, silu: true))
        let tproj = time_emb_proj.flatMap { proj in tembSilu.map { proj($0) } }
        h = norm2(h, silu: true, addBias: tproj)
        let shortcut = conv_shortcut?(x) ?? x
        return conv2(h, residual: shortcut)
    }
}

/// diffusers `Downsample2D` with a conv: 3x3 stride 2. `padding` 1 in the UNets; the VAE encoder
/// uses padding 0 after padding bottom/right by one.
public final class Downsample2D: @unchecked Sendable {
    let conv: Conv2d

    public init(_ w: WeightScope, channels: Int, vaeStylePadding: Bool = false, precision: Precision) throws(ModelError) {
        conv = try w.conv("conv", in: channels, out: channels, kernel: 3, stride: 2, padding: vaeStylePadding ? 0 : 1,
                          extraBottomRight: vaeStylePadding ? 1 : 0, precision: precision)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { conv(x) }
}

/// diffusers `Upsample2D` with a conv: nearest 2x, then 3x3.
public final class Upsample2D: @unchecked Sendable {
    let conv: Conv2d

    public init(_ w: WeightScope, channels: Int, precision: Precision) throws(ModelError) {
        conv = try w.conv("conv", in: channels, out: channels, kernel: 3, precision: precision)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { conv(upsampling2x: x) }
}

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
        norm1 = try w.layerNorm("norm1", channels: channels, eps: 1e-5)
        attn1 = try Attention(w.scoped("attn1."), channels: channels, heads: heads, contextChannels: nil, precision: precision)
        norm2 = try w.layerNorm("norm2", channels: channels, eps: 1e-5)
        attn2 = try Attention(w.scoped("attn2."), channels: channels, heads: heads, contextChannels: contextChannels, precision: precision)
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
/// NHWC rows both are the same matmul.
public final class Transformer2DModel: @unchecked Sendable {
    let norm: GroupNorm
    let proj_in: Linear
    let transformer_blocks: [BasicTransformerBlock]
    let proj_out: Linear

    public init(_ w: WeightScope, channels: Int, heads: Int, contextChannels: Int, layers: Int = 1, groups: Int = 32,
                precision: Precision) throws(ModelError) {
        norm = try w.groupNorm("norm", groups: groups, channels: channels, eps: 1e-6)
        proj_in = try w.linear("proj_in", in: channels, out: channels, precision: precision)
        var blocks: [BasicTransformerBlock] = []
        for i in 0..<layers {
            blocks.append(try BasicTransformerBlock(w.scoped("transformer_blocks.\(i)."), channels: channels, heads: heads,
                                                    contextChannels: contextChannels, precision: precision))
        }
        transformer_blocks = blocks
        proj_out = try w.linear("proj_out", in: channels, out: channels, precision: precision)
    }

    /// `x` `[n, h, w, c]`, `context` `[n, tokens, contextChannels]`.
    public func callAsFunction(_ x: Tensor, context: Tensor) -> Tensor {
        let (n, hgt, wid, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var h = proj_in(norm(x).reshaped([n, hgt * wid, c]))
        for block in transformer_blocks { h = block(h, context: context) }
        return proj_out(h, residual: x).reshaped(x.shape)
    }
}

/// diffusers `Timesteps` + `TimestepEmbedding`: sinusoidal projection of the timestep, then
/// linear_1, SiLU, linear_2.
public final class TimestepEmbedding: @unchecked Sendable {
    public let projectionChannels: Int
    let flipSinToCos: Bool
    let freqShift: Float
    let linear_1: Linear
    let linear_2: Linear

    public init(_ w: WeightScope, projectionChannels: Int, embeddingChannels: Int, flipSinToCos: Bool = true, freqShift: Float = 0,
                precision: Precision) throws(ModelError) {
        self.projectionChannels = projectionChannels
        self.flipSinToCos = flipSinToCos
        self.freqShift = freqShift
        linear_1 = try w.linear("linear_1", in: projectionChannels, out: embeddingChannels, precision: precision)
        linear_2 = try w.linear("linear_2", in: embeddingChannels, out: embeddingChannels, precision: precision)
    }

    /// The sinusoidal features of `timesteps` as diffusers' `get_timestep_embedding` computes them
    /// in float32: `[cos, sin]` halves when flipped.
    public func sinusoidal(_ timesteps: [Float]) -> Tensor {
        Ops.timestepEmbedding(timesteps, channels: projectionChannels, flipSinToCos: flipSinToCos, freqShift: freqShift)
    }

    /// Time embedding `[n, embeddingChannels]` for one timestep per batch element.
    public func callAsFunction(_ timesteps: [Float]) -> Tensor {
        linear_2(linear_1(sinusoidal(timesteps), activation: .silu))
    }
}
