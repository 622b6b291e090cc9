// A1111's long-prompt chunking (stable-diffusion-webui `modules/sd_hijack_clip.py: tokenize_line`):
// every parsed piece tokenized without BOS/EOS or truncation, cut into chunks of 75 tokens (moving
// the words after a comma near the end into the next chunk), each wrapped as BOS + 75 + EOS.

/// One 77-token window of a prompt and the attention weight of every position.
public struct PromptChunk: Sendable, Equatable {
    /// BOS, up to 75 text tokens, EOS padding, EOS (`maxLength` ids).
    public var ids: [Int32]
    /// One per id: 1 for BOS, EOS and padding, the piece's weight for text tokens (float32, as
    /// A1111's `torch.asarray` makes them).
    public var multipliers: [Float]

    public init(ids: [Int32], multipliers: [Float]) {
        self.ids = ids
        self.multipliers = multipliers
    }
}

extension CLIPTokenizer {
    /// A1111's `comma_padding_backtrack` default: a comma at most this many tokens before a full
    /// chunk's end moves the words after it into the next chunk.
    public static let commaPaddingBacktrack = 20

    /// Text tokens per chunk: the window less BOS and EOS (75 for CLIP).
    public var chunkLength: Int { maxLength - 2 }

    /// The chunks of weighted pieces (``PromptAttention/parse(_:)``): at least one (the empty
    /// prompt gives `BOS + EOS x 76`); a BREAK marker closes the current chunk, even an empty one.
    public func chunks(_ pieces: [PromptPiece]) -> [PromptChunk] {
        let comma = tokenID(",</w>")
        var chunks: [PromptChunk] = []
        var tokens: [Int32] = [], weights: [Float] = []
        var lastComma = -1
        func close() {
            let fill = chunkLength - tokens.count
            var ids = [bosTokenID] + tokens + [Int32](repeating: eosTokenID, count: fill + 1)
            if padTokenID != eosTokenID, let first = ids.firstIndex(of: eosTokenID) {
                // SD-2.x tokenizers pad with another token: every position after the first EOS.
                for k in (first + 1)..<ids.count { ids[k] = padTokenID }
            }
            chunks.append(PromptChunk(ids: ids, multipliers: [1] + weights + [Float](repeating: 1, count: fill + 1)))
            (tokens, weights, lastComma) = ([], [], -1)
        }
        for piece in pieces {
            if piece.isBreak {
                close()
                continue
            }
            let weight = Float(piece.weight)
            for token in contentTokenIDs(piece.text) {
                if token == comma {
                    lastComma = tokens.count
                } else if Self.commaPaddingBacktrack != 0, tokens.count == chunkLength, lastComma != -1,
                          tokens.count - lastComma <= Self.commaPaddingBacktrack {
                    let cut = lastComma + 1
                    let (moved, movedWeights) = (Array(tokens[cut...]), Array(weights[cut...]))
                    (tokens, weights) = (Array(tokens[..<cut]), Array(weights[..<cut]))
                    close()
                    (tokens, weights) = (moved, movedWeights)
                }
                if tokens.count == chunkLength { close() }
                tokens.append(token)
                weights.append(weight)
            }
        }
        if !tokens.isEmpty || chunks.isEmpty { close() }
        return chunks
    }

    /// A chunk of the empty prompt (`BOS + EOS x 76`, multipliers 1): what texts with fewer chunks
    /// than others of their batch are filled with.
    public var emptyChunk: PromptChunk { chunks([PromptPiece("", 1)])[0] }
}
