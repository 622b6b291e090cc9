import Foundation

/// Picks, from a repo's file list and its `model_index.json`, the files the engine loads: each
/// used component's configs, tokenizer files and safetensors weights (one variant), never pickles
/// (`.bin`, `.ckpt`, ...) or other frameworks' weights (`.msgpack`, `.onnx`, ...), and nothing of
/// the components it does not run. Mirrors the choice `ComponentWeights.locate` makes on disk: the
/// requested variant, else the plain weights, else another variant.
public struct FileSelection: Sendable, Equatable {
    public var files: [String]
    /// What was left out and why, one line each (shown to the user).
    public var notes: [String]

    /// Components the engine reads. DeciDiffusion ships both `flexible_unet/` (its denoiser) and an
    /// unused SD `unet/`; the latter is fetched only when there is no `flexible_unet/`.
    /// The safety checker and its feature extractor are fetched because the published pipeline runs them.
    static let required = ["tokenizer", "text_encoder", "vae", "scheduler"]
    static let optional = ["safety_checker", "feature_extractor"]
    static let weightsComponents: Set<String> = ["text_encoder", "vae", "unet", "flexible_unet", "safety_checker"]

    static let otherWeightSuffixes = [".bin", ".ckpt", ".pt", ".pth", ".pkl", ".msgpack", ".onnx", ".onnx_data", ".pb",
                                      ".h5", ".ot", ".gguf", ".tflite", ".mlmodel", ".mlpackage"]

    /// - Parameters:
    ///   - repoFiles: every path the server lists (`siblings[].rfilename`).
    ///   - components: the component names `model_index.json` declares with a class (non-null).
    public init(repoFiles: [String], components: Set<String>, variant: String?) throws(HubError) {
        var notes: [String] = []
        var byFolder: [String: [String]] = [:]
        for f in repoFiles {
            let parts = f.split(separator: "/")
            if parts.count == 2 { byFolder[String(parts[0]), default: []].append(String(parts[1])) }
        }
        let denoiser = components.contains("flexible_unet") ? "flexible_unet" : "unet"
        var wanted = Self.required + [denoiser]
        for name in Self.required + [denoiser] where !components.contains(name) || byFolder[name] == nil {
            throw .unsupportedRepo("not a diffusers pipeline the engine runs: model_index.json or the repo's files lack the \(name)/ component "
                                   + "(needs tokenizer, text_encoder, vae, scheduler and flexible_unet or unet)")
        }
        for name in Self.optional where components.contains(name) && byFolder[name] != nil { wanted.append(name) }
        let skipped = components.subtracting(wanted).sorted()
        if !skipped.isEmpty { notes.append("not fetched (the engine does not run them): " + skipped.map { $0 + "/" }.joined(separator: ", ")) }

        var files = ["model_index.json"]
        for component in wanted {
            let names = byFolder[component, default: []].sorted()
            let weights = names.filter { Self.isSafetensorsWeight($0) }
            let other = names.filter { n in Self.otherWeightSuffixes.contains { n.hasSuffix($0) } }
            let configs = names.filter { n in (n.hasSuffix(".json") || n.hasSuffix(".txt")) && !Self.isSafetensorsWeight(n) }
            if Self.weightsComponents.contains(component) {
                guard !weights.isEmpty else {
                    let what = other.isEmpty ? "no weights" : "only \(other.joined(separator: ", ")) (not safetensors)"
                    if Self.optional.contains(component) {
                        notes.append("\(component)/ not fetched: it has \(what), and the engine loads safetensors only")
                        continue
                    }
                    throw .unsupportedRepo("\(component)/ has \(what); the engine loads safetensors only (pickle formats can run code when loaded). "
                                           + "Convert it with diffusers (`save_pretrained(..., safe_serialization=True)`) or pick a repo with .safetensors")
                }
                let variants = Set(weights.map { Self.variantOf($0) })
                let chosen: String?
                if let variant, variants.contains(variant) { chosen = variant } else if variants.contains(nil) { chosen = nil } else {
                    chosen = variants.compactMap { $0 }.sorted().first
                }
                let picked = weights.filter { Self.variantOf($0) == chosen }
                if let variant, chosen != variant {
                    notes.append("\(component)/: no '\(variant)' variant; fetching \(chosen.map { "variant '\($0)'" } ?? "the plain weights")")
                }
                files += configs.map { component + "/" + $0 } + picked.map { component + "/" + $0 }
            } else {
                files += configs.map { component + "/" + $0 }
            }
        }
        self.files = files
        self.notes = notes
    }

    /// `*.safetensors`, or a shard index `*.safetensors.index[.<variant>].json`.
    static func isSafetensorsWeight(_ name: String) -> Bool {
        name.hasSuffix(".safetensors") || name.range(of: #"\.safetensors\.index(\.[^./]+)?\.json$"#, options: .regularExpression) != nil
    }

    /// diffusers' variant naming: `model.fp16.safetensors`, `model.fp16-00001-of-00002.safetensors`,
    /// `model.safetensors.index.fp16.json`; nil for the plain names.
    static func variantOf(_ name: String) -> String? {
        if let r = name.range(of: #"\.safetensors\.index\.([^./]+)\.json$"#, options: .regularExpression) {
            return String(name[r].dropFirst(".safetensors.index.".count).dropLast(".json".count))
        }
        if name.hasSuffix(".json") { return nil }
        var stem = String(name.dropLast(".safetensors".count))
        if let shard = stem.range(of: #"-[0-9]{5}-of-[0-9]{5}$"#, options: .regularExpression) { stem.removeSubrange(shard) }
        guard let dot = stem.lastIndex(of: ".") else { return nil }
        let v = String(stem[stem.index(after: dot)...])
        return v.isEmpty ? nil : v
    }
}
