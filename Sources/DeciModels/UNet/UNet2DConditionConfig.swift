// config.json of diffusers' UNet2DConditionModel (unet_2d_condition.py `__init__` defaults), limited
// to what Stable Diffusion 1.x / 2.x checkpoints use. Unsupported features are config errors
// naming the key.
import DeciTensor
import Foundation

/// diffusers `UNet2DConditionModel` config as Stable Diffusion 1.x/2.x use it.
///
/// `attention_head_dim` is read as diffusers reads it: the number of heads per block (a historical
/// misnomer). Per-block lists are accepted for `attention_head_dim`, `layers_per_block`,
/// `transformer_layers_per_block` and `cross_attention_dim` (equal values only).
public struct UNet2DConditionConfig: Decodable, Sendable, UNetConfiguration {
    public var shell: UNetShellConfig
    public var downBlockTypes: [String]
    public var upBlockTypes: [String]
    public var midBlockType: String?
    public var layersPerBlock: PerBlock<Int>
    public var downsamplePadding: Int
    public var midBlockScaleFactor: Float
    public var crossAttentionDim: PerBlock<Int>
    public var transformerLayersPerBlock: PerBlock<Int>
    public var attentionHeadDim: PerBlock<Int>
    public var numAttentionHeads: PerBlock<Int>?
    public var useLinearProjection: Bool
    public var onlyCrossAttention: PerBlock<Bool>
    public var dualCrossAttention: Bool
    public var upcastAttention: Bool
    public var resnetTimeScaleShift: String
    public var resnetSkipTimeAct: Bool
    public var attentionType: String
    public var reverseTransformerLayersPerBlockGiven: Bool
    public var midBlockOnlyCrossAttention: Bool?
    public var crossAttentionNorm: String?

    enum CodingKeys: String, CodingKey {
        case downBlockTypes = "down_block_types", upBlockTypes = "up_block_types", midBlockType = "mid_block_type"
        case layersPerBlock = "layers_per_block", downsamplePadding = "downsample_padding"
        case midBlockScaleFactor = "mid_block_scale_factor", crossAttentionDim = "cross_attention_dim"
        case transformerLayersPerBlock = "transformer_layers_per_block", attentionHeadDim = "attention_head_dim"
        case numAttentionHeads = "num_attention_heads", useLinearProjection = "use_linear_projection"
        case onlyCrossAttention = "only_cross_attention", dualCrossAttention = "dual_cross_attention"
        case upcastAttention = "upcast_attention", resnetTimeScaleShift = "resnet_time_scale_shift"
        case resnetSkipTimeAct = "resnet_skip_time_act", attentionType = "attention_type"
        case reverseTransformerLayersPerBlock = "reverse_transformer_layers_per_block"
        case midBlockOnlyCrossAttention = "mid_block_only_cross_attention", crossAttentionNorm = "cross_attention_norm"
    }

    public init(from decoder: Decoder) throws {
        shell = try UNetShellConfig(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        downBlockTypes = try c.decodeIfPresent([String].self, forKey: .downBlockTypes)
            ?? ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
        upBlockTypes = try c.decodeIfPresent([String].self, forKey: .upBlockTypes)
            ?? ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
        midBlockType = c.contains(.midBlockType) ? try c.decodeIfPresent(String.self, forKey: .midBlockType) : "UNetMidBlock2DCrossAttn"
        layersPerBlock = try c.decodeIfPresent(PerBlock<Int>.self, forKey: .layersPerBlock) ?? .all(2)
        downsamplePadding = try c.decodeIfPresent(Int.self, forKey: .downsamplePadding) ?? 1
        midBlockScaleFactor = try c.decodeIfPresent(Float.self, forKey: .midBlockScaleFactor) ?? 1
        crossAttentionDim = try c.decodeIfPresent(PerBlock<Int>.self, forKey: .crossAttentionDim) ?? .all(1280)
        transformerLayersPerBlock = try c.decodeIfPresent(PerBlock<Int>.self, forKey: .transformerLayersPerBlock) ?? .all(1)
        attentionHeadDim = try c.decodeIfPresent(PerBlock<Int>.self, forKey: .attentionHeadDim) ?? .all(8)
        numAttentionHeads = try c.decodeIfPresent(PerBlock<Int>.self, forKey: .numAttentionHeads)
        useLinearProjection = try c.decodeIfPresent(Bool.self, forKey: .useLinearProjection) ?? false
        onlyCrossAttention = try c.decodeIfPresent(PerBlock<Bool>.self, forKey: .onlyCrossAttention) ?? .all(false)
        dualCrossAttention = try c.decodeIfPresent(Bool.self, forKey: .dualCrossAttention) ?? false
        upcastAttention = try c.decodeIfPresent(Bool.self, forKey: .upcastAttention) ?? false
        resnetTimeScaleShift = try c.decodeIfPresent(String.self, forKey: .resnetTimeScaleShift) ?? "default"
        resnetSkipTimeAct = try c.decodeIfPresent(Bool.self, forKey: .resnetSkipTimeAct) ?? false
        attentionType = try c.decodeIfPresent(String.self, forKey: .attentionType) ?? "default"
        reverseTransformerLayersPerBlockGiven = try c.contains(.reverseTransformerLayersPerBlock) && !c.decodeNil(forKey: .reverseTransformerLayersPerBlock)
        midBlockOnlyCrossAttention = try c.decodeIfPresent(Bool.self, forKey: .midBlockOnlyCrossAttention)
        crossAttentionNorm = try c.decodeIfPresent(String.self, forKey: .crossAttentionNorm)
    }

    /// Resolves the block layout: the blocks must fit together (`UNetConfiguration.decode` runs it).
    public func validateLayout() throws(ModelError) { _ = try layout() }

    /// One resolved block of the SD UNet.
    struct BlockSpec {
        var crossAttention: Bool
        var layers: Int
        var inChannels: Int
        var outChannels: Int
        var prevOutputChannels: Int  // up blocks only
        var heads: Int
        var transformerLayers: Int
        var resample: Bool
    }

    struct Layout {
        var down: [BlockSpec]
        var up: [BlockSpec]
        var midHeads: Int
        var midTransformerLayers: Int
        var contextChannels: Int
        var groups: Int
    }

    /// Resolves per-block values the way `UNet2DConditionModel.__init__` does, or throws naming
    /// the offending key.
    func layout() throws(ModelError) -> Layout {
        func unsupported(_ key: String, _ value: Any) -> ModelError {
            .config("'\(key)' = \(value) is not supported by this engine")
        }
        try shell.validate()
        let n = shell.blockOutChannels.count
        guard downBlockTypes.count == n else {
            throw .config("'down_block_types' has \(downBlockTypes.count) entries but 'block_out_channels' has \(n)")
        }
        guard upBlockTypes.count == n else {
            throw .config("'up_block_types' has \(upBlockTypes.count) entries but 'block_out_channels' has \(n)")
        }
        for t in downBlockTypes where !["CrossAttnDownBlock2D", "DownBlock2D"].contains(t) { throw unsupported("down_block_types", "'\(t)'") }
        for t in upBlockTypes where !["CrossAttnUpBlock2D", "UpBlock2D"].contains(t) { throw unsupported("up_block_types", "'\(t)'") }
        guard midBlockType == "UNetMidBlock2DCrossAttn" else { throw unsupported("mid_block_type", midBlockType.map { "'\($0)'" } ?? "null") }
        if numAttentionHeads != nil { throw unsupported("num_attention_heads", "a value (diffusers rejects it too; use attention_head_dim)") }
        if dualCrossAttention { throw unsupported("dual_cross_attention", true) }
        if try onlyCrossAttention.values(count: n, key: "only_cross_attention").contains(true) {
            throw unsupported("only_cross_attention", "true")
        }
        if midBlockOnlyCrossAttention == true { throw unsupported("mid_block_only_cross_attention", true) }
        if resnetTimeScaleShift != "default" { throw unsupported("resnet_time_scale_shift", "'\(resnetTimeScaleShift)'") }
        if resnetSkipTimeAct { throw unsupported("resnet_skip_time_act", true) }
        if attentionType != "default" { throw unsupported("attention_type", "'\(attentionType)'") }
        if reverseTransformerLayersPerBlockGiven { throw unsupported("reverse_transformer_layers_per_block", "a value") }
        if let v = crossAttentionNorm { throw unsupported("cross_attention_norm", "'\(v)'") }
        if midBlockScaleFactor != 1 { throw unsupported("mid_block_scale_factor", midBlockScaleFactor) }
        guard downsamplePadding == 0 || downsamplePadding == 1 else { throw unsupported("downsample_padding", downsamplePadding) }

        let layers = try layersPerBlock.values(count: n, key: "layers_per_block")
        let heads = try attentionHeadDim.values(count: n, key: "attention_head_dim")
        let tlayers = try transformerLayersPerBlock.values(count: n, key: "transformer_layers_per_block")
        let cross = try crossAttentionDim.values(count: n, key: "cross_attention_dim")
        guard let context = cross.first, cross.allSatisfy({ $0 == context }), context > 0 else {
            throw unsupported("cross_attention_dim", "\(cross) (one text-state width for all blocks is required)")
        }
        let groups = shell.normNumGroups ?? 32
        let ch = shell.blockOutChannels
        for (i, c) in ch.enumerated() {
            guard c > 0, c % groups == 0 else { throw .config("'block_out_channels'[\(i)] = \(c) is not a multiple of norm_num_groups \(groups)") }
            guard layers[i] > 0 else { throw .config("'layers_per_block'[\(i)] = \(layers[i]) must be positive") }
            guard tlayers[i] > 0 else { throw .config("'transformer_layers_per_block'[\(i)] = \(tlayers[i]) must be positive") }
            guard heads[i] > 0, c % heads[i] == 0 else {
                throw .config("'attention_head_dim'[\(i)] = \(heads[i]) (a head count) does not divide block_out_channels[\(i)] = \(c)")
            }
        }
        var down: [BlockSpec] = []
        var output = ch[0]
        for i in 0..<n {
            let input = output
            output = ch[i]
            down.append(BlockSpec(crossAttention: downBlockTypes[i] == "CrossAttnDownBlock2D", layers: layers[i], inChannels: input,
                                  outChannels: output, prevOutputChannels: 0, heads: heads[i], transformerLayers: tlayers[i],
                                  resample: i != n - 1))
        }
        var up: [BlockSpec] = []
        let rch = Array(ch.reversed()), rlayers = Array(layers.reversed()), rheads = Array(heads.reversed())
        let rtl = Array(tlayers.reversed())
        output = rch[0]
        for i in 0..<n {
            let prev = output
            output = rch[i]
            let input = rch[min(i + 1, n - 1)]
            up.append(BlockSpec(crossAttention: upBlockTypes[i] == "CrossAttnUpBlock2D", layers: rlayers[i] + 1, inChannels: input,
                                outChannels: output, prevOutputChannels: prev, heads: rheads[i], transformerLayers: rtl[i],
                                resample: i != n - 1))
        }
        return Layout(down: down, up: up, midHeads: heads[n - 1], midTransformerLayers: tlayers[n - 1], contextChannels: context,
                      groups: groups)
    }

    /// Every tensor the checkpoint must hold, with its shape, from the config alone: the model
    /// built over a recording store (no weights read or allocated).
    public func parameterPlan() throws(ModelError) -> ParameterPlan {
        try ParameterPlan.recording { (w) throws(ModelError) in _ = try UNet2DConditionModel(config: self, weights: w, precision: .f32) }
    }
}
