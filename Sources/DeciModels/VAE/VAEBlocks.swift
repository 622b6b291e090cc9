// diffusers `unets/unet_2d_blocks.py` DownEncoderBlock2D, UpDecoderBlock2D and UNetMidBlock2D as
// the VAE builds them, and its spatial attention, diffusers 0.42. Activations are NHWC; property
// names are the checkpoint keys.
import DeciTensor
import DeciWeights

/// The resnets of a VAE encoder or decoder block (`resnets.{j}`): no time embedding, the first
/// one widening `cin` to `cout`.
struct VAEBlockResnets {
    let layers: [ResnetBlock2D]
    let widens: Bool

    init(_ w: WeightScope, in cin: Int, out cout: Int, layers n: Int, groups: Int, precision: Precision) throws(ModelError) {
        var r: [ResnetBlock2D] = []
        for j in 0..<n {
            r.append(try ResnetBlock2D(w.scoped("resnets.\(j)."), in: j == 0 ? cin : cout, out: cout, tembChannels: nil, groups: groups,
                                       eps: 1e-6, precision: precision))
        }
        layers = r
        widens = cin != cout
    }

    func callAsFunction(_ x: consuming Tensor) -> Tensor {
        releaseCachedBuffers(ifLarge: x)
        var h = consume x
        for (j, r) in layers.enumerated() {
            h = j == 0 && widens ? r.widening(consume h) : r(h)
        }
        return h
    }
}

/// A block's resampler applied to its resnets' output `h` (after the cached buffers go back to the
/// system when `h` is large), or `h` itself when the block has none.
private func resampled(_ h: Tensor, by resample: ((Tensor) -> Tensor)?) -> Tensor {
    guard let resample else { return h }
    releaseCachedBuffers(ifLarge: h)
    return resample(h)
}

/// diffusers `DownEncoderBlock2D`: resnets without time embedding, then a stride-2 conv that pads
/// only bottom and right (except in the last block).
final class DownEncoderBlock2D: @unchecked Sendable {
    let resnets: VAEBlockResnets
    let downsampler: Downsample2D?

    init(_ w: WeightScope, in cin: Int, out cout: Int, layers: Int, groups: Int, downsample: Bool, precision: Precision) throws(ModelError) {
        resnets = try VAEBlockResnets(w, in: cin, out: cout, layers: layers, groups: groups, precision: precision)
        downsampler = downsample ? try Downsample2D(w.scoped("downsamplers.0."), channels: cout, vaeStylePadding: true, precision: precision) : nil
    }

    func callAsFunction(_ x: consuming Tensor) -> Tensor { resampled(resnets(consume x), by: downsampler?.callAsFunction) }
}

/// diffusers `UpDecoderBlock2D`: resnets without time embedding, then nearest 2x + conv (except in
/// the last block).
final class UpDecoderBlock2D: @unchecked Sendable {
    let resnets: VAEBlockResnets
    let upsampler: Upsample2D?

    init(_ w: WeightScope, in cin: Int, out cout: Int, layers: Int, groups: Int, upsample: Bool, precision: Precision) throws(ModelError) {
        resnets = try VAEBlockResnets(w, in: cin, out: cout, layers: layers, groups: groups, precision: precision)
        upsampler = upsample ? try Upsample2D(w.scoped("upsamplers.0."), channels: cout, precision: precision) : nil
    }

    func callAsFunction(_ x: consuming Tensor) -> Tensor { resampled(resnets(consume x), by: upsampler?.callAsFunction) }
}

/// diffusers `UNetMidBlock2D` as the VAE builds it: resnet, (attention), resnet.
final class VAEMidBlock: @unchecked Sendable {
    let resnets: [ResnetBlock2D]
    let attention: VAEAttentionBlock?

    init(_ w: WeightScope, channels c: Int, groups: Int, attention addAttention: Bool, precision: Precision) throws(ModelError) {
        resnets = try [0, 1].map { (j: Int) throws(ModelError) in
            try ResnetBlock2D(w.scoped("resnets.\(j)."), in: c, out: c, tembChannels: nil, groups: groups, eps: 1e-6, precision: precision)
        }
        attention = addAttention ? try VAEAttentionBlock(w.scoped("attentions.0."), channels: c, groups: groups, precision: precision) : nil
    }

    func callAsFunction(_ x: consuming Tensor) -> Tensor {
        var h = resnets[0](x)
        _ = consume x
        if let attention { h = attention(h) }
        return resnets[1](h)
    }
}

/// The VAE's spatial self-attention (diffusers `Attention` with `_from_deprecated_attn_block`):
/// GroupNorm (eps 1e-6), one head over all pixels with q/k/v biases, output projection, plus the
/// input. NHWC rows are already the `[n, h*w, c]` sequence.
final class VAEAttentionBlock: @unchecked Sendable {
    let group_norm: GroupNorm
    let attention: Attention

    init(_ w: WeightScope, channels c: Int, groups: Int, precision: Precision) throws(ModelError) {
        group_norm = try w.groupNorm("group_norm", groups: groups, channels: c, eps: 1e-6)
        attention = try Attention(w, channels: c, heads: 1, contextChannels: nil, qkvBias: true, precision: precision)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let (n, h, wd, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        return attention(group_norm(x).reshaped([n, h * wd, c]), residual: x).reshaped(x.shape)
    }
}
