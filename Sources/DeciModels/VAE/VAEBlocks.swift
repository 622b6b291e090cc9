// diffusers `unets/unet_2d_blocks.py` DownEncoderBlock2D, UpDecoderBlock2D and UNetMidBlock2D as
// the VAE builds them, and its spatial attention, diffusers 0.42. Activations are NHWC; property
// names are the checkpoint keys.
import DeciTensor
import DeciWeights

/// The resnets of a VAE encoder or decoder block: no time embedding, the first one widening `cin`
/// to `cout`.
private func vaeBlockResnets(_ w: WeightScope, in cin: Int, out cout: Int, layers: Int, groups: Int,
                             precision: Precision) throws(ModelError) -> [ResnetBlock2D] {
    var r: [ResnetBlock2D] = []
    for j in 0..<layers {
        r.append(try ResnetBlock2D(w.scoped("resnets.\(j)."), in: j == 0 ? cin : cout, out: cout, tembChannels: nil, groups: groups,
                                   eps: 1e-6, precision: precision))
    }
    return r
}

private func runVAEBlockResnets(_ resnets: [ResnetBlock2D], widens: Bool, _ x: consuming Tensor) -> Tensor {
    releaseCachedBuffers(ifLarge: x)
    var h = consume x
    for (j, r) in resnets.enumerated() {
        h = j == 0 && widens ? r.widening(consume h) : r(h)
    }
    return h
}

/// diffusers `DownEncoderBlock2D`: resnets without time embedding, then a stride-2 conv that pads
/// only bottom and right (except in the last block).
final class DownEncoderBlock2D: @unchecked Sendable {
    let resnets: [ResnetBlock2D]
    let downsampler: Downsample2D?
    let widens: Bool

    init(_ w: WeightScope, in cin: Int, out cout: Int, layers: Int, groups: Int, downsample: Bool, precision: Precision) throws(ModelError) {
        resnets = try vaeBlockResnets(w, in: cin, out: cout, layers: layers, groups: groups, precision: precision)
        widens = cin != cout
        downsampler = downsample ? try Downsample2D(w.scoped("downsamplers.0."), channels: cout, vaeStylePadding: true, precision: precision) : nil
    }

    func callAsFunction(_ x: consuming Tensor) -> Tensor {
        let h = runVAEBlockResnets(resnets, widens: widens, consume x)
        guard let downsampler else { return h }
        releaseCachedBuffers(ifLarge: h)
        return downsampler(h)
    }
}

/// diffusers `UpDecoderBlock2D`: resnets without time embedding, then nearest 2x + conv (except in
/// the last block).
final class UpDecoderBlock2D: @unchecked Sendable {
    let resnets: [ResnetBlock2D]
    let upsampler: Upsample2D?
    let widens: Bool

    init(_ w: WeightScope, in cin: Int, out cout: Int, layers: Int, groups: Int, upsample: Bool, precision: Precision) throws(ModelError) {
        resnets = try vaeBlockResnets(w, in: cin, out: cout, layers: layers, groups: groups, precision: precision)
        widens = cin != cout
        upsampler = upsample ? try Upsample2D(w.scoped("upsamplers.0."), channels: cout, precision: precision) : nil
    }

    func callAsFunction(_ x: consuming Tensor) -> Tensor {
        let h = runVAEBlockResnets(resnets, widens: widens, consume x)
        guard let upsampler else { return h }
        releaseCachedBuffers(ifLarge: h)
        return upsampler(h)
    }
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
