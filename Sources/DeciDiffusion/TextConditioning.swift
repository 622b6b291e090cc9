// The "encode prompts" stage: diffusers' encode_prompt (`.none`), or A1111's weighted, chunked
// conditioning (`.a1111`: stable-diffusion-webui `sd_hijack_clip.py` + `sd_emphasis.py`), and how
// conditional and unconditional states meet the denoiser (`sd_samplers_cfg_denoiser.py`).
import DeciModels
import DeciTensor
import DeciTokenizer

/// The text states of a request, one row per image (prompt-major: all images of prompt 0 first,
/// as diffusers orders them).
public struct TextConditioning: Sendable {
    /// The prompts' states, `[B, tokens, channels]`.
    public let cond: Tensor
    /// The negative prompts' states, `[B, tokens', channels]`; nil without guidance.
    public let uncond: Tensor?
    /// Prompt text cut at 77 tokens (`.none` weighting), as diffusers warns.
    public let warnings: [String]
    /// One context for a single denoiser call, unconditional rows first; nil when guidance pairs
    /// states of different lengths, which then run as two calls (A1111's default).
    public let batched: Tensor?

    public init(cond: Tensor, uncond: Tensor?, warnings: [String] = []) {
        (self.cond, self.uncond, self.warnings) = (cond, uncond, warnings)
        if let uncond {
            batched = uncond.shape[1] == cond.shape[1] ? Ops.concatBatch([uncond, cond]) : nil
        } else {
            batched = cond
        }
    }
}

extension DiffusionPipeline {
    /// Encodes a request's prompts (and negative prompts when guiding) as its weighting asks.
    public func textConditioning(for req: ResolvedRequest) throws -> TextConditioning {
        // Image i of the batch shows prompt i / imagesPerPrompt.
        let images = (0..<req.prompts.count).flatMap { [Int](repeating: $0, count: req.imagesPerPrompt) }
        var warnings: [String] = []
        func encode(_ texts: [String]) throws -> Tensor {
            switch req.promptWeighting {
            case .none: return try plainStates(texts, clipSkip: req.clipSkip, warnings: &warnings)
            case .a1111: return try weightedStates(texts, clipSkip: req.clipSkip)
            }
        }
        var cond = try encode(req.prompts)
        var uncond = req.doClassifierFreeGuidance ? try encode(req.negativePrompts) : nil
        if req.padCondUncond, let u = uncond, u.shape[1] != cond.shape[1] {
            let empty = try weightedStates([""], clipSkip: req.clipSkip)
            let target = max(u.shape[1], cond.shape[1])
            (cond, uncond) = (padded(cond, to: target, with: empty), padded(u, to: target, with: empty))
        }
        return TextConditioning(cond: Ops.gatherBatch(cond, images), uncond: uncond.map { Ops.gatherBatch($0, images) },
                                warnings: warnings)
    }

    /// diffusers' encode_prompt: each text padded or cut to 77 tokens, one encoder batch.
    func plainStates(_ texts: [String], clipSkip: Int, warnings: inout [String]) throws -> Tensor {
        let tokens = texts.map { tokenizer.encode($0) }
        warnings += tokens.compactMap(\.truncationWarning)
        return try textEncoder(tokens.map(\.ids), clipSkip: clipSkip)
    }

    /// A1111's conditioning of texts encoded together, `[texts, 77 x chunks, channels]`: chunk `i`
    /// of every text (an empty chunk for texts with fewer) in one encoder call, each token's output
    /// times its weight, then the whole call's output rescaled to its mean before weighting.
    public func weightedStates(_ texts: [String], clipSkip: Int) throws -> Tensor {
        let chunked = try texts.map { text in
            do { return tokenizer.chunks(try PromptAttention.parse(text)) } catch { throw RequestError("prompt: \(error)") }
        }
        let count = chunked.map(\.count).max() ?? 1
        let empty = tokenizer.emptyChunk
        var parts: [Tensor] = []
        for i in 0..<count {
            let batch = chunked.map { i < $0.count ? $0[i] : empty }
            let z = try textEncoder(batch.map(\.ids), clipSkip: clipSkip)
            let originalMean = Ops.mean(z)
            let weighted = Ops.scaleRows(z, by: batch.flatMap(\.multipliers))
            parts.append(Ops.scale(weighted, by: originalMean / Ops.mean(weighted)))
        }
        return parts.count == 1 ? parts[0] : Ops.concatSequence(parts)
    }

    /// A1111's `pad_cond_uncond`: copies of the empty prompt's encoding (`[1, 77, c]`) appended
    /// until `states` has `tokens` tokens.
    func padded(_ states: Tensor, to tokens: Int, with empty: Tensor) -> Tensor {
        let copies = (tokens - states.shape[1]) / empty.shape[1]
        guard copies > 0 else { return states }
        let fill = Ops.gatherBatch(empty, [Int](repeating: 0, count: states.shape[0]))
        return Ops.concatSequence([states] + [Tensor](repeating: fill, count: copies))
    }
}
