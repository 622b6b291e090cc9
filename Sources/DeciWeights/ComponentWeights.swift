import Foundation

/// The weights file(s) chosen for one diffusers / transformers component folder (`vae/`,
/// `text_encoder/`, `flexible_unet/`, ...).
///
/// Names follow diffusers and transformers: `diffusion_pytorch_model.safetensors` or
/// `model.safetensors`, a variant inserted before the extension (`model.fp16.safetensors`), and
/// sharded checkpoints as `<name>.safetensors.index.json` (variant: `<name>.safetensors.index.fp16.json`).
public struct ComponentWeights: Sendable, Equatable {
    /// What was found.
    public enum Source: Sendable, Equatable {
        /// One `.safetensors` file (full path).
        case single(String)
        /// A shard index file (full path).
        case sharded(index: String)
    }

    public let folder: String
    public let source: Source
    /// The variant of the chosen files (`"fp16"`), nil for the plain name.
    public let variant: String?
    /// Why this choice, when it is not simply the requested one (e.g. the requested variant is
    /// absent and the plain file was used); empty otherwise. Worth showing the user.
    public let notes: [String]

    static let baseNames = ["diffusion_pytorch_model", "model"]
    static let pickleExtensions = [".bin", ".ckpt", ".pt", ".pth", ".pkl"]

    /// Finds the weights in `folder`. Order: the requested `variant`, then the plain names, then any
    /// other variant present (alphabetically); for each, a single file before a shard index and
    /// `diffusion_pytorch_model` before `model`. When nothing fits, the error lists the folder's
    /// files and says that PyTorch pickles (`.bin`) are not supported yet.
    public static func locate(in folder: String, variant: String? = nil) throws(WeightsError) -> ComponentWeights {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw WeightsError(.noWeightsFound, file: folder, "component folder does not exist")
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        } catch {
            throw WeightsError(.io, file: folder, "cannot list folder: \(error.localizedDescription)")
        }
        let present = Set(names)
        let otherVariants = Set(names.compactMap(variantOf)).subtracting([variant].compactMap { $0 }).sorted()
        let order: [String?] = [variant].compactMap { $0 }.map { Optional($0) } + [nil] + otherVariants.map { Optional($0) }
        for v in order {
            for base in baseNames {
                let single = withVariant("\(base).safetensors", v)
                let index = withVariant("\(base).safetensors.index.json", v)
                let source: Source
                if present.contains(single) {
                    source = .single(join(folder, single))
                } else if present.contains(index) {
                    source = .sharded(index: join(folder, index))
                } else {
                    continue
                }
                var notes: [String] = []
                if let variant, v != variant {
                    notes.append("variant '\(variant)' not found in \(folder); using \(v.map { "variant '\($0)'" } ?? "the plain weights")")
                } else if variant == nil, let v {
                    notes.append("no plain weights in \(folder); using variant '\(v)'")
                }
                return ComponentWeights(folder: folder, source: source, variant: v, notes: notes)
            }
        }
        var problem = "no usable weights: expected diffusion_pytorch_model[.<variant>].safetensors, model[.<variant>].safetensors or a *.safetensors.index[.<variant>].json"
        problem += names.isEmpty ? "; the folder is empty" : "; the folder holds: " + names.prefix(30).joined(separator: ", ") + (names.count > 30 ? ", ..." : "")
        if names.contains(where: { n in pickleExtensions.contains { n.hasSuffix($0) } }) {
            problem += ". PyTorch pickle weights (.bin/.ckpt/.pt) are not supported yet; convert them to safetensors (e.g. diffusers' save_pretrained(..., safe_serialization=True))"
        }
        throw WeightsError(.noWeightsFound, file: folder, problem)
    }

    /// Opens the chosen file(s) as a store.
    public func open() throws(WeightsError) -> WeightStore {
        switch source {
        case .single(let path): try WeightStore.open(path)
        case .sharded(let index): try WeightStore.openSharded(indexPath: index)
        }
    }

    /// diffusers' naming: the variant goes before the last extension.
    static func withVariant(_ name: String, _ variant: String?) -> String {
        guard let variant, let dot = name.lastIndex(of: ".") else { return name }
        return name[..<dot] + "." + variant + name[dot...]
    }

    /// The variant in a recognised weights file name, if it has one.
    static func variantOf(_ name: String) -> String? {
        for base in baseNames {
            for (head, tail) in [("\(base).", ".safetensors"), ("\(base).safetensors.index.", ".json")] {
                guard name.hasPrefix(head), name.hasSuffix(tail), name.count > head.count + tail.count else { continue }
                let v = String(name.dropFirst(head.count).dropLast(tail.count))
                // Shards of a variant ("fp16-00001-of-00002") are not a variant of their own.
                if !v.isEmpty, !v.contains("."), !v.contains("-of-") { return v }
            }
        }
        return nil
    }

    private static func join(_ folder: String, _ name: String) -> String {
        URL(fileURLWithPath: folder).appendingPathComponent(name).path
    }
}

extension WeightStore {
    /// Finds and opens the weights of a component folder (see ``ComponentWeights/locate(in:variant:)``).
    public static func openComponent(_ folder: String, variant: String? = nil) throws(WeightsError) -> WeightStore {
        try ComponentWeights.locate(in: folder, variant: variant).open()
    }
}
