// diffusers `autoencoders/vae.py` Decoder, diffusers 0.42. Activations are NHWC; property names
// are the checkpoint keys.
import DeciTensor
import DeciWeights

/// diffusers VAE `Decoder`: conv_in, mid block, UpDecoderBlock2Ds (block_out_channels reversed),
/// GroupNorm + SiLU, conv_out.
final class VAEDecoder: @unchecked Sendable {
    let conv_in: Conv2d
    let mid_block: VAEMidBlock
    let up_blocks: [UpDecoderBlock2D]
    let conv_norm_out: GroupNorm
    let conv_out: Conv2d

    init(_ w: WeightScope, config c: AutoencoderKLConfig, precision: Precision) throws(ModelError) {
        let ch = Array(c.blockOutChannels.reversed()), g = c.normNumGroups
        conv_in = try w.conv("conv_in", in: c.latentChannels, out: ch[0], kernel: 3, precision: precision)
        mid_block = try VAEMidBlock(w.scoped("mid_block."), channels: ch[0], groups: g, attention: c.midBlockAddAttention, precision: precision)
        var blocks: [UpDecoderBlock2D] = []
        var cin = ch[0]
        for (i, cout) in ch.enumerated() {
            blocks.append(try UpDecoderBlock2D(w.scoped("up_blocks.\(i)."), in: cin, out: cout, layers: c.layersPerBlock + 1, groups: g,
                                               upsample: i != ch.count - 1, precision: precision))
            cin = cout
        }
        up_blocks = blocks
        conv_norm_out = try w.groupNorm("conv_norm_out", groups: g, channels: cin, eps: 1e-6)
        conv_out = try w.conv("conv_out", in: cin, out: c.outChannels, kernel: 3, precision: precision)
    }

    func callAsFunction(_ z: Tensor) -> Tensor {
        var h = mid_block(conv_in(z))
        for block in up_blocks { h = block(consume h) }
        return conv_out(conv_norm_out(h, silu: true))
    }
}
