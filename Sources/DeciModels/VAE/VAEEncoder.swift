// diffusers `autoencoders/vae.py` Encoder, diffusers 0.42. Activations are NHWC; property names
// are the checkpoint keys.
import DeciTensor
import DeciWeights

/// diffusers VAE `Encoder`: conv_in, DownEncoderBlock2Ds, mid block, GroupNorm + SiLU, conv_out to
/// 2 * latentChannels (mean and log-variance).
final class VAEEncoder: @unchecked Sendable {
    let conv_in: Conv2d
    let down_blocks: [DownEncoderBlock2D]
    let mid_block: VAEMidBlock
    let conv_norm_out: GroupNorm
    let conv_out: Conv2d

    init(_ w: WeightScope, config c: AutoencoderKLConfig, precision: Precision) throws(ModelError) {
        let ch = c.blockOutChannels, g = c.normNumGroups
        conv_in = try w.conv("conv_in", in: c.inChannels, out: ch[0], kernel: 3, precision: precision)
        var blocks: [DownEncoderBlock2D] = []
        var cin = ch[0]
        for (i, cout) in ch.enumerated() {
            blocks.append(try DownEncoderBlock2D(w.scoped("down_blocks.\(i)."), in: cin, out: cout, layers: c.layersPerBlock, groups: g,
                                                 downsample: i != ch.count - 1, precision: precision))
            cin = cout
        }
        down_blocks = blocks
        mid_block = try VAEMidBlock(w.scoped("mid_block."), channels: cin, groups: g, attention: c.midBlockAddAttention, precision: precision)
        conv_norm_out = try w.groupNorm("conv_norm_out", groups: g, channels: cin, eps: 1e-6)
        conv_out = try w.conv("conv_out", in: cin, out: 2 * c.latentChannels, kernel: 3, precision: precision)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = conv_in(x)
        for block in down_blocks { h = block(consume h) }
        h = mid_block(consume h)
        return conv_out(conv_norm_out(h, silu: true))
    }
}
