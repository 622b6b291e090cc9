// LoRA files as they circulate (kohya-ss sd-scripts, diffusers / PEFT), read into modules of
// (down, up, alpha) factors. Key suffixes as ComfyUI's `comfy/weight_adapter/lora.py` accepts them;
// alpha from kohya's `.alpha` tensors or diffusers' `lora_adapter_metadata`.
import DeciWeights
import Foundation

/// A LoRA file that cannot be used; the message names the file and the keys concerned.
public struct LoRAError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One low-rank update: `W += multiplier * alpha / rank * up @ down` (reshaped to W's shape).
public struct LoRAModule: Sendable {
    /// The key without its factor suffix, e.g. `lora_unet_mid_block_attentions_0_proj_in` or
    /// `unet.mid_block.attentions.0.proj_in`: what names the target module.
    public let name: String
    /// `[rank, in, ...]` (lora_down / lora_A).
    public let down: WeightTensor
    /// `[out, rank, ...]` (lora_up / lora_B).
    public let up: WeightTensor
    /// nil: alpha = rank (scale 1), as kohya files without alpha and PEFT without metadata mean.
    public let alpha: Float?

    public var rank: Int { down.shape.first ?? 0 }
    /// `alpha / rank`.
    public var scale: Float { alpha.map { $0 / Float(max(rank, 1)) } ?? 1 }
}

/// The modules of one LoRA file, memory-mapped.
public struct LoRAFile: Sendable {
    public let path: String
    public let modules: [LoRAModule]
    /// Keys that are not LoRA factors this loader merges (DoRA scales, LoHa / LoKr factors, full
    /// deltas, bundled embeddings...): an error unless the caller is lenient.
    public let unsupportedKeys: [String]

    /// Factor suffix pairs (down, up): kohya, PEFT, diffusers' older `lora.down`, `lora_linear_layer`.
    static let suffixes: [(down: String, up: String)] = [
        (".lora_down.weight", ".lora_up.weight"), (".lora_A.weight", ".lora_B.weight"),
        (".lora.down.weight", ".lora.up.weight"), (".lora_linear_layer.down.weight", ".lora_linear_layer.up.weight"),
    ]

    public init(path: String) throws(LoRAError) {
        let store: WeightStore
        do { store = try WeightStore.open(path) } catch { throw LoRAError("\(path): not a readable safetensors file: \(error.problem)") }
        self.path = path
        let peftAlphas = try Self.metadataAlphas(store.metadata, path: path)
        var modules: [LoRAModule] = [], used = Set<String>()
        for key in store.keys {
            guard let pair = Self.suffixes.first(where: { key.hasSuffix($0.down) }) else { continue }
            let name = String(key.dropLast(pair.down.count))
            guard let down = store.peek(key), let up = store.peek(name + pair.up) else {
                throw LoRAError("\(path): \(key) has no matching \(name + pair.up)")
            }
            var alpha: Float?
            if let a = store.peek(name + ".alpha") {
                let values: [Float]
                do { values = try a.floats() } catch { throw LoRAError("\(path): \(name).alpha: \(error.problem)") }
                guard values.count == 1, let v = values.first, v.isFinite else { throw LoRAError("\(path): \(name).alpha is not one finite number") }
                alpha = v
                used.insert(name + ".alpha")
            } else if let component = name.split(separator: ".").first, let a = peftAlphas[String(component)] {
                alpha = a
            }
            let module = LoRAModule(name: name, down: down, up: up, alpha: alpha)
            try Self.checkFactors(module, path: path)
            modules.append(module)
            used.formUnion([key, name + pair.up])
        }
        guard !modules.isEmpty else { throw LoRAError("\(path): no LoRA factors (lora_down/lora_up, lora_A/lora_B, lora.down/lora.up) in it") }
        self.modules = modules
        unsupportedKeys = store.keys.filter { !used.contains($0) }
    }

    /// `down` `[r, in, ...]` and `up` `[out, r, 1, 1]` or `[out, r]` with the same rank.
    static func checkFactors(_ m: LoRAModule, path: String) throws(LoRAError) {
        let (d, u) = (m.down.shape, m.up.shape)
        guard d.count >= 2, u.count >= 2, d[0] > 0, u[1] == d[0], u.dropFirst(2).allSatisfy({ $0 == 1 }) else {
            throw LoRAError("\(path): \(m.name): down \(d) and up \(u) are not LoRA factors of one rank (down [r, in, ...], up [out, r])")
        }
    }

    /// diffusers' `lora_adapter_metadata` (`{"unet.lora_alpha": 8, "unet.r": 4, ...}`): alpha per
    /// component prefix. Patterns per module (`alpha_pattern`, `rank_pattern`) are refused, not guessed.
    static func metadataAlphas(_ metadata: [String: String], path: String) throws(LoRAError) -> [String: Float] {
        guard let text = metadata["lora_adapter_metadata"] else { return [:] }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw LoRAError("\(path): metadata lora_adapter_metadata is not a JSON object")
        }
        var alphas: [String: Float] = [:]
        for (key, value) in object {
            let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            switch parts[1] {
            case "lora_alpha":
                guard let n = value as? NSNumber else { throw LoRAError("\(path): metadata \(key) is not a number") }
                alphas[parts[0]] = n.floatValue
            case "alpha_pattern", "rank_pattern":
                if let d = value as? [String: Any], !d.isEmpty {
                    throw LoRAError("\(path): metadata \(key) gives per-module ranks or alphas, which this loader does not apply")
                }
            default: continue
            }
        }
        return alphas
    }
}
