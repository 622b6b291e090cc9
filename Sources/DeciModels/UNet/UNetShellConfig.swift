// The outer config.json keys every SD-family UNet shares (diffusers UNet2DConditionModel
// `__init__` defaults); U-Net-NAS inherits them from its SD parent class.

/// The `UNet2DConditionModel` keys that shape the parts every SD-family UNet shares (conv_in, time
/// embedding, output head). U-Net-NAS inherits exactly these from its SD parent class.
public struct UNetShellConfig: Codable, Sendable, Equatable {
    public var inChannels: Int
    public var outChannels: Int
    public var centerInputSample: Bool
    public var flipSinToCos: Bool
    public var freqShift: Float
    public var blockOutChannels: [Int]
    public var normNumGroups: Int?
    public var normEps: Float
    public var actFn: String
    public var timeEmbeddingType: String
    public var timeEmbeddingDim: Int?
    public var timeEmbeddingActFn: String?
    public var timestepPostAct: String?
    public var timeCondProjDim: Int?
    public var convInKernel: Int
    public var convOutKernel: Int
    public var classEmbedType: String?
    public var numClassEmbeds: Int?
    public var additionEmbedType: String?
    public var encoderHidDim: Int?
    public var encoderHidDimType: String?
    public var projectionClassEmbeddingsInputDim: Int?

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", centerInputSample = "center_input_sample"
        case flipSinToCos = "flip_sin_to_cos", freqShift = "freq_shift", blockOutChannels = "block_out_channels"
        case normNumGroups = "norm_num_groups", normEps = "norm_eps", actFn = "act_fn"
        case timeEmbeddingType = "time_embedding_type", timeEmbeddingDim = "time_embedding_dim"
        case timeEmbeddingActFn = "time_embedding_act_fn", timestepPostAct = "timestep_post_act"
        case timeCondProjDim = "time_cond_proj_dim", convInKernel = "conv_in_kernel", convOutKernel = "conv_out_kernel"
        case classEmbedType = "class_embed_type", numClassEmbeds = "num_class_embeds", additionEmbedType = "addition_embed_type"
        case encoderHidDim = "encoder_hid_dim", encoderHidDimType = "encoder_hid_dim_type"
        case projectionClassEmbeddingsInputDim = "projection_class_embeddings_input_dim"
    }

    /// diffusers' defaults (the SD-1.5 shape).
    public init() {
        inChannels = 4
        outChannels = 4
        centerInputSample = false
        flipSinToCos = true
        freqShift = 0
        blockOutChannels = [320, 640, 1280, 1280]
        normNumGroups = 32
        normEps = 1e-5
        actFn = "silu"
        timeEmbeddingType = "positional"
        convInKernel = 3
        convOutKernel = 3
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = UNetShellConfig()
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? d.inChannels
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? d.outChannels
        centerInputSample = try c.decodeIfPresent(Bool.self, forKey: .centerInputSample) ?? d.centerInputSample
        flipSinToCos = try c.decodeIfPresent(Bool.self, forKey: .flipSinToCos) ?? d.flipSinToCos
        freqShift = try c.decodeIfPresent(Float.self, forKey: .freqShift) ?? d.freqShift
        blockOutChannels = try c.decodeIfPresent([Int].self, forKey: .blockOutChannels) ?? d.blockOutChannels
        // norm_num_groups may be written as null (diffusers then drops the output norm): keep nil.
        normNumGroups = c.contains(.normNumGroups) ? try c.decodeIfPresent(Int.self, forKey: .normNumGroups) : d.normNumGroups
        normEps = try c.decodeIfPresent(Float.self, forKey: .normEps) ?? d.normEps
        actFn = try c.decodeIfPresent(String.self, forKey: .actFn) ?? d.actFn
        timeEmbeddingType = try c.decodeIfPresent(String.self, forKey: .timeEmbeddingType) ?? d.timeEmbeddingType
        timeEmbeddingDim = try c.decodeIfPresent(Int.self, forKey: .timeEmbeddingDim)
        timeEmbeddingActFn = try c.decodeIfPresent(String.self, forKey: .timeEmbeddingActFn)
        timestepPostAct = try c.decodeIfPresent(String.self, forKey: .timestepPostAct)
        timeCondProjDim = try c.decodeIfPresent(Int.self, forKey: .timeCondProjDim)
        convInKernel = try c.decodeIfPresent(Int.self, forKey: .convInKernel) ?? d.convInKernel
        convOutKernel = try c.decodeIfPresent(Int.self, forKey: .convOutKernel) ?? d.convOutKernel
        classEmbedType = try c.decodeIfPresent(String.self, forKey: .classEmbedType)
        numClassEmbeds = try c.decodeIfPresent(Int.self, forKey: .numClassEmbeds)
        additionEmbedType = try c.decodeIfPresent(String.self, forKey: .additionEmbedType)
        encoderHidDim = try c.decodeIfPresent(Int.self, forKey: .encoderHidDim)
        encoderHidDimType = try c.decodeIfPresent(String.self, forKey: .encoderHidDimType)
        projectionClassEmbeddingsInputDim = try c.decodeIfPresent(Int.self, forKey: .projectionClassEmbeddingsInputDim)
    }

    /// Base width: conv_in's output and the sinusoidal projection's size.
    public var baseChannels: Int { blockOutChannels.first ?? 0 }
    /// Width of the time embedding (diffusers: `time_embedding_dim` or 4 x base).
    public var timeEmbeddingChannels: Int { timeEmbeddingDim ?? 4 * baseChannels }

    /// Throws for values this engine does not implement, naming the key.
    public func validate() throws(ModelError) {
        func unsupported(_ key: String, _ value: Any) -> ModelError {
            .config("'\(key)' = \(value) is not supported by this engine")
        }
        guard inChannels > 0 else { throw unsupported("in_channels", inChannels) }
        guard outChannels > 0 else { throw unsupported("out_channels", outChannels) }
        guard let base = blockOutChannels.first, base > 0, base % 2 == 0 else {
            throw .config("'block_out_channels' = \(blockOutChannels): need a positive, even first width")
        }
        guard let groups = normNumGroups else { throw unsupported("norm_num_groups", "null") }
        guard groups > 0, base % groups == 0 else { throw .config("'norm_num_groups' = \(groups) does not divide block_out_channels[0] = \(base)") }
        if centerInputSample { throw unsupported("center_input_sample", true) }
        if !["silu", "swish"].contains(actFn) { throw unsupported("act_fn", "'\(actFn)'") }
        if timeEmbeddingType != "positional" { throw unsupported("time_embedding_type", "'\(timeEmbeddingType)'") }
        if let v = timeEmbeddingActFn { throw unsupported("time_embedding_act_fn", "'\(v)'") }
        if let v = timestepPostAct { throw unsupported("timestep_post_act", "'\(v)'") }
        if let v = timeCondProjDim { throw unsupported("time_cond_proj_dim", v) }
        for (key, k) in [("conv_in_kernel", convInKernel), ("conv_out_kernel", convOutKernel)] where k <= 0 || k % 2 == 0 {
            throw unsupported(key, k)
        }
        if let v = classEmbedType { throw unsupported("class_embed_type", "'\(v)'") }
        if let v = numClassEmbeds { throw unsupported("num_class_embeds", v) }
        if let v = additionEmbedType { throw unsupported("addition_embed_type", "'\(v)'") }
        if let v = encoderHidDim { throw unsupported("encoder_hid_dim", v) }
        if let v = encoderHidDimType { throw unsupported("encoder_hid_dim_type", "'\(v)'") }
        if let v = projectionClassEmbeddingsInputDim { throw unsupported("projection_class_embeddings_input_dim", v) }
        if let v = timeEmbeddingDim, v <= 0 { throw unsupported("time_embedding_dim", v) }
    }
}
