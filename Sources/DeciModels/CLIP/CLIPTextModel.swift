// The CLIP text transformer as transformers' CLIPTextModel (modeling_clip.py) computes it and
// diffusers' StableDiffusionPipeline.encode_prompt uses it (including clip_skip). Sequences are
// `[batch, tokens, hidden]`; property names are the checkpoint keys.
import DeciTensor
import DeciWeights
import Foundation

/// Token ids that a ``CLIPTextModel`` cannot encode, or a `clipSkip` out of range.
public struct CLIPTextInputError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// CLIP's text tower: token + position embeddings, pre-LayerNorm transformer layers with causal
/// self-attention, and a final LayerNorm. Stable Diffusion conditions on its last hidden state.
///
/// Weights come from a transformers checkpoint (`text_encoder/model.safetensors`, float32, float16
/// or bfloat16), with keys under `text_model.` as the public checkpoints store them, or without that
/// prefix as transformers 5 writes them. Immutable after loading; safe to share across threads.
public final class CLIPTextModel: Sendable {
    public let config: CLIPTextConfig
    public let precision: Precision
    /// `[vocab, hidden]`, row per token id.
    let token_embedding: Embedding
    /// `[maxPositions, hidden]`.
    let position_embedding: Embedding
    let layers: [CLIPEncoderLayer]
    let final_layer_norm: LayerNorm

    /// Builds the model from the keys under `weights` (`embeddings.…`, `encoder.layers.{i}.…`,
    /// `final_layer_norm.…`) and then fails if the scope holds tensors the model did not use
    /// (the `position_ids` buffer excepted).
    public init(config: CLIPTextConfig, weights w: WeightScope, precision: Precision) throws(ModelError) {
        try config.validate()
        self.config = config
        self.precision = precision
        let h = config.hiddenSize
        token_embedding = try w.embedding("embeddings.token_embedding", count: config.vocabSize, dim: h)
        position_embedding = try w.embedding("embeddings.position_embedding", count: config.maxPositionEmbeddings, dim: h)
        var layers: [CLIPEncoderLayer] = []
        for i in 0..<config.numHiddenLayers {
            layers.append(try CLIPEncoderLayer(w.scoped("encoder.layers.\(i)."), hidden: h, intermediate: config.intermediateSize,
                                               heads: config.numAttentionHeads, activation: config.activation,
                                               eps: config.layerNormEps, causal: true, precision: precision))
        }
        self.layers = layers
        final_layer_norm = try w.layerNorm("final_layer_norm", channels: h, eps: config.layerNormEps)
        do { try w.finish() } catch { throw .weights(error) }
    }

    /// Builds the model from a text encoder's own weights file(s): keys under `text_model.` when
    /// the store has them, else unprefixed. Any tensor outside the model is an error.
    public convenience init(config: CLIPTextConfig, weights store: WeightStore, precision: Precision) throws(ModelError) {
        let prefix = store.contains("text_model.embeddings.token_embedding.weight") ? "text_model." : ""
        try self.init(config: config, weights: store.scoped(prefix), precision: precision)
        do { try store.finish() } catch { throw .weights(error) }
    }

    /// Loads a checkpoint's `text_encoder/` folder: `config.json` and the weights that
    /// ``ComponentWeights/locate(in:variant:)`` picks (e.g. `model.safetensors`, or
    /// `model.fp16.safetensors` for `variant: "fp16"`).
    /// `loras` are merged into the weights as the layers are built.
    public static func load(directory: String, precision: Precision, variant: String? = nil,
                            loras: LoRASet? = nil) throws(ModelError) -> CLIPTextModel {
        try loadComponent(directory: directory, variant: variant, config: CLIPTextConfig.load(contentsOf:), loras: loras,
                          component: .textEncoder) { (config, store) throws(ModelError) in
            try CLIPTextModel(config: config, weights: store, precision: precision)
        }
    }

    /// Parameters held (as the checkpoint counts them).
    public var parameterCount: Int {
        get throws(ModelError) { try config.parameterCount }
    }

    /// Encodes token ids (`[batch][tokens]`, every row the same length, at most
    /// `max_position_embeddings`, usually 77 with padding) to `[batch, tokens, hidden]`.
    ///
    /// `clipSkip` follows diffusers' `clip_skip`: 0 gives the last hidden state; k > 0 the output of
    /// layer `numHiddenLayers - k` with the final LayerNorm applied (k = 1 is the penultimate layer,
    /// what other tools call "clip skip 2"); the skipped layers are not computed. No attention mask
    /// is applied, as in diffusers for CLIP text encoders: padding tokens take part in the causal
    /// attention like any other token.
    public func callAsFunction(_ ids: [[Int32]], clipSkip: Int = 0) throws(CLIPTextInputError) -> Tensor {
        guard clipSkip >= 0, clipSkip <= layers.count else {
            throw CLIPTextInputError("clipSkip \(clipSkip) is outside 0...\(layers.count) (the text encoder has \(layers.count) layers)")
        }
        var h = try embed(ids)
        for layer in layers.prefix(layers.count - clipSkip) { h = layer(h) }
        return final_layer_norm(h)
    }

    /// Token embedding plus position embedding, `[batch, tokens, hidden]`.
    func embed(_ ids: [[Int32]]) throws(CLIPTextInputError) -> Tensor {
        let batch = ids.count
        guard batch > 0, let tokens = ids.first?.count, tokens > 0 else { throw CLIPTextInputError("no token ids to encode") }
        guard tokens <= config.maxPositionEmbeddings else {
            throw CLIPTextInputError("\(tokens) tokens exceed max_position_embeddings \(config.maxPositionEmbeddings)")
        }
        for (b, row) in ids.enumerated() {
            guard row.count == tokens else { throw CLIPTextInputError("row \(b) has \(row.count) token ids, row 0 has \(tokens)") }
            if let bad = row.firstIndex(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
                throw CLIPTextInputError("row \(b), position \(bad): token id \(row[bad]) is outside the vocabulary 0..<\(config.vocabSize)")
            }
        }
        let tok = token_embedding(ids.flatMap { $0.map(Int.init) })
        let pos = position_embedding(Array(0..<tokens))
        return Ops.addRepeating(tok, pos).reshaped([batch, tokens, config.hiddenSize])
    }
}
