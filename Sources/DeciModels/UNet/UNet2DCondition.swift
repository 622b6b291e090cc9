// diffusers' UNet2DConditionModel (unet_2d_condition.py, unet_2d_blocks.py) for Stable Diffusion
// 1.x/2.x configs: CrossAttnDownBlock2D / DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D /
// CrossAttnUpBlock2D. Activations NHWC; property names are checkpoint keys.
import DeciTensor
import DeciWeights
import Foundation

/// The Stable Diffusion UNet (diffusers `UNet2DConditionModel`), e.g. SD 1.5 — the baseline
/// DeciDiffusion is compared with, and the `unet/` folder of SD-family checkpoints.
///
/// Skips follow diffusers: conv_in's output, every resnet (after its attention, in cross-attention
/// blocks) and every downsample; each up-block resnet concatenates `[h, newest skip]`.
public final class UNet2DConditionModel: SDFamilyUNet, SDFamilyUNetModel, @unchecked Sendable {
    public let config: UNet2DConditionConfig
    let down_blocks: [Block]
    let mid_block: Block
    let up_blocks: [Block]

    /// A down, mid or up block: resnets[i] followed by attentions[i] when present, then a resampler.
    /// (The mid block instead runs resnets[0], then attention i before resnet i + 1.)
    struct Block {
        let resnets: [ResnetBlock2D]
        let attentions: [Transformer2DModel]
        let downsampler: Downsample2D?
        let upsampler: Upsample2D?
    }

    /// Builds the model from `weights` (keys relative to the scope) and fails if the scope holds
    /// tensors the model does not use.
    public init(config: UNet2DConditionConfig, weights w: WeightScope, precision: Precision) throws(ModelError) {
        let l = try config.layout()
        let shell = config.shell
        let temb = shell.timeEmbeddingChannels
        let groups = l.groups
        let eps = shell.normEps
        self.config = config
        let head = try UNetShell(w, config: shell, precision: precision)

        func resnet(_ key: String, _ cin: Int, _ cout: Int) throws(ModelError) -> ResnetBlock2D {
            try ResnetBlock2D(w.scoped(key + "."), in: cin, out: cout, tembChannels: temb, groups: groups, eps: eps, precision: precision)
        }
        func transformer(_ key: String, _ c: Int, heads: Int, layers: Int) throws(ModelError) -> Transformer2DModel {
            try Transformer2DModel(w.scoped(key + "."), channels: c, heads: heads, contextChannels: l.contextChannels, layers: layers,
                                   groups: groups, linearProjection: config.useLinearProjection, precision: precision)
        }

        var down: [Block] = []
        for (i, b) in l.down.enumerated() {
            var resnets: [ResnetBlock2D] = [], attentions: [Transformer2DModel] = []
            for j in 0..<b.layers {
                resnets.append(try resnet("down_blocks.\(i).resnets.\(j)", j == 0 ? b.inChannels : b.outChannels, b.outChannels))
                if b.crossAttention {
                    attentions.append(try transformer("down_blocks.\(i).attentions.\(j)", b.outChannels, heads: b.heads, layers: b.transformerLayers))
                }
            }
            let ds = b.resample
                ? try Downsample2D(w.scoped("down_blocks.\(i).downsamplers.0."), channels: b.outChannels,
                                   vaeStylePadding: config.downsamplePadding == 0, precision: precision)
                : nil
            down.append(Block(resnets: resnets, attentions: attentions, downsampler: ds, upsampler: nil))
        }
        down_blocks = down

        let midC = shell.blockOutChannels[shell.blockOutChannels.count - 1]
        // In the order the mid block runs them (and a parameter plan lists them).
        let midFirst = try resnet("mid_block.resnets.0", midC, midC)
        let midAttention = try transformer("mid_block.attentions.0", midC, heads: l.midHeads, layers: l.midTransformerLayers)
        let midSecond = try resnet("mid_block.resnets.1", midC, midC)
        mid_block = Block(resnets: [midFirst, midSecond], attentions: [midAttention], downsampler: nil, upsampler: nil)

        var up: [Block] = []
        for (i, b) in l.up.enumerated() {
            var resnets: [ResnetBlock2D] = [], attentions: [Transformer2DModel] = []
            for j in 0..<b.layers {
                let skip = j == b.layers - 1 ? b.inChannels : b.outChannels
                let from = j == 0 ? b.prevOutputChannels : b.outChannels
                resnets.append(try resnet("up_blocks.\(i).resnets.\(j)", from + skip, b.outChannels))
                if b.crossAttention {
                    attentions.append(try transformer("up_blocks.\(i).attentions.\(j)", b.outChannels, heads: b.heads, layers: b.transformerLayers))
                }
            }
            let us = b.resample ? try Upsample2D(w.scoped("up_blocks.\(i).upsamplers.0."), channels: b.outChannels, precision: precision) : nil
            up.append(Block(resnets: resnets, attentions: attentions, downsampler: nil, upsampler: us))
        }
        up_blocks = up
        try super.init(shell: head, config: shell, weights: w, contextChannels: l.contextChannels, downsamplers: l.down.count - 1, precision: precision)
    }

    /// The down, mid and up blocks between conv_in and the output head.
    override func blocks(_ input: Tensor, tembSilu: Tensor, context: Tensor) -> Tensor {
        var h = input
        var skips = [h]

        for block in down_blocks {
            for (j, r) in block.resnets.enumerated() {
                h = resnet(r, h, tembSilu)
                if j < block.attentions.count { h = attention(block.attentions[j], h, context) }
                skips.append(h)
            }
            if let ds = block.downsampler {
                h = OpProfile.measure(module: "downsample \(site(h))") { ds(h) }
                skips.append(h)
            }
        }

        h = resnet(mid_block.resnets[0], h, tembSilu)
        for (a, r) in zip(mid_block.attentions, mid_block.resnets.dropFirst()) {
            h = resnet(r, attention(a, h, context), tembSilu)
        }

        for block in up_blocks {
            for (j, r) in block.resnets.enumerated() {
                let skip = skips.removeLast()
                let x = h
                h = resnet(r, OpProfile.measure(module: "concat \(site(h))") { Ops.concatChannels(x, skip) }, tembSilu)
                if j < block.attentions.count { h = attention(block.attentions[j], h, context) }
            }
            if let us = block.upsampler { h = OpProfile.measure(module: "upsample \(site(h))") { us(h) } }
        }
        return h
    }

    private func resnet(_ r: ResnetBlock2D, _ h: Tensor, _ tembSilu: Tensor) -> Tensor {
        OpProfile.measure(module: "resnet \(site(h))") { r(h, tembSilu: tembSilu) }
    }

    private func attention(_ a: Transformer2DModel, _ h: Tensor, _ context: Tensor) -> Tensor {
        OpProfile.measure(module: "attention \(site(h))") { a(h, context: context) }
    }
}
