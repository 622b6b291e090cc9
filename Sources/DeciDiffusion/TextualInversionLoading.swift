// Loading textual-inversion embeddings into a pipeline as diffusers' `load_textual_inversion` does:
// the name becomes an added token (`name`, `name_1`, ... for several vectors) whose ids index the
// vectors appended after the text encoder's vocabulary; usable in prompts and negative prompts.
import DeciModels
import DeciTensor
import Foundation

extension DiffusionPipeline {
    /// `path` or `path=TOKEN` (the CLI's `--embedding`).
    public func loadTextualInversion(spec: String) throws {
        let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
        try loadTextualInversion(path: parts.first ?? spec, name: parts.count > 1 ? parts[1] : nil)
    }

    /// Loads the embedding at `path` (`.safetensors`: A1111 `string_to_param.*`, kohya `emb_params`,
    /// diffusers `{token: vectors}`); `name` overrides its token (A1111: the file name, diffusers:
    /// its key). Pickle files (`.pt`, `.ckpt`, `.bin`) are refused: loading them can run code.
    /// Not while a generation runs.
    public func loadTextualInversion(path: String, name: String? = nil) throws {
        try LoRAReference.refusePickle(path)
        let embedding = try TextualInversion(path: path, name: name)
        let hidden = textEncoder.config.hiddenSize
        guard embedding.dim == hidden else {
            throw TextualInversionError("\(path): vectors of width \(embedding.dim); this text encoder's is \(hidden)")
        }
        guard embedding.count <= tokenizer.chunkLength else {
            throw TextualInversionError("\(path): \(embedding.count) vectors do not fit one \(tokenizer.chunkLength)-token chunk")
        }
        guard tokenizer.vocabularySize == textEncoder.config.vocabSize + (extraEmbeddings?.shape[0] ?? 0) else {
            throw TextualInversionError("\(path): the tokenizer's \(tokenizer.vocabularySize) tokens do not line up with the text encoder's \(textEncoder.config.vocabSize) rows")
        }
        let (extended, _) = try tokenizer.addingEmbeddingTokens([(embedding.name, embedding.count)])
        let previous = extraEmbeddings?.toArray() ?? []
        extraEmbeddings = Tensor(shape: [previous.count / hidden + embedding.count, hidden], data: previous + embedding.vectors)
        tokenizer = extended
        textualInversions.append(embedding)
    }
}
