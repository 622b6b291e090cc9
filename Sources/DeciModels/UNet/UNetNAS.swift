// DeciDiffusion's U-Net-NAS ("flexible_unet"), as specified in shared/spec/decidiffusion-v1.md and
// checked against tools/unet_nas_reference.py. Activations NHWC; property names are checkpoint keys.
import DeciTensor
import DeciWeights
import Foundation

/// One entry of a NAS block's `modules_list`.
enum NASModule {
    case resnet(ResnetBlock2D)
    case attention(Transformer2DModel)

    static func build(_ spec: UNetNASConfig.Module, _ w: WeightScope, config: UNetNASConfig, precision: Precision) throws(ModelError) -> NASModule {
        let b = config.blocks
        switch spec {
        case .resnet(let cin, let cout):
            return .resnet(try ResnetBlock2D(w, in: cin, out: cout, tembChannels: b.tembDim, groups: UNetNASConfig.innerGroups,
                                             eps: b.resnetEps, precision: precision))
        case .attention(let c):
            return .attention(try Transformer2DModel(w, channels: c, heads: b.numAttentionHeads, contextChannels: b.crossAttentionDim,
                                                     groups: UNetNASConfig.innerGroups, linearProjection: false, precision: precision))
        }
    }

    var isResnet: Bool { if case .resnet = self { true } else { false } }
}

/// DeciDiffusion 1.0's denoiser: a UNet whose blocks hold NAS-chosen numbers of resnets and
/// attentions (`modules_list`), with skips after resnets only, a mid block that runs its first
/// resnet twice and upsamples, and SD's conv_in / time embedding / output head.
///
/// Built from a `flexible_unet/` folder (`config.json` + safetensors, fp16 or fp32) or from a config
/// and a weight scope; every tensor's shape is checked against the config and unused tensors are an
/// error.
public final class UNetNAS: SDFamilyUNet, SDFamilyUNetModel, @unchecked Sendable {
    public let config: UNetNASConfig
    let down_blocks: [DownBlock]
    let mid_block: MidBlock
    let up_blocks: [UpBlock]

    struct DownBlock {
        let modules_list: [NASModule]
        let downsampler: Downsample2D?
        let pushDownsample: Bool
    }

    struct MidBlock {
        let modules_list: [NASModule]
        let upsampler: Upsample2D?
    }

    struct UpBlock {
        let modules_list: [NASModule]
        let numResnets: Int
        let upsampler: Upsample2D?
    }

    /// Builds the model from `weights` (keys relative to the scope) and fails if the scope holds
    /// tensors the model does not use.
    public init(config: UNetNASConfig, weights w: WeightScope, precision: Precision) throws(ModelError) {
        let layout = try config.layout()
        let shell = config.shell
        self.config = config
        let head = try UNetShell(w, config: shell, precision: precision)
        func modules(_ prefix: String, _ specs: [UNetNASConfig.Module]) throws(ModelError) -> [NASModule] {
            var out: [NASModule] = []
            for (j, spec) in specs.enumerated() {
                out.append(try NASModule.build(spec, w.scoped("\(prefix).modules_list.\(j)."), config: config, precision: precision))
            }
            return out
        }
        var down: [DownBlock] = []
        for (i, d) in layout.down.enumerated() {
            down.append(DownBlock(modules_list: try modules("down_blocks.\(i)", d.modules),
                                  downsampler: d.downsample ? try Downsample2D(w.scoped("down_blocks.\(i).downsamplers.0."), channels: d.outChannels, precision: precision) : nil,
                                  pushDownsample: d.pushDownsample))
        }
        down_blocks = down
        mid_block = MidBlock(modules_list: try modules("mid_block", layout.mid.modules),
                             upsampler: layout.mid.upsample ? try Upsample2D(w.scoped("mid_block.upsamplers.0."), channels: layout.mid.channels, precision: precision) : nil)
        var up: [UpBlock] = []
        for (i, u) in layout.up.enumerated() {
            up.append(UpBlock(modules_list: try modules("up_blocks.\(i)", u.modules), numResnets: u.numResnets,
                              upsampler: u.upsample ? try Upsample2D(w.scoped("up_blocks.\(i).upsamplers.0."), channels: u.outChannels, precision: precision) : nil))
        }
        up_blocks = up
        try super.init(shell: head, config: shell, weights: w, contextChannels: config.blocks.crossAttentionDim, downsamplers: layout.downsamplers, precision: precision)
    }

    /// The NAS blocks between conv_in and the output head.
    override func blocks(_ input: Tensor, tembSilu: Tensor, context: Tensor) -> Tensor {
        var h = input
        var skips = [h]

        for block in down_blocks {
            for m in block.modules_list {
                h = run(m, h, tembSilu: tembSilu, context: context)
                if m.isResnet { skips.append(h) }
            }
            if let ds = block.downsampler {
                h = OpProfile.measure(module: "downsample \(site(h))") { ds(h) }
                if block.pushDownsample { skips.append(h) }
            }
        }

        if case .resnet = mid_block.modules_list.first {
            h = run(mid_block.modules_list[0], h, tembSilu: tembSilu, context: context)  // applied twice, as published
        }
        for m in mid_block.modules_list { h = run(m, h, tembSilu: tembSilu, context: context) }
        if let us = mid_block.upsampler { h = OpProfile.measure(module: "upsample \(site(h))") { us(h) } }

        for block in up_blocks {
            let k = block.numResnets
            var mine = k == 0 ? skips : Array(skips.suffix(k))
            skips = k == 0 ? [] : Array(skips.dropLast(k))
            for m in block.modules_list {
                if m.isResnet {
                    let skip = mine.removeLast()
                    let x = h
                    h = OpProfile.measure(module: "concat \(site(h))") { Ops.concatChannels(x, skip) }
                }
                h = run(m, h, tembSilu: tembSilu, context: context)
            }
            if let us = block.upsampler { h = OpProfile.measure(module: "upsample \(site(h))") { us(h) } }
        }
        return h
    }

    private func run(_ m: NASModule, _ h: Tensor, tembSilu: Tensor, context: Tensor) -> Tensor {
        switch m {
        case .resnet(let r): OpProfile.measure(module: "resnet \(site(h))") { r(h, tembSilu: tembSilu) }
        case .attention(let a): OpProfile.measure(module: "attention \(site(h))") { a(h, context: context) }
        }
    }
}
