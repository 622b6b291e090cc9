// The `text_encoder/config.json` of a diffusers checkpoint: transformers' `CLIPTextConfig`
// (configuration_clip.py), with its defaults.
import DeciTensor
import Foundation

/// Shape and activation of a CLIP text transformer, decoded from a checkpoint's
/// `text_encoder/config.json`. Missing keys take transformers' `CLIPTextConfig` defaults; keys the
/// engine does not need (`projection_dim`, token ids, dropout, initialiser settings) are ignored.
public struct CLIPTextConfig: Codable, Sendable, Equatable {
    public var vocabSize: Int = 49408
    public var hiddenSize: Int = 512
    public var intermediateSize: Int = 2048
    public var numHiddenLayers: Int = 12
    public var numAttentionHeads: Int = 8
    public var maxPositionEmbeddings: Int = 77
    /// transformers' activation name: `quick_gelu`, `gelu`, or a tanh approximation of GELU
    /// (`gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`). Checked by ``validate()``.
    public var hiddenAct: String = "quick_gelu"
    public var layerNormEps: Float = 1e-5
    /// diffusers passes the tokenizer's attention mask to the text encoder only when the config
    /// sets this; CLIP configs do not, so padding tokens are attended (causally) like any other.
    public var useAttentionMask: Bool = false

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads", maxPositionEmbeddings = "max_position_embeddings"
        case hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps", useAttentionMask = "use_attention_mask"
    }

    /// transformers' defaults (a CLIP ViT-B text tower); use ``vitL14`` for SD 1.x.
    public init() {}

    /// The CLIP ViT-L/14 text tower of Stable Diffusion 1.x and DeciDiffusion.
    public static let vitL14: CLIPTextConfig = {
        var c = CLIPTextConfig()
        c.hiddenSize = 768
        c.intermediateSize = 3072
        c.numAttentionHeads = 12
        return c
    }()

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // `decodeIfPresent` also maps JSON null to the default, as transformers does for optional fields.
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? vocabSize
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? intermediateSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? numAttentionHeads
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? maxPositionEmbeddings
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? hiddenAct
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? layerNormEps
        useAttentionMask = try c.decodeIfPresent(Bool.self, forKey: .useAttentionMask) ?? useAttentionMask
    }

    /// Decodes and validates `config.json`; errors name the file and the key.
    public static func load(contentsOf url: URL) throws(ModelError) -> CLIPTextConfig {
        try decode(readConfigFile(url), source: url.path)
    }

    /// Decodes and validates config JSON; `source` names it in errors.
    public static func decode(_ json: Data, source: String = "config.json") throws(ModelError) -> CLIPTextConfig {
        let config: CLIPTextConfig
        do { config = try JSONDecoder().decode(CLIPTextConfig.self, from: json) } catch let error as DecodingError {
            throw .config("\(source): \(describe(error))")
        } catch {
            throw .config("\(source): \(error)")
        }
        do { try config.validate() } catch {
            if case .config(let m) = error { throw .config("\(source): \(m)") }
            throw error
        }
        return config
    }

    /// The activation of the MLP's first projection, fused into that layer's kernel.
    public var activation: Activation {
        get throws(ModelError) {
            switch hiddenAct {
            case "quick_gelu": return .quickGelu
            case "gelu": return .geluErf
            // transformers' NewGELU, PytorchGELUTanh and FastGELU all compute the tanh approximation.
            case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": return .geluTanh
            default:
                throw .config("hidden_act \"\(hiddenAct)\" is not supported (expected quick_gelu, gelu, gelu_new, gelu_pytorch_tanh or gelu_fast)")
            }
        }
    }

    /// Checks the values the model depends on; the error names the key and its value.
    public func validate() throws(ModelError) {
        let positive: [(String, Int)] = [
            ("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
            ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
            ("max_position_embeddings", maxPositionEmbeddings),
        ]
        for (key, value) in positive where value <= 0 { throw .config("\(key) must be positive, got \(value)") }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw .config("hidden_size \(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)")
        }
        guard layerNormEps.isFinite, layerNormEps >= 0 else { throw .config("layer_norm_eps must be a non-negative number, got \(layerNormEps)") }
        guard !useAttentionMask else {
            throw .config("use_attention_mask true is not supported: the engine reproduces diffusers without a text attention mask")
        }
        _ = try activation
    }

    /// Every tensor a checkpoint of this shape stores (embeddings, layers, final LayerNorm; no
    /// buffers), keys relative to `text_model.`, in the order the model asks for them: the model
    /// built over a recording store (no weights read or allocated).
    public func parameterPlan() throws(ModelError) -> ParameterPlan {
        try ParameterPlan.recording { (w) throws(ModelError) in _ = try CLIPTextModel(config: self, weights: w, precision: .f32) }
    }

    /// Parameters a checkpoint of this shape stores. 123,060,480 for ``vitL14``.
    public var parameterCount: Int {
        get throws(ModelError) { try parameterPlan().parameterCount }
    }
}

/// A decoding error as "key 'a.b': problem".
private func describe(_ error: DecodingError) -> String {
    func path(_ p: [CodingKey]) -> String { p.isEmpty ? "top level" : "key '" + p.map(\.stringValue).joined(separator: ".") + "'" }
    switch error {
    case .typeMismatch(let type, let ctx): return "\(path(ctx.codingPath)): expected \(type): \(ctx.debugDescription)"
    case .valueNotFound(let type, let ctx): return "\(path(ctx.codingPath)): missing \(type) value"
    case .keyNotFound(let key, let ctx): return "\(path(ctx.codingPath + [key])): required key missing"
    case .dataCorrupted(let ctx): return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
    @unknown default: return "\(error)"
    }
}
