// Textual-inversion embeddings from safetensors files, in the containers that circulate: A1111's
// `string_to_param.*`, kohya sd-scripts' `emb_params`, diffusers' `{token: vectors}`
// (detection order as A1111's `create_embedding_from_data`).
import DeciWeights
import Foundation

/// An embedding file that cannot be used; the message names the file and why.
public struct TextualInversionError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Learned token vectors and the name that calls them up in a prompt.
public struct TextualInversion: Sendable {
    /// The token: A1111 files take the file name without extension, diffusers files their key.
    public let name: String
    /// `[count, dim]`, row-major.
    public let vectors: [Float]
    public let count: Int
    public let dim: Int
    public let path: String

    /// Reads `path`; `name` overrides the token the file implies.
    public init(path: String, name: String? = nil) throws(TextualInversionError) {
        let store: WeightStore
        do { store = try WeightStore.open(path) } catch { throw TextualInversionError("\(path): not a readable safetensors file: \(error.problem)") }
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let key: String, implied: String
        let a1111 = store.keys.filter { $0.hasPrefix("string_to_param.") }
        if !a1111.isEmpty {
            guard a1111.count == 1 else { throw TextualInversionError("\(path): \(a1111.count) string_to_param entries; A1111 embeddings hold one") }
            (key, implied) = (a1111[0], stem)
        } else if store.keys.contains("clip_l") || store.keys.contains("clip_g") {
            throw TextualInversionError("\(path): an SDXL embedding (clip_l / clip_g); this model has one CLIP text encoder")
        } else if store.keys.count == 1, let only = store.keys.first {
            (key, implied) = (only, only == "emb_params" ? stem : only)
        } else {
            throw TextualInversionError("\(path): not an embedding: want one tensor (emb_params, string_to_param.*, or diffusers' {token: vectors}), found \(store.keys.prefix(5).joined(separator: ", "))")
        }
        guard let t = store.peek(key), (1...2).contains(t.shape.count), t.elementCount > 0 else {
            throw TextualInversionError("\(path): \(key) is not a [vectors, dim] or [dim] tensor")
        }
        do { vectors = try t.floats() } catch { throw TextualInversionError("\(path): \(key): \(error.problem)") }
        guard vectors.allSatisfy(\.isFinite) else { throw TextualInversionError("\(path): \(key) holds values that are not finite") }
        (count, dim) = t.shape.count == 1 ? (1, t.shape[0]) : (t.shape[0], t.shape[1])
        self.name = name ?? implied
        self.path = path
    }
}
