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
                                                     groups: UNetNASConfig.innerGroups, precision: precision))
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
public final class UNetNAS: Denoiser, @unchecked Sendable {
    public let config: UNetNASConfig
    public let precision: Precision
    public let inChannels: Int
    public let outChannels: Int
    public let contextChannels: Int
    public let latentSizeMultiple: Int
    /// Per-module timing, off unless `DECI_PROFILE=1` or enabled explicitly.
    public let profiler = ModuleProfiler()

    let conv_in: Conv2d
    let time_embedding: TimestepEmbedding
    let down_blocks: [DownBlock]
    let mid_block: MidBlock
    let up_blocks: [UpBlock]
    let conv_norm_out: GroupNorm
    let conv_out: Conv2d

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

    /// Loads `folder/config.json` and the folder's weights (see `WeightStore.openComponent`).
    public static func load(folder: String, variant: String? = nil, precision: Precision) throws(ModelError) -> UNetNAS {
        let config = try UNetNASConfig.load(URL(fileURLWithPath: folder).appendingPathComponent("config.json").path)
        let store: WeightStore
        do { store = try WeightStore.openComponent(folder, variant: variant) } catch { throw .weights(error) }
        return try UNetNAS(config: config, weights: store.scoped(""), precision: precision)
    }

    /// Builds the model from `weights` (keys relative to the scope) and fails if the scope holds
    /// tensors the model does not use.
    public init(config: UNetNASConfig, weights w: WeightScope, precision: Precision) throws(ModelError) {
        let layout = try config.layout()
        let shell = config.shell
        let base = shell.baseChannels
        self.config = config
        self.precision = precision
        inChannels = shell.inChannels
        outChannels = shell.outChannels
        contextChannels = config.blocks.crossAttentionDim
        latentSizeMultiple = 1 << layout.downsamplers

        conv_in = try w.conv("conv_in", in: shell.inChannels, out: base, kernel: shell.convInKernel, precision: precision)
        time_embedding = try TimestepEmbedding(w.scoped("time_embedding."), projectionChannels: base,
                                               embeddingChannels: shell.timeEmbeddingChannels, flipSinToCos: shell.flipSinToCos,
                                               freqShift: shell.freqShift, precision: precision)
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
        conv_norm_out = try w.groupNorm("conv_norm_out", groups: shell.normNumGroups ?? 32, channels: base, eps: shell.normEps)
        conv_out = try w.conv("conv_out", in: base, out: shell.outChannels, kernel: shell.convOutKernel, precision: precision)
        do { try w.finish() } catch { throw .weights(error) }
    }

    /// Parameters of the model a config describes, without loading or allocating it.
    public static func parameterCount(_ config: UNetNASConfig) throws(ModelError) -> Int {
        try config.parameterPlan().parameterCount
    }

    public func callAsFunction(_ latents: Tensor, timesteps: [Float], context: Tensor) -> Tensor {
        checkInputs(latents, timesteps: timesteps, context: context)
        let p = profiler
        let emb = p.measure("time embedding") { time_embedding(perElement(timesteps, batch: latents.shape[0])) }
        let tembSilu = Ops.silu(emb)
        var h = p.measure("conv_in") { conv_in(latents) }
        var skips = [h]

        for block in down_blocks {
            for m in block.modules_list {
                h = run(m, h, tembSilu: tembSilu, context: context)
                if m.isResnet { skips.append(h) }
            }
            if let ds = block.downsampler {
                h = p.measure("downsample \(site(h))") { ds(h) }
                if block.pushDownsample { skips.append(h) }
            }
        }

        if case .resnet = mid_block.modules_list.first {
            h = run(mid_block.modules_list[0], h, tembSilu: tembSilu, context: context)  // applied twice, as published
        }
        for m in mid_block.modules_list { h = run(m, h, tembSilu: tembSilu, context: context) }
        if let us = mid_block.upsampler { h = p.measure("upsample \(site(h))") { us(h) } }

        for block in up_blocks {
            let k = block.numResnets
            var mine = k == 0 ? skips : Array(skips.suffix(k))
            skips = k == 0 ? [] : Array(skips.dropLast(k))
            for m in block.modules_list {
                if m.isResnet {
                    let skip = mine.removeLast()
                    let x = h
                    h = p.measure("concat \(site(h))") { Ops.concatChannels(x, skip) }
                }
                h = run(m, h, tembSilu: tembSilu, context: context)
            }
            if let us = block.upsampler { h = p.measure("upsample \(site(h))") { us(h) } }
        }
        let out = h
        return p.measure("output head") { conv_out(conv_norm_out(out, silu: true)) }
    }

    private func run(_ m: NASModule, _ h: Tensor, tembSilu: Tensor, context: Tensor) -> Tensor {
        switch m {
        case .resnet(let r): profiler.measure("resnet \(site(h))") { r(h, tembSilu: tembSilu) }
        case .attention(let a): profiler.measure("attention \(site(h))") { a(h, context: context) }
        }
    }
}
