// config.json of DeciDiffusion's U-Net-NAS (`flexible_unet/`): the outer UNet2DConditionModel keys
// (conv_in, time embedding, output head; the published file has none, so diffusers' defaults apply)
// plus the `configurations` object that describes the NAS blocks. Structure: shared/spec/decidiffusion-v1.md.
import Foundation

/// The `configurations` object of a U-Net-NAS config.json. Every key is required, as the published
/// model class reads them without defaults (except `sample_size`).
public struct UNetNASBlocksConfig: Codable, Sendable, Equatable {
    public var sampleSize: Int?
    public var crossAttentionDim: Int
    public var tembDim: Int
    public var resnetEps: Float
    public var resnetActFn: String
    /// The head count of every attention (head width = channels / heads).
    public var numAttentionHeads: Int
    /// false: every block runs all its resnets before its attentions.
    public var mixBlockInForward: Bool
    public var downBlocksInChannels: [Int]
    public var downBlocksOutChannels: [Int]
    public var downBlocksNumResnets: [Int]
    public var downBlocksNumAttentions: [Int]
    public var addDownsample: [Bool]
    public var addUpsampleMidBlock: Bool
    public var midNumResnets: Int
    public var midNumAttentions: Int
    public var prevOutputChannels: [Int]
    public var upBlocksNumResnets: [Int]
    public var upBlocksNumAttentions: [Int]
    public var addUpsample: [Bool]

    enum CodingKeys: String, CodingKey {
        case sampleSize = "sample_size", crossAttentionDim = "cross_attention_dim", tembDim = "temb_dim"
        case resnetEps = "resnet_eps", resnetActFn = "resnet_act_fn", numAttentionHeads = "num_attention_heads"
        case mixBlockInForward = "mix_block_in_forward", downBlocksInChannels = "down_blocks_in_channels"
        case downBlocksOutChannels = "down_blocks_out_channels", downBlocksNumResnets = "down_blocks_num_resnets"
        case downBlocksNumAttentions = "down_blocks_num_attentions", addDownsample = "add_downsample"
        case addUpsampleMidBlock = "add_upsample_mid_block", midNumResnets = "mid_num_resnets"
        case midNumAttentions = "mid_num_attentions", prevOutputChannels = "prev_output_channels"
        case upBlocksNumResnets = "up_blocks_num_resnets", upBlocksNumAttentions = "up_blocks_num_attentions"
        case addUpsample = "add_upsample"
    }
}

/// A U-Net-NAS config.json: outer UNet2DConditionModel keys + `configurations`.
public struct UNetNASConfig: Decodable, Sendable, UNetConfiguration {
    public var shell: UNetShellConfig
    public var blocks: UNetNASBlocksConfig

    /// GroupNorm groups inside the NAS blocks: the published block classes fix 32 (no config key).
    public static let innerGroups = 32

    enum CodingKeys: String, CodingKey { case configurations }

    public init(shell: UNetShellConfig = UNetShellConfig(), blocks: UNetNASBlocksConfig) {
        self.shell = shell
        self.blocks = blocks
    }

    public init(from decoder: Decoder) throws {
        shell = try UNetShellConfig(from: decoder)
        blocks = try decoder.container(keyedBy: CodingKeys.self).decode(UNetNASBlocksConfig.self, forKey: .configurations)
    }

    /// Resolves the block layout: the blocks must fit together (`UNetConfiguration.decode` runs it).
    public func validateLayout() throws(ModelError) { _ = try layout() }

    // MARK: Layout

    enum Module: Equatable {
        case resnet(in: Int, out: Int)
        case attention(channels: Int)
    }

    struct DownSpec {
        var modules: [Module]
        var downsample: Bool
        /// The last down block's downsample output is not a skip.
        var pushDownsample: Bool
        var outChannels: Int
    }

    struct MidSpec {
        var channels: Int
        var modules: [Module]
        var upsample: Bool
    }

    struct UpSpec {
        var modules: [Module]
        var numResnets: Int
        var upsample: Bool
        var outChannels: Int
    }

    struct Layout {
        var down: [DownSpec]
        var mid: MidSpec
        var up: [UpSpec]
        var downsamplers: Int
    }

    /// Modules of one block in checkpoint order: pairs (j < max(nRes, nAtt)) of a resnet if j < nRes
    /// and an attention if j < nAtt, resnet first unless `attentionFirst`; all resnets first when
    /// the config does not mix. `resnet(j)` gives pair j's resnet.
    private func ordered(nRes: Int, nAtt: Int, attentionFirst: Bool, resnet: (Int) -> Module, attention: Module) -> [Module] {
        var modules: [Module] = []
        for j in 0..<max(nRes, nAtt) {
            let r: Module? = j < nRes ? resnet(j) : nil
            let a: Module? = j < nAtt ? attention : nil
            modules += (attentionFirst ? [a, r] : [r, a]).compactMap { $0 }
        }
        if !blocks.mixBlockInForward {
            let resnets = modules.filter { if case .resnet = $0 { true } else { false } }
            modules = resnets + modules.filter { if case .attention = $0 { true } else { false } }
        }
        return modules
    }

    /// Resolves the blocks and checks, by following channel widths, resolutions and the skip stack
    /// through the whole forward pass, that the network is consistent; throws naming the key.
    func layout() throws(ModelError) -> Layout {
        try shell.validate()
        let b = blocks
        let base = shell.baseChannels
        let groups = Self.innerGroups
        let n = b.downBlocksInChannels.count
        guard n > 0 else { throw .config("'configurations.down_blocks_in_channels' is empty") }
        for (key, count) in [("down_blocks_out_channels", b.downBlocksOutChannels.count), ("down_blocks_num_resnets", b.downBlocksNumResnets.count),
                             ("down_blocks_num_attentions", b.downBlocksNumAttentions.count), ("add_downsample", b.addDownsample.count),
                             ("prev_output_channels", b.prevOutputChannels.count), ("up_blocks_num_resnets", b.upBlocksNumResnets.count),
                             ("up_blocks_num_attentions", b.upBlocksNumAttentions.count), ("add_upsample", b.addUpsample.count)]
        where count != n {
            throw .config("'configurations.\(key)' has \(count) entries but 'down_blocks_in_channels' has \(n)")
        }
        guard ["silu", "swish"].contains(b.resnetActFn) else {
            throw .config("'configurations.resnet_act_fn' = '\(b.resnetActFn)' is not supported by this engine (only silu)")
        }
        guard b.numAttentionHeads > 0 else { throw .config("'configurations.num_attention_heads' = \(b.numAttentionHeads) must be positive") }
        guard b.crossAttentionDim > 0 else { throw .config("'configurations.cross_attention_dim' = \(b.crossAttentionDim) must be positive") }
        guard b.tembDim == shell.timeEmbeddingChannels else {
            throw .config("'configurations.temb_dim' = \(b.tembDim) differs from the time embedding width \(shell.timeEmbeddingChannels) (4 x block_out_channels[0], or time_embedding_dim)")
        }
        guard b.downBlocksInChannels[0] == base else {
            throw .config("'configurations.down_blocks_in_channels'[0] = \(b.downBlocksInChannels[0]) differs from block_out_channels[0] = \(base)")
        }
        for (key, list) in [("down_blocks_num_resnets", b.downBlocksNumResnets), ("down_blocks_num_attentions", b.downBlocksNumAttentions),
                            ("up_blocks_num_resnets", b.upBlocksNumResnets), ("up_blocks_num_attentions", b.upBlocksNumAttentions),
                            ("mid_num_resnets", [b.midNumResnets]), ("mid_num_attentions", [b.midNumAttentions])]
        where list.contains(where: { $0 < 0 }) {
            throw .config("'configurations.\(key)' = \(list) has a negative count")
        }
        for (key, list) in [("down_blocks_in_channels", b.downBlocksInChannels), ("down_blocks_out_channels", b.downBlocksOutChannels),
                            ("prev_output_channels", b.prevOutputChannels)] {
            for (i, c) in list.enumerated() where c <= 0 || c % groups != 0 || c % b.numAttentionHeads != 0 {
                throw .config("'configurations.\(key)'[\(i)] = \(c) must be a positive multiple of \(groups) (GroupNorm groups) and of num_attention_heads \(b.numAttentionHeads)")
            }
        }

        // Down blocks.
        var down: [DownSpec] = []
        for i in 0..<n {
            let (cin, cout) = (b.downBlocksInChannels[i], b.downBlocksOutChannels[i])
            let modules = ordered(nRes: b.downBlocksNumResnets[i], nAtt: b.downBlocksNumAttentions[i], attentionFirst: false,
                                  resnet: { .resnet(in: $0 == 0 ? cin : cout, out: cout) }, attention: .attention(channels: cout))
            down.append(DownSpec(modules: modules, downsample: b.addDownsample[i], pushDownsample: b.addDownsample[i] && i != n - 1, outChannels: cout))
        }
        // Mid block: a leading resnet, then pairs with the attention first.
        let midC = b.downBlocksOutChannels[n - 1]
        var midModules = ordered(nRes: b.midNumResnets, nAtt: b.midNumAttentions, attentionFirst: true,
                                 resnet: { _ in .resnet(in: midC, out: midC) }, attention: .attention(channels: midC))
        // Unmixed, the published class sorts after adding this resnet; it stays first either way.
        midModules.insert(.resnet(in: midC, out: midC), at: 0)
        let mid = MidSpec(channels: midC, modules: midModules, upsample: b.addUpsampleMidBlock)
        // Up blocks mirror the down blocks.
        var up: [UpSpec] = []
        for i in 0..<n {
            let (cin, cout, prev, nRes) = (b.downBlocksInChannels[n - 1 - i], b.downBlocksOutChannels[n - 1 - i], b.prevOutputChannels[i],
                                           b.upBlocksNumResnets[i])
            let modules = ordered(nRes: nRes, nAtt: b.upBlocksNumAttentions[i], attentionFirst: false,
                                  resnet: { j in .resnet(in: (j == 0 ? prev : cout) + (j == nRes - 1 ? cin : cout), out: cout) },
                                  attention: .attention(channels: cout))
            up.append(UpSpec(modules: modules, numResnets: nRes, upsample: b.addUpsample[i], outChannels: cout))
        }
        let layout = Layout(down: down, mid: mid, up: up, downsamplers: b.addDownsample.filter { $0 }.count)
        try layout.trace(base: base)
        return layout
    }

    /// Every tensor the checkpoint must hold, with its shape, from the config alone: the model
    /// built over a recording store (no weights read or allocated).
    public func parameterPlan() throws(ModelError) -> ParameterPlan {
        try ParameterPlan.recording { (w) throws(ModelError) in _ = try UNetNAS(config: self, weights: w, precision: .f32) }
    }
}

extension UNetNASConfig.Layout {
    /// Walks the forward pass with (channels, downsampling factor) instead of tensors.
    func trace(base: Int) throws(ModelError) {
        var width = base, scale = 1
        var skips: [(width: Int, scale: Int)] = [(base, 1)]
        func pass(_ m: UNetNASConfig.Module, _ place: String, concat skip: (width: Int, scale: Int)? = nil) throws(ModelError) {
            switch m {
            case .resnet(let cin, let cout):
                var w = width
                if let skip {
                    guard skip.scale == scale else {
                        throw .config("\(place): a skip at 1/\(skip.scale) resolution meets features at 1/\(scale); add_downsample / add_upsample do not mirror each other")
                    }
                    w += skip.width
                }
                guard w == cin else {
                    throw .config("\(place): the resnet expects \(cin) input channels but receives \(w)\(skip.map { " (\(width) + skip \($0.width))" } ?? ""); check the channel lists")
                }
                width = cout
            case .attention(let c):
                guard width == c else { throw .config("\(place): the attention works at \(c) channels but receives \(width)") }
            }
        }
        for (i, d) in down.enumerated() {
            for (j, m) in d.modules.enumerated() {
                try pass(m, "down_blocks.\(i).modules_list.\(j)")
                if case .resnet = m { skips.append((width, scale)) }
            }
            if d.downsample {
                scale *= 2
                if d.pushDownsample { skips.append((width, scale)) }
            }
        }
        for (j, m) in mid.modules.enumerated() { try pass(m, "mid_block.modules_list.\(j)") }
        if mid.upsample {
            guard scale % 2 == 0 else { throw .config("the mid block upsamples beyond the input resolution (add_upsample_mid_block without a downsample)") }
            scale /= 2
        }
        for (i, u) in up.enumerated() {
            // UNet2DConditionModel.forward hands each up block the newest numResnets skips; with
            // none, Python's slicing hands it (and drops) all of them.
            let k = u.numResnets
            guard k <= skips.count else {
                throw .config("up_blocks.\(i) has \(k) resnets but only \(skips.count) skip connections are left")
            }
            var mine = k == 0 ? skips : Array(skips.suffix(k))
            skips = k == 0 ? [] : Array(skips.dropLast(k))
            for (j, m) in u.modules.enumerated() {
                if case .resnet = m {
                    guard let s = mine.popLast() else { throw .config("up_blocks.\(i): no skip left for modules_list.\(j)") }
                    try pass(m, "up_blocks.\(i).modules_list.\(j)", concat: s)
                } else {
                    try pass(m, "up_blocks.\(i).modules_list.\(j)")
                }
            }
            if u.upsample {
                guard scale % 2 == 0 else { throw .config("up_blocks.\(i) upsamples beyond the input resolution") }
                scale /= 2
            }
        }
        guard scale == 1 else { throw .config("the up path ends at 1/\(scale) resolution: add_upsample_mid_block and add_upsample must undo every add_downsample") }
        guard width == base else { throw .config("the last up block outputs \(width) channels but the output head expects block_out_channels[0] = \(base)") }
    }
}
